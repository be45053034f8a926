// Query / retrieve: C-FIND a modality (POST /modalities/{name}/query), list the answers
// (/queries/{id}/answers), drill into a study's series, and C-MOVE what is chosen to
// this server (/queries/{id}/answers/{n}/retrieve, a job followed live).

import { find, get, post } from '../api.js';
import { emptyState, errorBox, notify, notifyError } from '../dialog.js';
import { button, dicomDate, fill, h, integer, personName, toDicomDate } from '../dom.js';
import { runJob } from '../jobs.js';
import { emit } from '../state.js';

const STUDY_KEYS = ['PatientName', 'PatientID', 'PatientBirthDate', 'StudyDate', 'StudyDescription',
  'AccessionNumber', 'ModalitiesInStudy', 'NumberOfStudyRelatedInstances', 'NumberOfStudyRelatedSeries'];
const SERIES_KEYS = { Modality: '', SeriesDescription: '', SeriesNumber: '', NumberOfSeriesRelatedInstances: '' };

export class QueryView {
  constructor(main) {
    this.main = main;
    this.modality = h('select', { name: 'modality', required: true, 'aria-label': 'Modality to query', class: 'w-modality' });
    this.form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Query a modality',
      onsubmit: event => { event.preventDefault(); this.search(); } },
    h('div', { class: 'field' }, h('span', { id: 'query-modality' }, 'Modality'), h('span', { class: 'inline' }, this.modality,
      button('Echo', { icon: 'echo', title: 'C-ECHO: is the modality reachable?', onclick: () => this.echo() }))),
    h('label', { class: 'field w-name' }, 'Patient name', h('input', { type: 'search', name: 'PatientName', placeholder: 'DOE*' })),
    h('label', { class: 'field w-id' }, 'Patient ID', h('input', { type: 'search', name: 'PatientID' })),
    h('div', { class: 'field' }, h('span', {}, 'Study date'), h('span', { class: 'inline' },
      h('input', { type: 'date', name: 'from', 'aria-label': 'Study date from', class: 'w-date' }), '–',
      h('input', { type: 'date', name: 'to', 'aria-label': 'Study date to', class: 'w-date' }))),
    h('label', { class: 'field w-acc' }, 'Accession', h('input', { type: 'search', name: 'AccessionNumber' })),
    h('label', { class: 'field w-mod' }, 'Modalities', h('input', { type: 'search', name: 'ModalitiesInStudy', placeholder: 'CT' })),
    h('div', { class: 'buttons' }, button('Search', { icon: 'search', kind: 'primary', type: 'submit' })));
    this.results = h('div', { class: 'query-results' });
    fill(main,
      h('div', { class: 'page-head' }, h('h1', {}, 'Query / retrieve'),
        h('span', { class: 'sub' }, 'Search a DICOM modality (C-FIND), then retrieve studies or series here (C-MOVE).')),
      h('div', { class: 'panel' }, this.form, this.results));
    this.loadModalities();
  }

  update() {}

  destroy() {}

  async loadModalities() {
    try {
      const modalities = await get('/modalities?expand');
      const names = Object.keys(modalities);
      fill(this.modality, names.map(name => h('option', { value: name },
        `${name} (${modalities[name].AET}@${modalities[name].Host}:${modalities[name].Port})`)));
      if (!names.length) {
        fill(this.results, emptyState('remote', 'No modality is configured (DicomModalities, or PUT /modalities/{name}).'));
      } else {
        fill(this.results, emptyState('search', 'Search to list the studies of the modality.'));
      }
    } catch (failure) {
      fill(this.results, errorBox(failure));
    }
  }

  async echo() {
    const name = this.modality.value;
    if (!name) return;
    try {
      await post(`/modalities/${encodeURIComponent(name)}/echo`, {});
      notify(`C-ECHO to ${name} succeeded`);
    } catch (failure) {
      notifyError(`C-ECHO to ${name} failed`, failure);
    }
  }

  query() {
    const elements = this.form.elements;
    const query = Object.fromEntries(STUDY_KEYS.map(key => [key, '']));
    for (const key of ['PatientName', 'PatientID', 'AccessionNumber', 'ModalitiesInStudy']) {
      query[key] = elements[key].value.trim();
    }
    // A name is a prefix unless it has wildcards (as in the archive's own lists).
    if (query.PatientName && !/[*?]/.test(query.PatientName)) query.PatientName += '*';
    const from = toDicomDate(elements.from.value);
    const to = toDicomDate(elements.to.value);
    if (from || to) query.StudyDate = `${from}-${to}`;
    return query;
  }

  async search() {
    const name = this.modality.value;
    if (!name) return;
    fill(this.results, h('p', { class: 'muted panel-pad' }, `Querying ${name}…`));
    try {
      const started = await post(`/modalities/${encodeURIComponent(name)}/query`, { Level: 'Study', Query: this.query() });
      this.queryId = started.ID;
      const answers = await get(`/queries/${started.ID}/answers?expand&simplify`);
      await this.render(name, answers);
    } catch (failure) {
      fill(this.results, errorBox(failure));
    }
  }

  async local(uids) {
    if (!uids.length) return new Map();
    const found = await find({ Level: 'Study', Query: { StudyInstanceUID: uids.join('\\') }, ResponseContent: ['MainDicomTags'] });
    return new Map(found.map(study => [study.MainDicomTags.StudyInstanceUID, study.ID]));
  }

  async render(name, answers) {
    if (!answers.length) {
      fill(this.results, emptyState('search', `${name} has no study matching this query.`));
      return;
    }
    const here = await this.local(answers.map(a => a.StudyInstanceUID).filter(Boolean)).catch(() => new Map());
    const rows = answers.flatMap((answer, index) => {
      const seriesRow = h('tr', { hidden: true, class: 'series-row' }, h('td', { colspan: 9 }));
      const local = here.get(answer.StudyInstanceUID);
      const row = h('tr', { dataset: { answer: index } },
        h('td', {}, personName(answer.PatientName)),
        h('td', { class: 'nowrap' }, answer.PatientID ?? ''),
        h('td', { class: 'nowrap' }, dicomDate(answer.StudyDate)),
        h('td', { class: 'clip' }, answer.StudyDescription ?? ''),
        h('td', {}, (answer.ModalitiesInStudy ?? '').split('\\').filter(Boolean).map(m => h('span', { class: 'chip mod' }, m))),
        h('td', { class: 'nowrap' }, answer.AccessionNumber ?? ''),
        h('td', { class: 'num' }, integer(answer.NumberOfStudyRelatedInstances)),
        h('td', {}, local ? h('a', { class: 'chip ok', href: `#/studies/${local}` }, 'in the archive') : null),
        h('td', { class: 'tight' }, h('div', { class: 'inline' },
          button('Series', { kind: 'small', 'aria-expanded': 'false', onclick: event => this.toggleSeries(index, seriesRow, event.currentTarget) }),
          button('Retrieve', { icon: 'download', kind: 'small', 'data-action': 'retrieve',
            onclick: () => this.retrieve(`/queries/${this.queryId}/answers/${index}/retrieve`,
              `Retrieve ${personName(answer.PatientName)} ${dicomDate(answer.StudyDate)} from ${name}`) }))));
      return [row, seriesRow];
    });
    fill(this.results,
      h('div', { class: 'bulkbar' }, h('strong', {}, `${integer(answers.length)} stud${answers.length === 1 ? 'y' : 'ies'} on ${name}`),
        h('span', { class: 'grow' }),
        button('Retrieve all', { icon: 'download', kind: 'small', onclick: () => this.retrieve(`/queries/${this.queryId}/retrieve`,
          `Retrieve ${answers.length} studies from ${name}`) })),
      h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'query-answers' },
        h('thead', {}, h('tr', {}, ['Patient name', 'Patient ID', 'Study date', 'Description', 'Modalities',
          'Accession', 'Instances', 'Here', ''].map(n => h('th', { scope: 'col' }, n)))),
        h('tbody', {}, rows))));
  }

  async toggleSeries(index, row, toggle) {
    row.hidden = !row.hidden;
    toggle.setAttribute('aria-expanded', String(!row.hidden));
    if (row.hidden) return;
    const cell = row.firstChild;
    fill(cell, h('span', { class: 'muted' }, 'Querying the series…'));
    try {
      const started = await post(`/queries/${this.queryId}/answers/${index}/query-series`, { Query: SERIES_KEYS });
      const answers = await get(`/queries/${started.ID}/answers?expand&simplify`);
      fill(cell, h('table', { class: 'list' }, h('tbody', {}, answers.map((series, n) => h('tr', {},
        h('td', { class: 'nowrap' }, `#${series.SeriesNumber ?? ''}`),
        h('td', {}, series.Modality ? h('span', { class: 'chip mod' }, series.Modality) : null),
        h('td', {}, series.SeriesDescription ?? ''),
        h('td', { class: 'num' }, `${integer(series.NumberOfSeriesRelatedInstances)} inst.`),
        h('td', { class: 'tight' }, button('Retrieve', { icon: 'download', kind: 'small',
          onclick: () => this.retrieve(`/queries/${started.ID}/answers/${n}/retrieve`,
            `Retrieve series ${series.SeriesNumber ?? ''} ${series.SeriesDescription ?? ''}`) })))))));
    } catch (failure) {
      fill(cell, errorBox(failure));
    }
  }

  async retrieve(path, title) {
    try {
      await runJob(path, {}, title, 'Retrieved');
      emit('changes');
      this.search();
    } catch { /* the job's toast says why */ }
  }
}
