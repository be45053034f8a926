// The study list (the explorer's home) and the patient list: filters, sortable columns,
// paging, selection with bulk actions. Their state is the route's query string
// (#/studies?PatientName=DOE&sort=date&dir=desc&page=2), so Back, reload and bookmarks
// keep it.

import { put, url } from '../api.js';
import { deleteResources, sendDialog } from '../actions.js';
import { notify, notifyError, openDialog } from '../dialog.js';
import { button, daysAgo, dicomDate, fill, h, icon, integer, orthancStamp, personName, toDicomDate } from '../dom.js';
import { runJob } from '../jobs.js';
import { emit, events } from '../state.js';
import { FindList, PAGE_SIZES } from '../table.js';

const MODALITIES = ['CT', 'MR', 'CR', 'DX', 'US', 'PT', 'NM', 'MG', 'XA', 'RF', 'OT', 'SR', 'SEG', 'RTSTRUCT', 'SC', 'ECG'];

/** A text filter as the user typed it -> a /tools/find value: a prefix unless it has wildcards. */
function matchValue(text) {
  const value = text.trim();
  if (!value) return null;
  return /[*?]/.test(value) ? value : `${value}*`;
}

/** The day of a last update (the time in its tooltip). */
function lastUpdate(stamp) {
  const full = orthancStamp(stamp);
  return h('span', { title: full }, full.slice(0, 10));
}

function labelChips(labels) {
  return (labels ?? []).map(label => h('span', { class: 'chip label' }, label));
}

function modalityChips(text) {
  return (text ?? '').split('\\').filter(Boolean).map(m => h('span', { class: 'chip mod' }, m));
}

/** Shared by both lists: the filter form, the table, the route <-> state mapping. */
class ListView {
  constructor(main, { title, route, fields, list, intro }) {
    this.route = route;
    this.fields = fields;
    this.list = list;
    this.form = h('form', { class: 'filters', role: 'search', 'aria-label': `Search ${title.toLowerCase()}`,
      onsubmit: event => { event.preventDefault(); this.submit(); } });
    this.chips = h('div', { class: 'filter-chips', hidden: true });
    this.buildForm();
    fill(main,
      h('div', { class: 'page-head' }, h('h1', {}, title), intro ? h('span', { class: 'sub' }, intro) : null,
        h('span', { class: 'grow' }),
        button('Refresh', { icon: 'refresh', onclick: () => this.list.reload() })),
      h('div', { class: 'panel' }, this.form, this.chips, this.list.element));
    this.onChanges = () => this.refreshSoon();
    events.addEventListener('changes', this.onChanges);
    events.addEventListener('remote-changes', this.onChanges);
  }

