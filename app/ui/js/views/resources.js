// The pages of one patient, study, series or instance: what it is, what it holds, and
// the actions on it.

import { find, get, url } from '../api.js';
import { actionBar, labelsEditor } from '../actions.js';
import { emptyState, errorBox } from '../dialog.js';
import { bytes, button, debounce, dicomDate, dicomTime, fill, h, icon, integer, orthancStamp, personName } from '../dom.js';
import { sopClassName, transferSyntaxName } from '../names.js';
import { server } from '../state.js';
import { FindList } from '../table.js';

// Transfer syntaxes whose pixels /preview (Orthanc's built-in decoder) does not decode:
// JPEG 2000 and High-Throughput JPEG 2000 (drawn by DICOMweb's /rendered instead), and
// video (no still image).
const JPEG2000 = /^1\.2\.840\.10008\.1\.2\.4\.(9[0-3]|20[1-4])$/;
const VIDEO = /^1\.2\.840\.10008\.1\.2\.4\.(10[0-8])$/;

/**
 * The URL of an image of the instance, or null with the reason there is none.
 * instance: a /tools/find answer with Metadata and MainDicomTags; uids: {study, series}.
 */
export function previewOf(instance, uids, frame = null) {
  const metadata = instance.Metadata ?? {};
  if (!metadata.PixelDataOffset && !metadata.PixelDataVR) return { reason: 'No image' };
  const syntax = metadata.TransferSyntax ?? '';
  if (VIDEO.test(syntax)) return { reason: 'Video' };
  if (JPEG2000.test(syntax)) {
    const sop = instance.MainDicomTags?.SOPInstanceUID;
    if (!server.dicomweb || !uids?.study || !uids?.series || !sop) return { reason: 'JPEG 2000' };
    const framePart = frame === null ? '' : `/frames/${frame + 1}`;
    return { src: url(`/dicom-web/studies/${uids.study}/series/${uids.series}/instances/${sop}${framePart}/rendered`) };
  }
  const framePart = frame === null ? '' : `/frames/${frame}`;
  return { src: url(`/instances/${instance.ID}${framePart}/preview`) };
}

function thumbnail(preview, alt) {
  if (!preview?.src) return h('div', { class: 'thumb' }, preview?.reason ?? '');
  const img = h('img', { src: preview.src, alt, loading: 'lazy', decoding: 'async' });
  img.addEventListener('error', () => img.replaceWith('No preview'));
  return h('div', { class: 'thumb' }, img);
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([name, value, wrap]) => h('div', {}, h('dt', {}, name),
      h('dd', { class: wrap ? 'wrap' : null, title: typeof value === 'string' ? value : null }, value))));
}

function crumbs(items) {
  const parts = [];
  items.forEach(([text, href], index) => {
    if (index) parts.push(h('span', { 'aria-hidden': 'true' }, '›'));
    parts.push(href ? h('a', { href }, text) : h('span', { 'aria-current': 'page' }, text));
  });
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, parts);
}

function head(kind, title, ...rest) {
  return h('section', { class: 'panel resource-head' },
    h('div', { class: 'kind' }, kind), h('h1', {}, title), ...rest);
}

function labelsRow(resource, labels) {
  return h('div', { class: 'labels-row' }, icon('tag'), h('span', { class: 'muted' }, 'Labels'),
    labelsEditor(resource, labels));
}

/** Base of the resource pages: load, render, reload on demand. */
class ResourceView {
  constructor(main) {
    this.main = main;
  }

  async update(params, id) {
    this.id = id;
    fill(this.main, h('p', { class: 'muted' }, 'Loading…'));
    try {
      await this.render(id);
    } catch (failure) {
      fill(this.main, failure.status === 404
        ? emptyState('studies', 'This resource is not in the archive (anymore).', h('p', {}, h('a', { href: '#/studies' }, 'Back to the studies')))
        : errorBox(failure));
    }
  }

