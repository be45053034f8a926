// A page of resources from /tools/find: sortable columns, paging, selection.
//
// Each page is one /tools/find with OrderBy (the column's key, then the arrival order),
// Since (the page's offset) and Limit (the page size + 1: the extra answer says whether
// a next page exists), and ResponseContent asking exactly what the columns show. The
// total comes from /tools/count-resources in parallel and is shown when it arrives, so
// the page never waits for a count. Both stay fast on a large archive: the sort keys
// are indexed columns (but the description), and only one page of resources is read
// (benchmarks/explorer.py times these requests at 100,000 studies).

import { count, find } from './api.js';
import { emptyState, errorBox } from './dialog.js';
import { button, fill, h, integer } from './dom.js';

export const PAGE_SIZES = [25, 50, 100, 200];

export class FindList {
  /**
   * level: 'Study'|'Patient'|...; columns: [{key, label, sort: [{Type, Key}] | null,
   * render(item) -> node, class}]; request: extra /tools/find fields (ResponseContent,
   * RequestedTags); route(item) -> '#/...'; onNavigate({sort, dir, page, size}) when
   * the user sorts or pages; bulk(selectedItems) -> [elements] for the selection bar.
   */
  constructor({ level, columns, request, route, onNavigate, bulk = null, emptyText, caption }) {
    Object.assign(this, { level, columns, request, route, onNavigate, bulk, emptyText });
    this.selected = new Map();
    this.items = [];
    this.bulkBar = h('div', { class: 'bulkbar', hidden: true });
    this.tableWrap = h('div', { class: 'table-wrap' });
    this.foot = h('div', { class: 'table-foot' });
    this.element = h('div', { class: 'find-list' }, this.bulkBar, this.tableWrap, this.foot);
    this.caption = caption;
    this.generation = 0;
  }

  /** Show a page: query (find's Query), labels, sort (column key), dir, page, size. */
  async load({ query, labels = [], sort, dir, page = 0, size = 25 }) {
    const generation = ++this.generation;
    this.controller?.abort();
    this.controller = new AbortController();
    const { signal } = this.controller;
    const column = this.columns.find(c => c.key === sort && c.sort) ?? this.columns.find(c => c.sort);
    const direction = dir === 'asc' ? 'ASC' : 'DESC';
    const base = { Level: this.level, Query: query, CaseSensitive: false };
    if (labels.length) Object.assign(base, { Labels: labels, LabelsConstraint: 'All' });
    for (const scope of ['ParentPatient', 'ParentStudy', 'ParentSeries']) {
      if (this.request[scope]) base[scope] = this.request[scope];
    }
    const body = {
      ...base, ...this.request, Since: page * size, Limit: size + 1,
      OrderBy: column.sort.map(key => ({ ...key, Direction: direction })),
    };
    this.state = { query, labels, sort: column.key, dir: direction === 'ASC' ? 'asc' : 'desc', page, size };
    if (!this.items.length) this.renderLoading();
    this.element.setAttribute('aria-busy', 'true');
    const total = count(base, signal).catch(() => null);
    let items;
    try {
      items = await find(body, signal);
    } catch (failure) {
      if (failure.name === 'AbortError' || generation !== this.generation) return;
      this.items = [];
      fill(this.tableWrap, errorBox(failure));
      fill(this.foot);
      this.element.removeAttribute('aria-busy');
      return;
    }
    if (generation !== this.generation) return;
    this.hasNext = items.length > size;
    this.items = items.slice(0, size);
    this.render();
    this.renderFoot(null);
    // What is shown, for scripts and tests: the page's sort, direction, number, rows.
    Object.assign(this.element.dataset, { sort: this.state.sort, dir: this.state.dir,
      page: String(page), size: String(size), rows: String(this.items.length) });
    this.element.removeAttribute('aria-busy');
    const known = await total;
    if (generation === this.generation) this.renderFoot(known);
  }

  reload() {
    if (this.state) return this.load(this.state);
    return Promise.resolve();
  }

  renderLoading() {
    fill(this.tableWrap, h('table', { class: 'list' }, this.head(),
      h('tbody', {}, h('tr', { class: 'loading-row' }, h('td', { colspan: this.columns.length + 1 }, 'Loading…')))));
  }

