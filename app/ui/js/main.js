// Pharos Explorer: the page's start, its client-side routes (after '#', so that the
// server serves one page and any prefix a proxy adds keeps working), the side bar's
// labels, and the live change stream.

import { get, url } from './api.js';
import { emptyState, errorBox } from './dialog.js';
import { fill, h } from './dom.js';
import { JobsView } from './jobs.js';
import { emit, events, server } from './state.js';
import { PatientsView, StudiesView } from './views/lists.js';
import { QueryView } from './views/query.js';
import { InstanceView, PatientView, SeriesView, StudyView } from './views/resources.js';
import { SystemView } from './views/system.js';
import { UploadView } from './views/upload.js';

const ROUTES = [
  [/^\/studies$/, StudiesView, 'studies'],
  [/^\/patients$/, PatientsView, 'patients'],
  [/^\/patients\/([\w-]+)$/, PatientView, 'patients'],
  [/^\/studies\/([\w-]+)$/, StudyView, 'studies'],
  [/^\/series\/([\w-]+)$/, SeriesView, 'studies'],
  [/^\/instances\/([\w-]+)$/, InstanceView, 'studies'],
  [/^\/upload$/, UploadView, 'upload'],
  [/^\/query$/, QueryView, 'query'],
  [/^\/jobs$/, JobsView, 'jobs'],
  [/^\/system$/, SystemView, 'system'],
];

const main = document.getElementById('main');
let current = null; // {View, view, key}
const kept = new Map(); // View -> the instance of a keepAlive view

function parseHash() {
  const hash = location.hash.replace(/^#/, '') || '/studies';
  const [path, search = ''] = hash.split('?');
  return { path, params: new URLSearchParams(search) };
}

async function route() {
  const { path, params } = parseHash();
  const match = ROUTES.map(([pattern, View, nav]) => [pattern.exec(path), View, nav]).find(([m]) => m);
  for (const link of document.querySelectorAll('[data-nav]')) {
    link.removeAttribute('aria-current');
    if (match && link.dataset.nav === match[2]) link.setAttribute('aria-current', 'page');
  }
  if (!match) {
    current?.view.destroy?.();
    current = null;
    fill(main, emptyState('studies', 'This page does not exist.', h('p', {}, h('a', { href: '#/studies' }, 'Go to the studies'))));
    return;
  }
  const [found, View] = match;
  const id = found[1] ?? null;
  const key = `${path}`;
  // The same list with other filters, sort or page: update in place (keeps the focus).
  if (!(current && current.View === View && current.key === key && !id)) {
    current?.view.destroy?.();
    // A view that keeps working while hidden (uploads) is made once and shown again.
    let view = View.keepAlive ? kept.get(View) : null;
    if (view) {
      fill(main, view.root);
      view.show?.();
    } else {
      view = new View(main);
      if (View.keepAlive) kept.set(View, view);
    }
    current = { View, key, view };
    main.scrollTop = 0;
  }
  document.title = `${titleOf(path)} — ${server.system?.Name ?? 'Pharos'}`;
  try {
    await current.view.update?.(params, id);
  } catch (failure) {
    fill(main, errorBox(failure));
  }
}

function titleOf(path) {
  const name = path.split('/')[1] ?? '';
  return { studies: 'Studies', patients: 'Patients', series: 'Series', instances: 'Instance', upload: 'Upload',
    query: 'Query / retrieve', jobs: 'Jobs', system: 'System' }[name] ?? 'Pharos';
}

async function refreshLabels() {
  const list = document.getElementById('nav-labels');
  try {
    const labels = await get('/tools/labels');
    fill(list, labels.length ? labels.map(label => h('li', {}, h('a', {
      href: `#/studies?label=${encodeURIComponent(label)}`, dataset: { label } },
    h('span', { class: 'chip label' }, label))))
      : h('li', { class: 'empty' }, 'None yet'));
  } catch {
    fill(list);
  }
}

/** Lists refresh themselves when studies or patients arrive or change (Server-Sent Events). */
function listenToChanges() {
  if (!window.EventSource) return;
  const types = 'NewPatient;NewStudy;StableStudy;ModifiedStudy;AnonymizedStudy;ModifiedPatient;AnonymizedPatient';
  const source = new EventSource(url(`/changes/stream?type=${encodeURIComponent(types)}`));
  const live = document.getElementById('live');
  source.onopen = () => { live.hidden = false; };
  source.onerror = () => { live.hidden = true; };
  source.onmessage = () => emit('remote-changes');
}

async function start() {
  try {
    [server.system, server.plugins] = await Promise.all([get('/system'), get('/plugins').catch(() => [])]);
    document.getElementById('server-name').textContent = server.system.Name ?? '';
    fill(document.getElementById('nav-footer'), h('span', {}, `Pharos ${server.system.PharosVersion ?? ''}`),
      h('span', {}, `AET ${server.system.DicomAet}, port ${server.system.DicomPort}`));
  } catch (failure) {
    fill(main, errorBox(failure));
    return;
  }
  document.querySelector('[data-skip]').addEventListener('click', event => {
    event.preventDefault();
    main.focus();
  });
  // Files dragged over any other page open the upload page, which takes the drop.
  document.addEventListener('dragenter', event => {
    if (event.dataTransfer?.types?.includes('Files') && !location.hash.startsWith('#/upload')) {
      location.hash = '#/upload';
    }
  });
  events.addEventListener('labels', refreshLabels);
  window.addEventListener('hashchange', route);
  refreshLabels();
  await route();
  listenToChanges();
}

start();