  destroy() {}
}

// ---- patient -----------------------------------------------------------------------

export class PatientView extends ResourceView {
  async render(id) {
    const patient = await get(`/patients/${id}`);
    const tags = patient.MainDicomTags ?? {};
    const title = personName(tags.PatientName) || '(no name)';
    const resource = { level: 'Patient', id, tags, title };
    const studies = new FindList({
      level: 'Study', caption: 'Studies of the patient',
      request: {
        ParentPatient: id, ResponseContent: ['MainDicomTags', 'Labels', 'RequestedTags'],
        RequestedTags: ['ModalitiesInStudy', 'NumberOfStudyRelatedSeries', 'NumberOfStudyRelatedInstances'],
      },
      columns: studyColumns(),
      route: s => `#/studies/${s.ID}`,
      onNavigate: change => studies.load({ ...studies.state, ...change }),
    });
    const uids = await find({ Level: 'Study', Query: {}, ParentPatient: id, ResponseContent: ['MainDicomTags'], Limit: 50 })
      .then(list => list.map(s => s.MainDicomTags?.StudyInstanceUID).filter(Boolean));
    fill(this.main,
      crumbs([['Patients', '#/patients'], [title]]),
      head('Patient', title,
        facts([['Patient ID', tags.PatientID], ['Birth date', dicomDate(tags.PatientBirthDate)], ['Sex', tags.PatientSex],
          ['Studies', integer(patient.Studies?.length)], ['Last update', orthancStamp(patient.LastUpdate)]]),
        labelsRow(resource, patient.Labels ?? []),
        actionBar({ ...resource, studyUids: uids })),
      h('div', { class: 'section-head' }, h('h2', {}, 'Studies')),
      h('div', { class: 'panel' }, studies.element));
    await studies.load({ query: {}, sort: 'date', dir: 'desc', page: 0, size: 25 });
  }
}

function studyColumns() {
  return [
    { key: 'date', label: 'Study date', firstDir: 'desc', class: 'nowrap',
      sort: [{ Type: 'DicomTag', Key: 'StudyDate' }, { Type: 'DicomTag', Key: 'StudyTime' }],
      render: s => h('a', { href: `#/studies/${s.ID}` }, dicomDate(s.MainDicomTags?.StudyDate) || '(no date)') },
    { key: 'description', label: 'Description', sort: [{ Type: 'DicomTag', Key: 'StudyDescription' }], class: 'clip',
      render: s => s.MainDicomTags?.StudyDescription ?? '' },
    { key: 'modalities', label: 'Modalities', render: s => (s.RequestedTags?.ModalitiesInStudy ?? '').split('\\')
      .filter(Boolean).map(m => h('span', { class: 'chip mod' }, m)) },
    { key: 'accession', label: 'Accession', sort: [{ Type: 'DicomTag', Key: 'AccessionNumber' }],
      render: s => s.MainDicomTags?.AccessionNumber ?? '' },
    { key: 'size', label: 'Series / inst.', class: 'num nowrap',
      render: s => `${integer(s.RequestedTags?.NumberOfStudyRelatedSeries)} / ${integer(s.RequestedTags?.NumberOfStudyRelatedInstances)}` },
    { key: 'labels', label: 'Labels', render: s => (s.Labels ?? []).map(l => h('span', { class: 'chip label' }, l)) },
  ];
}

// ---- study ---------------------------------------------------------------------------