  head() {
    const cells = this.columns.map(column => {
      if (!column.sort) return h('th', { scope: 'col', class: column.class ?? null }, column.label);
      const active = this.state?.sort === column.key;
      const next = active && this.state.dir === 'asc' ? 'desc' : 'asc';
      return h('th', { scope: 'col', class: column.class ?? null,
        'aria-sort': active ? (this.state.dir === 'asc' ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', class: 'sort', dataset: { sort: column.key },
        title: `Sort by ${column.label.toLowerCase()}`,
        onclick: () => this.onNavigate({ sort: column.key, dir: active ? next : (column.firstDir ?? 'asc'), page: 0 }) },
      column.label, h('span', { class: 'sort-arrow', 'aria-hidden': 'true' },
        active ? (this.state.dir === 'asc' ? '▲' : '▼') : '')));
    });
    const all = this.bulk ? h('input', { type: 'checkbox', 'aria-label': 'Select every row of this page',
      checked: this.items.length > 0 && this.items.every(item => this.selected.has(item.ID)),
      onchange: event => this.selectAll(event.target.checked) }) : null;
    return h('thead', {}, h('tr', {}, this.bulk ? h('th', { class: 'check', scope: 'col' }, all) : null, cells));
  }

  render() {
    if (!this.items.length) {
      fill(this.tableWrap, emptyState(this.level === 'Patient' ? 'patients' : 'studies',
        this.state.page > 0 ? 'No more results.' : this.emptyText ?? 'Nothing matches.'));
      this.renderBulk();
      return;
    }
    const rows = this.items.map(item => {
      const selected = this.selected.has(item.ID);
      const row = h('tr', { class: `clickable ${selected ? 'selected' : ''}`, dataset: { id: item.ID } },
        this.bulk ? h('td', { class: 'check' }, h('input', { type: 'checkbox', checked: selected,
          'aria-label': 'Select this row', onchange: event => this.select(item, event.target.checked) })) : null,
        this.columns.map(column => h('td', { class: column.class ?? null }, column.render(item))));
      row.addEventListener('click', event => {
        if (event.target.closest('a, button, input, label')) return;
        location.hash = this.route(item);
      });
      return row;
    });
    const table = h('table', { class: 'list' },
      this.caption ? h('caption', { class: 'visually-hidden' }, this.caption) : null,
      this.head(), h('tbody', {}, rows));
    fill(this.tableWrap, table);
    this.renderBulk();
  }

  renderFoot(total) {
    const { page, size } = this.state;
    const first = this.items.length ? page * size + 1 : 0;
    const last = page * size + this.items.length;
    const range = this.items.length
      ? `${integer(first)}–${integer(last)}${total !== null ? ` of ${integer(total)}` : ''}`
      : (total !== null ? `${integer(total)} in all` : '');
    const sizeSelect = h('select', { 'aria-label': 'Rows per page', onchange: event =>
      this.onNavigate({ size: Number(event.target.value), page: 0 }) },
    PAGE_SIZES.map(n => h('option', { value: n, selected: n === size }, `${n} per page`)));
    const pages = total !== null ? Math.max(1, Math.ceil(total / size)) : null;
    fill(this.foot,
      h('span', { class: 'range', 'aria-live': 'polite' }, range),
      h('span', { class: 'grow' }),
      sizeSelect,
      button('First page', { icon: 'first', iconOnly: true, kind: 'small', disabled: page === 0,
        onclick: () => this.onNavigate({ page: 0 }) }),
      button('Previous page', { icon: 'prev', iconOnly: true, kind: 'small', disabled: page === 0,
        onclick: () => this.onNavigate({ page: page - 1 }), 'data-page': 'prev' }),
      h('span', { class: 'page-number' }, `Page ${integer(page + 1)}${pages ? ` of ${integer(pages)}` : ''}`),
      button('Next page', { icon: 'next', iconOnly: true, kind: 'small', disabled: !this.hasNext,
        onclick: () => this.onNavigate({ page: page + 1 }), 'data-page': 'next' }));
  }

  select(item, on) {
    if (on) this.selected.set(item.ID, item);
    else this.selected.delete(item.ID);
    this.tableWrap.querySelector(`tr[data-id="${item.ID}"]`)?.classList.toggle('selected', on);
    this.renderBulk();
  }

  selectAll(on) {
    for (const item of this.items) this.select(item, on);
    for (const box of this.tableWrap.querySelectorAll('tbody input[type=checkbox]')) box.checked = on;
  }

  clearSelection() {
    this.selected.clear();
    this.render();
  }

  renderBulk() {
    if (!this.bulk) return;
    const chosen = [...this.selected.values()];
    this.bulkBar.hidden = chosen.length === 0;
    if (!chosen.length) return;
    fill(this.bulkBar, h('strong', {}, `${chosen.length} selected`), this.bulk(chosen),
      h('span', { class: 'grow' }),
      button('Clear selection', { icon: 'x', kind: 'ghost small', onclick: () => this.clearSelection() }));
  }
}