  destroy() {
    events.removeEventListener('changes', this.onChanges);
    events.removeEventListener('remote-changes', this.onChanges);
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  /**
   * The archive changed: reload this page soon, at most every two seconds whatever the
   * rate of changes, and not under the user's hands (rows selected, focus in the table).
   */
  refreshSoon() {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      const busy = this.list.selected.size || this.list.element.contains(document.activeElement);
      if (busy) this.refreshSoon();
      else this.list.reload();
    }, 2000);
  }

  buildForm() {
    const controls = this.fields.map(field => {
      if (field.kind === 'dates') return this.dateField(field);
      if (field.kind === 'select') {
        return h('label', { class: `field ${field.class}` }, field.label,
          h('select', { name: field.name }, h('option', { value: '' }, 'Any'),
            field.options.map(o => h('option', { value: o }, o))));
      }
      return h('label', { class: `field ${field.class}` }, field.label,
        h('input', { type: 'search', name: field.name, placeholder: field.placeholder ?? '', autocomplete: 'off',
          spellcheck: 'false' }));
    });
    fill(this.form, controls, h('div', { class: 'buttons' },
      button('Search', { icon: 'search', kind: 'primary', type: 'submit' }),
      button('Clear', { kind: 'ghost', onclick: () => { this.form.reset(); this.syncDates(); this.submit(); } })));
  }

  dateField(field) {
    const preset = h('select', { name: `${field.name}:preset`, 'aria-label': `${field.label} range`,
      onchange: () => this.applyPreset(field) },
    [['', 'Any date'], ['0', 'Today'], ['1', 'Yesterday'], ['7', 'Last 7 days'], ['31', 'Last 31 days'],
      ['365', 'Last year'], ['custom', 'Between…']].map(([value, text]) => h('option', { value }, text)));
    const from = h('input', { type: 'date', name: `${field.name}:from`, 'aria-label': `${field.label} from`, class: 'w-date' });
    const to = h('input', { type: 'date', name: `${field.name}:to`, 'aria-label': `${field.label} to`, class: 'w-date' });
    const range = h('span', { class: 'inline', hidden: true }, from, '–', to);
    this.dates = { field, preset, from, to, range };
    return h('div', { class: 'field' }, h('span', {}, field.label), h('span', { class: 'inline' }, preset, range));
  }

  applyPreset() {
    const { preset, from, to } = this.dates;
    const value = preset.value;
    if (value === '' || value === 'custom') {
      if (value === '') from.value = to.value = '';
    } else if (value === '1') {
      from.value = to.value = daysAgo(1);
    } else {
      from.value = daysAgo(Number(value));
      to.value = '';
    }
    this.syncDates();
    if (value !== 'custom') this.submit();
  }

  syncDates() {
    if (!this.dates) return;
    const { preset, from, to, range } = this.dates;
    range.hidden = !(preset.value === 'custom' || ((from.value || to.value) && preset.value === ''));
    if (!range.hidden && preset.value === '') preset.value = 'custom';
  }

  /** Form -> route (the router calls update() with it). */
  submit(extra = {}) {
    const params = new URLSearchParams();
    for (const field of this.fields) {
      if (field.kind === 'dates') {
        const from = toDicomDate(this.dates.from.value);
        const to = toDicomDate(this.dates.to.value);
        if (from || to) params.set(field.name, from === to ? from : `${from}-${to}`);
        continue;
      }
      const value = this.form.elements[field.name].value.trim();
      if (value) params.set(field.name, value);
    }
    for (const key of ['label', 'sort', 'dir', 'size']) {
      if (this.params?.get(key)) params.set(key, this.params.get(key));
    }
    for (const [key, value] of Object.entries(extra)) {
      if (value === null || value === undefined || value === '') params.delete(key);
      else params.set(key, String(value));
    }
    if (params.get('page') === '0') params.delete('page');
    const search = params.toString();
    location.hash = `${this.route}${search ? `?${search}` : ''}`;
  }

  navigate(change) {
    const params = new URLSearchParams(this.params);
    for (const [key, value] of Object.entries(change)) params.set(key, String(value));
    if (params.get('page') === '0') params.delete('page');
    location.hash = `${this.route}?${params}`;
  }

  /** Route -> form and table. */
  update(params) {
    this.params = params;
    for (const field of this.fields) {
      if (field.kind === 'dates') {
        const [from = '', to = from] = (params.get(field.name) ?? '').split('-');
        const pad = value => (value ? dicomDate(value) : '');
        this.dates.from.value = pad(from);
        this.dates.to.value = pad((params.get(field.name) ?? '').includes('-') ? to : from);
        if (!params.get(field.name)) this.dates.preset.value = '';
        this.syncDates();
        continue;
      }
      const element = this.form.elements[field.name];
      if (element && document.activeElement !== element) element.value = params.get(field.name) ?? '';
    }
    const query = {};
    for (const field of this.fields) {
      const value = params.get(field.name);
      if (!value) continue;
      query[field.name] = field.kind === 'text' ? matchValue(value) : value;
    }
    const label = params.get('label');
    fill(this.chips, label ? [h('span', { class: 'muted' }, 'With the label'),
      h('span', { class: 'chip label' }, label,
        h('button', { type: 'button', 'aria-label': `Stop filtering by the label ${label}`,
          onclick: () => this.submit({ label: null, page: null }) }, icon('x')))] : null);
    this.chips.hidden = !label;
    const size = PAGE_SIZES.includes(Number(params.get('size'))) ? Number(params.get('size')) : 25;
    return this.list.load({
      query, labels: label ? [label] : [], sort: params.get('sort'), dir: params.get('dir') ?? this.defaultDir,
      page: Math.max(0, Number(params.get('page') ?? 0) || 0), size,
    });
  }
}

// ---- studies ------------------------------------------------------------------------