export class StudyView extends ResourceView {
  async render(id) {
    const study = await get(`/studies/${id}`);
    const tags = study.MainDicomTags ?? {};
    const patient = study.PatientMainDicomTags ?? {};
    const patientName = personName(patient.PatientName) || '(no name)';
    const title = tags.StudyDescription || `Study of ${dicomDate(tags.StudyDate) || 'unknown date'}`;
    const resource = { level: 'Study', id, tags, title, studyUids: [tags.StudyInstanceUID] };
    const series = await find({
      Level: 'Series', Query: {}, ParentStudy: id, ResponseContent: ['MainDicomTags', 'RequestedTags'],
      RequestedTags: ['NumberOfSeriesRelatedInstances'],
      OrderBy: [{ Type: 'DicomTagAsInt', Key: 'SeriesNumber', Direction: 'ASC' }],
    });
    const cards = h('div', { class: 'cards' }, series.map(s => seriesCard(s, tags.StudyInstanceUID)));
    fill(this.main,
      crumbs([['Studies', '#/studies'], [patientName, `#/patients/${study.ParentPatient}`], [title]]),
      head('Study', title,
        facts([
          ['Patient', h('a', { href: `#/patients/${study.ParentPatient}` }, patientName)],
          ['Patient ID', patient.PatientID], ['Birth date', dicomDate(patient.PatientBirthDate)], ['Sex', patient.PatientSex],
          ['Study date', `${dicomDate(tags.StudyDate)} ${dicomTime(tags.StudyTime)}`.trim()],
          ['Accession number', tags.AccessionNumber], ['Study ID', tags.StudyID],
          ['Referring physician', personName(tags.ReferringPhysicianName)], ['Institution', tags.InstitutionName],
          ['Series / instances', `${integer(series.length)} / ${integer(series.reduce((n, s) => n + Number(s.RequestedTags?.NumberOfSeriesRelatedInstances ?? 0), 0))}`],
          ['Last update', orthancStamp(study.LastUpdate)], ['Study Instance UID', tags.StudyInstanceUID, true],
        ]),
        labelsRow(resource, study.Labels ?? []),
        actionBar(resource)),
      h('div', { class: 'section-head' }, h('h2', {}, `Series (${series.length})`)),
      series.length ? cards : emptyState('studies', 'No series.'));
  }
}

function seriesCard(series, studyUid) {
  const tags = series.MainDicomTags ?? {};
  const title = tags.SeriesDescription || `Series ${tags.SeriesNumber ?? ''}`.trim();
  const thumb = h('div', { class: 'thumb' }, '…');
  const card = h('a', { class: 'card', href: `#/series/${series.ID}`, dataset: { series: series.ID },
    'aria-label': `Series ${tags.SeriesNumber ?? ''} ${title}` }, thumb,
  h('div', { class: 'card-body' },
    h('div', { class: 'card-title', title }, title),
    h('div', { class: 'muted' }, tags.Modality ? h('span', { class: 'chip mod' }, tags.Modality) : null, ' ',
      `#${tags.SeriesNumber ?? '?'} · ${integer(series.RequestedTags?.NumberOfSeriesRelatedInstances)} inst.`)));
  // The first instance (by InstanceNumber) stands for the series, looked up once the
  // card is about to be seen (a study may have hundreds of series).
  whenVisible(card, () => find({ Level: 'Instance', Query: {}, ParentSeries: series.ID, Limit: 1,
    ResponseContent: ['MainDicomTags', 'Metadata'],
    OrderBy: [{ Type: 'DicomTagAsInt', Key: 'InstanceNumber', Direction: 'ASC' }] })
    .then(([first]) => thumb.replaceWith(first
      ? thumbnail(previewOf(first, { study: studyUid, series: tags.SeriesInstanceUID }), `First image of ${title}`)
      : h('div', { class: 'thumb' }, 'Empty')))
    .catch(() => thumb.replaceWith(h('div', { class: 'thumb' }, ''))));
  return card;
}

const visibility = 'IntersectionObserver' in window ? new IntersectionObserver(entries => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    visibility.unobserve(entry.target);
    entry.target.onVisible?.();
  }
}, { rootMargin: '300px' }) : null;

function whenVisible(element, callback) {
  if (!visibility) { callback(); return; }
  element.onVisible = callback;
  visibility.observe(element);
}

// ---- series ------------------------------------------------------------------------

const INSTANCES_PAGE = 48;

