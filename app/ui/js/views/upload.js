// Upload: files, folders and ZIPs, by drag and drop or by choosing them, each POSTed to
// /instances (as Orthanc Explorer does) with progress. Files are sniffed first: DICOM
// Part 10 ("DICM" at byte 128) and ZIP ("PK\3\4") are sent, anything else (DICOMDIR,
// README, .DS_Store...) is skipped and counted, so a folder copied from a CD uploads
// without a failure per stray file.

import { get, uploadFile } from '../api.js';
import { bytes, button, dicomDate, fill, h, icon, integer, personName } from '../dom.js';
import { emit, server } from '../state.js';

const PARALLEL = 3;

async function sniff(file) {
  if (file.name === 'DICOMDIR' || file.size < 4) return null;
  const head = new Uint8Array(await file.slice(0, 132).arrayBuffer());
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'zip';
  if (head.length >= 132 && String.fromCharCode(...head.slice(128, 132)) === 'DICM') return 'dicom';
  return null;
}

/** Every file of a drop, folders walked (webkitGetAsEntry: Chromium, Firefox, Safari). */
async function droppedFiles(dataTransfer) {
  const entries = [...(dataTransfer.items ?? [])]
    .map(item => (item.kind === 'file' && item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (!entries.length || entries.some(entry => !entry)) return [...dataTransfer.files];
  const files = [];
  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      files.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  }
  for (const entry of entries) await walk(entry, '');
  return files;
}

export class UploadView {
  constructor(main) {
    this.main = main;
    this.fileInput = h('input', { type: 'file', multiple: true, class: 'visually-hidden', id: 'upload-files', 'aria-label': 'Files to upload',
      accept: '.dcm,.zip,application/dicom,application/zip,*/*', onchange: e => this.take([...e.target.files]) });
    this.folderInput = h('input', { type: 'file', multiple: true, webkitdirectory: true, class: 'visually-hidden',
      id: 'upload-folder', 'aria-label': 'Folder to upload', onchange: e => this.take([...e.target.files]) });
    this.zone = h('div', { class: 'dropzone', id: 'dropzone' },
      icon('upload'),
      h('strong', {}, 'Drop DICOM files, folders or ZIP archives here'),
      h('span', {}, 'They are stored as they are, whatever their transfer syntax.'),
      h('div', { class: 'toolbar' },
        button('Choose files…', { icon: 'file', kind: 'primary', onclick: () => this.fileInput.click() }),
        button('Choose a folder…', { icon: 'folder', onclick: () => this.folderInput.click() })),
      this.fileInput, this.folderInput);
    // The whole page takes the drop while this view is shown (the zone shows where).
    this.onDragOver = event => {
      if (!event.dataTransfer?.types?.includes('Files')) return;
      event.preventDefault();
      this.zone.classList.add('over');
    };
    this.onDragLeave = event => {
      if (!event.relatedTarget) this.zone.classList.remove('over');
    };
    this.onDrop = async event => {
      if (!event.dataTransfer?.types?.includes('Files')) return;
      event.preventDefault();
      this.zone.classList.remove('over');
      this.take(await droppedFiles(event.dataTransfer));
    };
    this.show();
    this.report = h('div', { class: 'upload-report' });
    this.root = h('div', { class: 'upload-view' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Upload'),
        h('span', { class: 'sub' }, 'Files go to POST /instances, three at a time; uploads go on while you browse.')),
      server.system?.ReadOnly ? h('p', { class: 'note' }, 'This server is read-only (ReadOnly): it refuses uploads.') : null,
      this.zone, this.report);
    fill(main, this.root);
    this.queue = [];
    this.running = 0;
    this.batch = null;
  }

  static keepAlive = true;

  update() {}

  show() {
    document.addEventListener('dragover', this.onDragOver);
    document.addEventListener('dragleave', this.onDragLeave);
    document.addEventListener('drop', this.onDrop);
  }

  /** Hidden, not gone: the uploads go on, the side bar shows their progress. */
  destroy() {
    document.removeEventListener('dragover', this.onDragOver);
    document.removeEventListener('dragleave', this.onDragLeave);
    document.removeEventListener('drop', this.onDrop);
  }

  /** Queue files (File objects, or {file, path} from a folder drop). */
  async take(items) {
    const files = items.map(item => (item instanceof File
      ? { file: item, path: item.webkitRelativePath || item.name } : item));
    if (!files.length) return;
    if (!this.batch || this.batch.done) this.startBatch();
    const batch = this.batch;
    batch.pending += files.length;
    this.render();
    for (const entry of files) {
      const kind = await sniff(entry.file);
      batch.pending -= 1;
      if (!kind) {
        batch.skipped.push(entry.path);
      } else {
        batch.totalBytes += entry.file.size;
        this.queue.push({ ...entry, isZip: kind === 'zip', loaded: 0, batch });
        batch.files += 1;
        this.pump(); // the first files go while the next ones are looked at
      }
    }
    if (batch.sent === batch.files && batch.pending === 0 && !batch.done) this.finish(batch);
    this.render();
    this.pump();
  }

  startBatch() {
    if (this.studiesBox) fill(this.studiesBox);
    this.batch = { files: 0, pending: 0, sent: 0, totalBytes: 0, sentBytes: 0, stored: 0, already: 0,
      failures: [], skipped: [], studies: new Set(), inFlight: new Set(), done: false, started: Date.now() };
  }

  pump() {
    while (this.running < PARALLEL && this.queue.length) {
      const entry = this.queue.shift();
      this.running += 1;
      entry.batch.inFlight.add(entry);
      uploadFile(entry, loaded => { entry.loaded = loaded; this.renderSoon(); })
        .then(answer => {
          for (const one of [answer].flat()) {
            if (one?.ParentStudy) entry.batch.studies.add(one.ParentStudy);
            if (one?.Status === 'AlreadyStored') entry.batch.already += 1;
            else if (one?.Status === 'Success') entry.batch.stored += 1;
          }
        })
        .catch(failure => entry.batch.failures.push({ path: entry.path, message: failure.message }))
        .finally(() => {
          this.running -= 1;
          entry.batch.inFlight.delete(entry);
          entry.batch.sent += 1;
          entry.batch.sentBytes += entry.file.size;
          if (entry.batch.sent === entry.batch.files && entry.batch.pending === 0) this.finish(entry.batch);
          this.render();
          this.pump();
        });
    }
  }

  finish(batch) {
    batch.done = true;
    batch.seconds = (Date.now() - batch.started) / 1000;
    emit('changes');
    this.renderStudies(batch);
  }

  renderSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = null; this.render(); });
  }

  render() {
    const batch = this.batch;
    if (!batch) return;
    const inFlightBytes = [...batch.inFlight].reduce((sum, entry) => sum + entry.loaded, 0);
    const done = batch.sentBytes + inFlightBytes;
    const percent = batch.totalBytes ? Math.min(100, (100 * done) / batch.totalBytes) : (batch.done ? 100 : 0);
    const state = batch.done ? (batch.failures.length ? 'failed' : 'done') : '';
    const title = batch.done
      ? `Finished: ${integer(batch.sent)} file(s) sent in ${batch.seconds.toFixed(1)} s`
      : `Uploading ${integer(batch.sent)} of ${integer(batch.files)} file(s)…`;
    if (!this.progressPanel) {
      this.progressTitle = h('h2');
      this.bar = h('span');
      this.meter = h('div', { class: 'progress', role: 'progressbar', 'aria-label': 'Upload progress',
        'aria-valuemin': 0, 'aria-valuemax': 100 }, this.bar);
      this.stats = h('div', { class: 'upload-stats', 'aria-live': 'polite' });
      this.log = h('div', { class: 'upload-log' });
      this.studiesBox = h('div');
      this.progressPanel = h('section', { class: 'panel panel-pad', id: 'upload-progress' },
        this.progressTitle, h('div', { style: { marginTop: '10px' } }, this.meter), this.stats, this.log);
      fill(this.report, this.progressPanel, this.studiesBox);
    }
    this.progressTitle.textContent = title;
    const badge = document.getElementById('upload-badge');
    if (badge) {
      badge.hidden = batch.done;
      badge.textContent = `${Math.floor(percent)}%`;
    }
    this.bar.style.width = `${percent}%`;
    this.meter.className = `progress ${state}`;
    this.meter.setAttribute('aria-valuenow', String(Math.round(percent)));
    fill(this.stats,
      h('span', {}, h('b', { dataset: { stat: 'stored' } }, integer(batch.stored)), ' instances stored'),
      h('span', {}, h('b', { dataset: { stat: 'already' } }, integer(batch.already)), ' already stored'),
      h('span', {}, h('b', { dataset: { stat: 'failed' } }, integer(batch.failures.length)), ' failed'),
      h('span', {}, h('b', { dataset: { stat: 'skipped' } }, integer(batch.skipped.length)), ' skipped (not DICOM)'),
      h('span', { class: 'muted' }, `${bytes(done)} of ${bytes(batch.totalBytes)}`));
    fill(this.log,
      batch.failures.length ? h('table', { class: 'list' }, h('caption', { class: 'visually-hidden' }, 'Failed files'),
        h('tbody', {}, batch.failures.slice(0, 200).map(f => h('tr', {}, h('td', { class: 'mono' }, f.path),
          h('td', { class: 'error-text' }, f.message))))) : null,
      batch.skipped.length ? h('details', {}, h('summary', { class: 'muted' }, `${batch.skipped.length} file(s) skipped: neither DICOM Part 10 nor ZIP`),
        h('ul', { class: 'mono' }, batch.skipped.slice(0, 200).map(p => h('li', {}, p)))) : null);
  }

  async renderStudies(batch) {
    const ids = [...batch.studies].slice(0, 50);
    if (!ids.length) { fill(this.studiesBox); return; }
    const studies = await Promise.all(ids.map(id => get(`/studies/${id}`).catch(() => null)));
    fill(this.studiesBox, h('div', { class: 'section-head' }, h('h2', {}, `Studies received (${batch.studies.size})`)),
      h('div', { class: 'panel' }, h('table', { class: 'list', id: 'uploaded-studies' },
        h('thead', {}, h('tr', {}, ['Patient', 'Study', 'Date'].map(n => h('th', { scope: 'col' }, n)))),
        h('tbody', {}, studies.filter(Boolean).map(s => h('tr', {},
          h('td', {}, personName(s.PatientMainDicomTags?.PatientName)),
          h('td', {}, h('a', { href: `#/studies/${s.ID}` }, s.MainDicomTags?.StudyDescription || s.ID)),
          h('td', { class: 'nowrap' }, dicomDate(s.MainDicomTags?.StudyDate))))))));
  }
}