export class StudiesView extends ListView {
  constructor(main) {
    const list = new FindList({
      level: 'Study', caption: 'Studies',
      request: {
        ResponseContent: ['MainDicomTags', 'Labels', 'Metadata', 'RequestedTags', 'Parent'],
        RequestedTags: ['ModalitiesInStudy', 'NumberOfStudyRelatedSeries', 'NumberOfStudyRelatedInstances'],
      },
      columns: [
        { key: 'name', label: 'Patient name', sort: [{ Type: 'DicomTag', Key: 'PatientName' }],
          render: s => h('a', { href: `#/studies/${s.ID}`, title: s.PatientMainDicomTags?.PatientName ?? '' },
            personName(s.PatientMainDicomTags?.PatientName) || '(no name)') },
        { key: 'id', label: 'Patient ID', sort: [{ Type: 'DicomTag', Key: 'PatientID' }], class: 'clip id',
          render: s => h('a', { href: `#/patients/${s.ParentPatient}`, class: 'quiet',
            title: `${s.PatientMainDicomTags?.PatientID ?? ''}: the patient's page` }, s.PatientMainDicomTags?.PatientID ?? '') },
        { key: 'date', label: 'Study date', firstDir: 'desc', class: 'nowrap',
          sort: [{ Type: 'DicomTag', Key: 'StudyDate' }, { Type: 'DicomTag', Key: 'StudyTime' }],
          render: s => dicomDate(s.MainDicomTags?.StudyDate) },
        { key: 'description', label: 'Description', sort: [{ Type: 'DicomTag', Key: 'StudyDescription' }], class: 'clip',
          render: s => h('span', { title: s.MainDicomTags?.StudyDescription ?? '' }, s.MainDicomTags?.StudyDescription ?? '') },
        { key: 'modalities', label: 'Modalities', render: s => modalityChips(s.RequestedTags?.ModalitiesInStudy) },
        { key: 'accession', label: 'Accession', sort: [{ Type: 'DicomTag', Key: 'AccessionNumber' }], class: 'clip id',
          render: s => h('span', { title: s.MainDicomTags?.AccessionNumber ?? '' }, s.MainDicomTags?.AccessionNumber ?? '') },
        { key: 'size', label: 'Ser. / inst.', class: 'num nowrap',
          render: s => h('span', { title: `${integer(s.RequestedTags?.NumberOfStudyRelatedSeries)} series, ${integer(s.RequestedTags?.NumberOfStudyRelatedInstances)} instances` },
            `${integer(s.RequestedTags?.NumberOfStudyRelatedSeries)} / ${integer(s.RequestedTags?.NumberOfStudyRelatedInstances)}`) },
        { key: 'labels', label: 'Labels', render: s => labelChips(s.Labels) },
        { key: 'received', label: 'Last update', firstDir: 'desc', class: 'nowrap faint',
          sort: [{ Type: 'Metadata', Key: 'LastUpdate' }], render: s => lastUpdate(s.Metadata?.LastUpdate) },
      ],
      route: s => `#/studies/${s.ID}`,
      onNavigate: change => this.navigate(change),
      bulk: chosen => bulkActions('Study', chosen, list),
      emptyText: 'No study matches. Upload files, or change the filters.',
    });
    super(main, {
      title: 'Studies', route: '#/studies', list,
      fields: [
        { name: 'PatientName', label: 'Patient name', class: 'w-name', kind: 'text', placeholder: 'DOE^J or *smith*' },
        { name: 'PatientID', label: 'Patient ID', class: 'w-id', kind: 'text' },
        { name: 'StudyDate', label: 'Study date', kind: 'dates' },
        { name: 'StudyDescription', label: 'Description', class: 'w-desc', kind: 'text' },
        { name: 'AccessionNumber', label: 'Accession', class: 'w-acc', kind: 'text' },
        { name: 'ModalitiesInStudy', label: 'Modality', class: 'w-mod', kind: 'select', options: MODALITIES },
      ],
    });
    this.defaultDir = 'desc';
  }

  update(params) {
    if (!params.get('sort')) {
      params = new URLSearchParams(params);
      params.set('sort', 'received');
    }
    return super.update(params);
  }
}

// ---- patients -----------------------------------------------------------------------