export class SeriesView extends ResourceView {
  async render(id) {
    const series = await get(`/series/${id}`);
    const study = await get(`/studies/${series.ParentStudy}`);
    const tags = series.MainDicomTags ?? {};
    const studyTags = study.MainDicomTags ?? {};
    const patientName = personName(study.PatientMainDicomTags?.PatientName) || '(no name)';
    const studyTitle = studyTags.StudyDescription || 'Study';
    const title = tags.SeriesDescription || `Series ${tags.SeriesNumber ?? ''}`.trim();
    const resource = { level: 'Series', id, tags, title, studyUids: [studyTags.StudyInstanceUID],
      seriesUid: tags.SeriesInstanceUID };
    this.uids = { study: studyTags.StudyInstanceUID, series: tags.SeriesInstanceUID };
    this.grid = h('div', { class: 'cards small' });
    this.pager = h('div', { class: 'table-foot' });
    fill(this.main,
      crumbs([['Studies', '#/studies'], [patientName, `#/patients/${study.ParentPatient}`],
        [studyTitle, `#/studies/${series.ParentStudy}`], [title]]),
      head('Series', title,
        facts([
          ['Modality', tags.Modality], ['Series number', tags.SeriesNumber],
          ['Series date', `${dicomDate(tags.SeriesDate)} ${dicomTime(tags.SeriesTime)}`.trim()],
          ['Body part', tags.BodyPartExamined], ['Protocol', tags.ProtocolName], ['Station', tags.StationName],
          ['Manufacturer', tags.Manufacturer], ['Instances', integer(series.Instances?.length)],
          ['Status', series.Status], ['Series Instance UID', tags.SeriesInstanceUID, true],
        ]),
        labelsRow(resource, series.Labels ?? []),
        actionBar(resource)),
      h('div', { class: 'section-head' }, h('h2', {}, `Instances (${integer(series.Instances?.length)})`)),
      this.grid, this.pager);
    this.total = series.Instances?.length ?? 0;
    await this.page(0);
  }

  async page(number) {
    const instances = await find({
      Level: 'Instance', Query: {}, ParentSeries: this.id, Since: number * INSTANCES_PAGE, Limit: INSTANCES_PAGE,
      ResponseContent: ['MainDicomTags', 'Metadata'],
      OrderBy: [{ Type: 'DicomTagAsInt', Key: 'InstanceNumber', Direction: 'ASC' }],
    });
    fill(this.grid, instances.map(instance => {
      const number = instance.MainDicomTags?.InstanceNumber ?? '';
      const frames = Number(instance.MainDicomTags?.NumberOfFrames ?? 1);
      return h('a', { class: 'card', href: `#/instances/${instance.ID}`, dataset: { instance: instance.ID },
        'aria-label': `Instance ${number}` },
      thumbnail(previewOf(instance, this.uids), `Instance ${number}`),
      h('div', { class: 'card-body' }, `#${number}`, frames > 1 ? h('span', { class: 'faint' }, ` · ${frames} frames`) : null));
    }));
    const pages = Math.max(1, Math.ceil(this.total / INSTANCES_PAGE));
    fill(this.pager,
      h('span', {}, `${integer(number * INSTANCES_PAGE + (instances.length ? 1 : 0))}–${integer(number * INSTANCES_PAGE + instances.length)} of ${integer(this.total)}`),
      h('span', { class: 'grow' }),
      button('Previous page', { icon: 'prev', iconOnly: true, kind: 'small', disabled: number === 0, onclick: () => this.page(number - 1) }),
      h('span', {}, `Page ${number + 1} of ${pages}`),
      button('Next page', { icon: 'next', iconOnly: true, kind: 'small', disabled: number + 1 >= pages, onclick: () => this.page(number + 1) }));
  }
}

// ---- instance -----------------------------------------------------------------------

export class InstanceView extends ResourceView {
  async render(id) {
    const [instance, metadata] = await Promise.all([get(`/instances/${id}`), get(`/instances/${id}/metadata?expand`)]);
    const series = await get(`/series/${instance.ParentSeries}`);
    const study = await get(`/studies/${series.ParentStudy}`);
    const tags = instance.MainDicomTags ?? {};
    const seriesTags = series.MainDicomTags ?? {};
    const studyTags = study.MainDicomTags ?? {};
    const patientName = personName(study.PatientMainDicomTags?.PatientName) || '(no name)';
    const seriesTitle = seriesTags.SeriesDescription || `Series ${seriesTags.SeriesNumber ?? ''}`.trim();
    const title = `Instance ${tags.InstanceNumber ?? ''}`.trim();
    const resource = { level: 'Instance', id, tags, title, studyUids: [studyTags.StudyInstanceUID],
      seriesUid: seriesTags.SeriesInstanceUID };
    const uids = { study: studyTags.StudyInstanceUID, series: seriesTags.SeriesInstanceUID };
    const described = { ID: id, MainDicomTags: tags, Metadata: metadata };
    const frames = Number(tags.NumberOfFrames ?? 1) || 1;
    const preview = previewOf(described, uids);
    const image = preview.src ? h('img', { src: preview.src, alt: `Preview of ${title}` }) : null;
    image?.addEventListener('error', () => image.replaceWith('No preview'));
    const frameLabel = h('span', { class: 'nowrap' }, `Frame 1 / ${frames}`);
    const frameControl = frames > 1 && preview.src ? h('div', { class: 'frame-control' },
      h('input', { type: 'range', min: 1, max: frames, value: 1, 'aria-label': 'Frame',
        oninput: debounce(event => {
          const frame = Number(event.target.value) - 1;
          frameLabel.textContent = `Frame ${frame + 1} / ${frames}`;
          image.src = previewOf(described, uids, frame).src;
        }, 120) }), frameLabel) : null;
    this.tagsBody = h('tbody');
    const stepper = h('div', { class: 'toolbar stepper' });
    const pdf = metadata.SopClassUid === '1.2.840.10008.5.1.4.1.1.104.1'
      ? h('a', { class: 'button', href: url(`/instances/${id}/content/0042-0011`), download: `${id}.pdf`,
        'data-action': 'download-pdf' }, icon('download'), 'The PDF document') : null;
    const filter = h('input', { type: 'search', placeholder: 'Filter tags', 'aria-label': 'Filter the tags',
      oninput: debounce(event => this.filterTags(event.target.value), 150) });
    fill(this.main,
      crumbs([['Studies', '#/studies'], [patientName, `#/patients/${study.ParentPatient}`],
        [studyTags.StudyDescription || 'Study', `#/studies/${series.ParentStudy}`],
        [seriesTitle, `#/series/${instance.ParentSeries}`], [title]]),
      head('Instance', h('span', { class: 'title-row' }, h('span', {}, title), stepper),
        facts([
          ['SOP class', h('span', { title: metadata.SopClassUid ?? '' }, sopClassName(metadata.SopClassUid))],
          ['Transfer syntax', h('span', { title: metadata.TransferSyntax ?? '' }, transferSyntaxName(metadata.TransferSyntax))],
          ['File size', bytes(instance.FileSize)], ['Frames', frames > 1 ? integer(frames) : null],
          ['Received', orthancStamp(metadata.ReceptionDate)], ['Origin', [metadata.Origin, metadata.RemoteAET].filter(Boolean).join(' · ')],
          ['SOP Instance UID', tags.SOPInstanceUID, true],
        ]),
        labelsRow(resource, instance.Labels ?? []),
        actionBar(resource)),
      h('div', { class: 'instance-layout' },
        h('div', {}, h('div', { class: 'preview-box' }, image ?? pdf ?? preview.reason), frameControl),
        h('section', { class: 'panel', 'aria-labelledby': 'tags-title' },
          h('div', { class: 'tags-head' }, h('h2', { id: 'tags-title' }, 'DICOM tags'), filter),
          h('div', { class: 'table-wrap' }, h('table', { class: 'list tags-table' },
            h('thead', {}, h('tr', {}, ['Tag', 'Name', 'Value'].map(n => h('th', { scope: 'col' }, n)))),
            this.tagsBody)))));
    this.neighbours(id, instance.ParentSeries, stepper);
    const dump = await get(`/instances/${id}/tags`);
    this.tagRows = [];
    this.addTagRows(dump, 0, []);
    fill(this.tagsBody, this.tagRows.map(row => row.element));
  }