export class PatientsView extends ListView {
  constructor(main) {
    const list = new FindList({
      level: 'Patient', caption: 'Patients',
      request: {
        ResponseContent: ['MainDicomTags', 'Labels', 'Metadata', 'RequestedTags', 'IsProtected'],
        RequestedTags: ['NumberOfPatientRelatedStudies', 'NumberOfPatientRelatedInstances'],
      },
      columns: [
        { key: 'name', label: 'Patient name', sort: [{ Type: 'DicomTag', Key: 'PatientName' }],
          render: p => h('a', { href: `#/patients/${p.ID}` }, personName(p.MainDicomTags?.PatientName) || '(no name)') },
        { key: 'id', label: 'Patient ID', sort: [{ Type: 'DicomTag', Key: 'PatientID' }], class: 'clip id',
          render: p => h('span', { title: p.MainDicomTags?.PatientID ?? '' }, p.MainDicomTags?.PatientID ?? '') },
        { key: 'birth', label: 'Birth date', sort: [{ Type: 'DicomTag', Key: 'PatientBirthDate' }], class: 'nowrap',
          render: p => dicomDate(p.MainDicomTags?.PatientBirthDate) },
        { key: 'sex', label: 'Sex', render: p => p.MainDicomTags?.PatientSex ?? '' },
        { key: 'studies', label: 'Studies / inst.', class: 'num nowrap',
          render: p => `${integer(p.RequestedTags?.NumberOfPatientRelatedStudies)} / ${integer(p.RequestedTags?.NumberOfPatientRelatedInstances)}` },
        { key: 'protected', label: 'Protected', render: p => (p.IsProtected
          ? h('span', { class: 'chip', title: 'Protected from recycling' }, icon('lock'), 'protected') : '') },
        { key: 'labels', label: 'Labels', render: p => labelChips(p.Labels) },
        { key: 'received', label: 'Last update', firstDir: 'desc', class: 'nowrap faint',
          sort: [{ Type: 'Metadata', Key: 'LastUpdate' }], render: p => lastUpdate(p.Metadata?.LastUpdate) },
      ],
      route: p => `#/patients/${p.ID}`,
      onNavigate: change => this.navigate(change),
      bulk: chosen => bulkActions('Patient', chosen, list),
      emptyText: 'No patient matches.',
    });
    super(main, {
      title: 'Patients', route: '#/patients', list,
      fields: [
        { name: 'PatientName', label: 'Patient name', class: 'w-name', kind: 'text', placeholder: 'DOE^J or *smith*' },
        { name: 'PatientID', label: 'Patient ID', class: 'w-id', kind: 'text' },
        { name: 'PatientBirthDate', label: 'Birth date', class: 'w-id', kind: 'exact', placeholder: 'YYYYMMDD' },
      ],
    });
    this.defaultDir = 'asc';
  }

  update(params) {
    if (!params.get('sort')) {
      params = new URLSearchParams(params);
      params.set('sort', 'name');
    }
    return super.update(params);
  }
}

// ---- bulk actions on the selected rows ------------------------------------------------

function bulkActions(level, chosen, list) {
  const resources = chosen.map(item => ({ level, id: item.ID,
    title: personName(item.PatientMainDicomTags?.PatientName ?? item.MainDicomTags?.PatientName) }));
  return [
    button('Add a label…', { icon: 'tag', kind: 'small', onclick: () => bulkLabel(level, resources, list) }),
    button('Send…', { icon: 'send', kind: 'small', onclick: () => sendDialog(resources) }),
    button('Download ZIP', { icon: 'download', kind: 'small', onclick: () => bulkArchive(resources) }),
    button('Delete…', { icon: 'trash', kind: 'small danger', onclick: async () => {
      const done = await deleteResources(resources, { after: () => {} });
      if (done) { list.selected.clear(); list.reload(); }
    } }),
  ];
}

async function bulkLabel(level, resources, list) {
  const label = await openDialog({
    title: `Add a label to ${resources.length} resource(s)`,
    body: h('label', { class: 'field' }, 'Label (letters, digits, "_" and "-")',
      h('input', { type: 'text', name: 'label', maxlength: 64, autocomplete: 'off' })),
    submitLabel: 'Add',
    onSubmit: form => {
      const value = form.elements.label.value.trim();
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) throw new Error('Letters, digits, "_" and "-" only (at most 64).');
      return value;
    },
  });
  if (!label) return;
  const path = level === 'Study' ? 'studies' : 'patients';
  try {
    await Promise.all(resources.map(r => put(`/${path}/${r.id}/labels/${encodeURIComponent(label)}`, '')));
    notify(`Label "${label}" added`, `${resources.length} resource(s)`);
    emit('labels');
    list.reload();
  } catch (failure) {
    notifyError('Cannot add the label', failure);
  }
}

/** Several resources in one ZIP: an archive job, then its download. */
async function bulkArchive(resources) {
  try {
    const job = await runJob('/tools/create-archive', { Resources: resources.map(r => r.id) },
      `Archive of ${resources.length} resource(s)`);
    const link = document.createElement('a');
    link.href = url(`/jobs/${job.ID}/archive`);
    link.download = '';
    document.body.append(link);
    link.click();
    link.remove();
  } catch { /* the job's toast says why */ }
}