  /** Previous / next instance of the series (by InstanceNumber), also on ← and →. */
  async neighbours(id, seriesId, container) {
    const order = await find({ Level: 'Instance', Query: {}, ParentSeries: seriesId,
      OrderBy: [{ Type: 'DicomTagAsInt', Key: 'InstanceNumber', Direction: 'ASC' }] }).catch(() => []);
    const at = order.indexOf(id);
    if (at < 0 || order.length < 2 || this.id !== id) return;
    const goTo = index => { if (index >= 0 && index < order.length) location.hash = `#/instances/${order[index]}`; };
    fill(container,
      button('Previous instance', { icon: 'prev', iconOnly: true, kind: 'small', disabled: at === 0,
        onclick: () => goTo(at - 1), title: 'Previous instance (←)' }),
      h('span', { class: 'muted nowrap' }, `${integer(at + 1)} / ${integer(order.length)}`),
      button('Next instance', { icon: 'next', iconOnly: true, kind: 'small', disabled: at === order.length - 1,
        onclick: () => goTo(at + 1), title: 'Next instance (→)' }));
    this.onKey = event => {
      if (event.target.closest?.('input, textarea, select, dialog') || event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === 'ArrowLeft') goTo(at - 1);
      if (event.key === 'ArrowRight') goTo(at + 1);
    };
    document.addEventListener('keydown', this.onKey);
  }

  destroy() {
    if (this.onKey) document.removeEventListener('keydown', this.onKey);
  }

  addTagRows(dataset, depth, ancestors) {
    for (const [tag, element] of Object.entries(dataset ?? {})) {
      const isSequence = element.Type === 'Sequence';
      let value;
      if (isSequence) value = `${element.Value?.length ?? 0} item(s)`;
      else if (element.Type === 'String') value = element.Value;
      else if (element.Type === 'Null') value = '';
      else value = h('span', { class: 'faint' }, `(${element.Type})`);
      const row = {
        text: `${tag} ${element.Name} ${typeof value === 'string' ? value : ''}`.toLowerCase(),
        ancestors,
        element: h('tr', { class: depth ? 'seq-item' : null },
          h('td', { class: 'tag', style: { paddingLeft: `${10 + depth * 16}px` } }, tag),
          h('td', { class: 'name' }, element.Name ?? ''),
          h('td', { class: 'value' }, value)),
      };
      this.tagRows.push(row);
      if (isSequence) {
        (element.Value ?? []).forEach((item, index) => {
          const itemRow = { text: '', ancestors: [...ancestors, row], element: h('tr', { class: 'seq-item' },
            h('td', { class: 'tag', style: { paddingLeft: `${10 + (depth + 1) * 16}px` } }, `item ${index + 1}`), h('td'), h('td')) };
          this.tagRows.push(itemRow);
          this.addTagRows(item, depth + 2, [...ancestors, row, itemRow]);
        });
      }
    }
  }

  filterTags(text) {
    const needle = text.trim().toLowerCase();
    const visible = new Set();
    for (const row of this.tagRows) {
      if (!needle || row.text.includes(needle)) {
        visible.add(row);
        row.ancestors.forEach(a => visible.add(a));
      }
    }
    for (const row of this.tagRows) row.element.hidden = !visible.has(row);
  }
}
