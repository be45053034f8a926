// What can be done to a resource (patient, study, series, instance), shared by every
// page: view in OHIF, download, send, modify, anonymize, delete, labels, protection.

import { del, get, post, put, url } from './api.js';
import { confirmDialog, notify, notifyError, openDialog } from './dialog.js';
import { button, fill, h, icon } from './dom.js';
import { runJob } from './jobs.js';
import { emit, go, server } from './state.js';

export const LEVELS = {
  Patient: { path: 'patients', name: 'patient', uid: null },
  Study: { path: 'studies', name: 'study', uid: 'StudyInstanceUID' },
  Series: { path: 'series', name: 'series', uid: 'SeriesInstanceUID' },
  Instance: { path: 'instances', name: 'instance', uid: 'SOPInstanceUID' },
};

// The tags the modification dialog offers at each level (the level's main tags).
const EDITABLE = {
  Patient: ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex'],
  Study: ['StudyDescription', 'StudyDate', 'StudyTime', 'AccessionNumber', 'StudyID',
    'ReferringPhysicianName', 'InstitutionName'],
  Series: ['SeriesDescription', 'SeriesNumber', 'Modality', 'BodyPartExamined', 'ProtocolName'],
  Instance: ['InstanceNumber'],
};
// The UIDs Orthanc must be told to keep for a modification in place, per level.
const KEEP_UIDS = {
  Patient: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'],
  Study: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'],
  Series: ['SeriesInstanceUID', 'SOPInstanceUID'],
  Instance: ['SOPInstanceUID'],
};
// Orthanc's rule for labels (ServerToolbox::CheckValidLabel).
const LABEL_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * resource: {level, id, tags (its MainDicomTags), studyUids: [StudyInstanceUID...],
 *            seriesUid, title}
 */
export function resourcePath(resource) {
  return `/${LEVELS[resource.level].path}/${resource.id}`;
}

export function ohifLink(studyUids, seriesUid = null, { small = false } = {}) {
  const target = new URL(url('/ohif/viewer'), location.href);
  target.searchParams.set('StudyInstanceUIDs', studyUids.join(','));
  if (seriesUid) target.searchParams.set('initialSeriesInstanceUID', seriesUid);
  return h('a', { class: `button ${small ? 'small ghost' : ''}`, href: target.pathname + target.search,
    target: '_blank', rel: 'noopener', 'data-action': 'ohif' },
  icon('view'), small ? h('span', { class: 'visually-hidden' }, 'Open in OHIF') : 'Open in OHIF');
}

export function downloadLinks(resource) {
  const path = resourcePath(resource);
  if (resource.level === 'Instance') {
    return [h('a', { class: 'button', href: url(`${path}/file`), download: `${resource.id}.dcm`,
      'data-action': 'download-file' }, icon('download'), 'DICOM file')];
  }
  return [
    h('a', { class: 'button', href: url(`${path}/archive`), download: '', 'data-action': 'download-zip',
      title: 'The files in a ZIP, one folder per patient, study and series' }, icon('download'), 'ZIP'),
    h('a', { class: 'button', href: url(`${path}/media`), download: '', 'data-action': 'download-media',
      title: 'A DICOMDIR media (IMAGES/IM0...) as a ZIP' }, icon('download'), 'DICOMDIR'),
  ];
}

/** The toolbar of a resource page. */
export function actionBar(resource, { onChanged } = {}) {
  const items = [];
  if (resource.studyUids?.length) items.push(ohifLink(resource.studyUids, resource.seriesUid));
  items.push(...downloadLinks(resource));
  items.push(h('span', { class: 'sep' }));
  items.push(button('Send…', { icon: 'send', onclick: () => sendDialog([resource]), 'data-action': 'send' }));
  if (server.system?.ReadOnly) {  // ReadOnly: the server refuses every change (403)
    return h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': `Actions on this ${LEVELS[resource.level].name}` }, items);
  }
  items.push(button('Modify…', { icon: 'edit', onclick: () => modifyDialog(resource), 'data-action': 'modify' }));
  items.push(button('Anonymize…', { icon: 'mask', onclick: () => anonymizeDialog(resource), 'data-action': 'anonymize' }));
  if (resource.level === 'Patient') items.push(protectButton(resource, onChanged));
  items.push(h('span', { class: 'sep' }));
  items.push(button('Delete…', { icon: 'trash', kind: 'danger', onclick: () => deleteResources([resource]), 'data-action': 'delete' }));
  return h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': `Actions on this ${LEVELS[resource.level].name}` }, items);
}

// ---- delete -----------------------------------------------------------------------

/** Delete resources of one level after confirmation; goes to what remains. */
export async function deleteResources(resources, { after } = {}) {
  const [first] = resources;
  const name = LEVELS[first.level].name;
  const what = resources.length === 1 ? `this ${name}${first.title ? ` (${first.title})` : ''}`
    : `these ${resources.length} ${name === 'series' ? 'series' : `${name.replace(/y$/, 'ie')}s`}`;
  const confirmed = await confirmDialog({
    title: resources.length === 1 ? `Delete the ${name}?` : `Delete ${resources.length} resources?`,
    text: `Delete ${what} and everything it holds from the archive? This cannot be undone.`,
  });
  if (!confirmed) return false;
  try {
    let remaining = null;
    if (resources.length === 1) {
      const answer = await del(resourcePath(first));
      remaining = answer?.RemainingAncestor ?? null;
    } else {
      await post('/tools/bulk-delete', { Resources: resources.map(r => r.id) });
    }
    notify(resources.length === 1 ? `Deleted the ${name}` : `Deleted ${resources.length} resources`);
    emit('changes');
    if (after) after(remaining);
    else if (remaining) go(`#/${LEVELS[remaining.Type].path}/${remaining.ID}`);
    else go(first.level === 'Patient' ? '#/patients' : '#/studies');
    return true;
  } catch (failure) {
    notifyError('Delete failed', failure);
    return false;
  }
}

// ---- send -------------------------------------------------------------------------

async function destinations() {
  const [modalities, peers, dicomweb] = await Promise.all([
    get('/modalities?expand'), get('/peers?expand'),
    server.dicomweb ? get('/dicom-web/servers?expand').catch(() => ({})) : {},
  ]);
  return [
    ...Object.entries(modalities).map(([name, m]) => ({ kind: 'modality', name, detail: `${m.AET}@${m.Host}:${m.Port}`,
      path: `/modalities/${encodeURIComponent(name)}/store`, group: 'DICOM modalities (C-STORE)' })),
    ...Object.entries(peers).map(([name, p]) => ({ kind: 'peer', name, detail: p.Url,
      path: `/peers/${encodeURIComponent(name)}/store`, group: 'Orthanc peers (HTTP)' })),
    ...Object.entries(dicomweb).map(([name, s]) => ({ kind: 'dicomweb', name, detail: s.Url,
      path: `/dicom-web/servers/${encodeURIComponent(name)}/stow`, group: 'DICOMweb servers (STOW-RS)' })),
  ];
}

export async function sendDialog(resources) {
  let targets;
  try {
    targets = await destinations();
  } catch (failure) {
    notifyError('Cannot list the destinations', failure);
    return;
  }
  const groups = [...new Set(targets.map(t => t.group))];
  const body = targets.length ? groups.map(group => h('fieldset', {},
    h('legend', {}, group),
    h('div', { class: 'choice-list' }, targets.filter(t => t.group === group).map(t =>
      h('label', {}, h('input', { type: 'radio', name: 'target', value: `${t.kind}:${t.name}`, required: true }),
        t.name, h('small', {}, t.detail))))))
    : h('p', { class: 'note' }, 'No destination is configured: add DicomModalities or OrthancPeers to the ',
      'configuration, or PUT /modalities/{name} and /peers/{name}.');
  const what = resources.length === 1 ? `${LEVELS[resources[0].level].name} ${resources[0].title ?? ''}`.trim()
    : `${resources.length} resources`;
  const target = await openDialog({
    title: `Send ${what}`, body, submitLabel: 'Send',
    onSubmit: form => {
      const chosen = form.querySelector('input[name=target]:checked');
      if (!chosen) throw new Error('Choose a destination.');
      return targets.find(t => `${t.kind}:${t.name}` === chosen.value);
    },
  });
  if (!target) return;
  try {
    await runJob(target.path, { Resources: resources.map(r => r.id) }, `Send ${what} to ${target.name}`,
      `Sent to ${target.name}`);
  } catch { /* the job's toast says why */ }
}

// ---- modify and anonymize ----------------------------------------------------------------

function parseExtraTags(text) {
  const replace = {};
  for (const line of text.split('\n').map(l => l.trim()).filter(Boolean)) {
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`"${line}": write Keyword=value (or gggg,eeee=value), one per line.`);
    replace[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return replace;
}

export async function modifyDialog(resource) {
  const tags = resource.tags ?? {};
  const fields = EDITABLE[resource.level].map(keyword => h('label', { class: 'field' }, keyword,
    h('input', { type: 'text', name: `tag:${keyword}`, value: tags[keyword] ?? '', dataset: { original: tags[keyword] ?? '' } })));
  const overwrite = Boolean(server.system?.OverwriteInstances);
  const mode = (value, text, hint, { checked = false, disabled = false } = {}) => h('label', {},
    h('input', { type: 'radio', name: 'mode', value, checked, disabled }), h('span', {}, text, h('span', { class: 'sub-line' }, hint)));
  const body = [
    h('div', { class: 'grid2' }, fields),
    h('label', { class: 'field' }, 'Other tags to set (Keyword=value or gggg,eeee=value, one per line)',
      h('textarea', { name: 'extra', rows: 2, spellcheck: 'false' })),
    h('label', { class: 'field' }, 'Tags to remove (keywords or gggg,eeee, comma-separated)',
      h('input', { type: 'text', name: 'remove' })),
    h('fieldset', {}, h('legend', {}, 'Result'), h('div', { class: 'choice-list' },
      mode('replace', 'Replace the original', 'The modified copy gets new UIDs; the original is deleted.', { checked: true }),
      mode('copy', 'Keep the original too', 'A modified copy with new UIDs is added next to it.'),
      mode('inplace', 'Modify in place, keeping the UIDs',
        overwrite ? 'The instances are overwritten (OverwriteInstances is on).'
          : 'Needs "OverwriteInstances": true in the configuration.', { disabled: !overwrite }))),
  ];
  const target = await openDialog({
    title: `Modify the ${LEVELS[resource.level].name}`, body, submitLabel: 'Modify', wide: true,
    onSubmit: form => {
      const replace = {};
      for (const input of form.querySelectorAll('input[name^="tag:"]')) {
        if (input.value !== input.dataset.original) replace[input.name.slice(4)] = input.value.trim();
      }
      Object.assign(replace, parseExtraTags(form.elements.extra.value));
      const remove = form.elements.remove.value.split(',').map(s => s.trim()).filter(Boolean);
      if (!Object.keys(replace).length && !remove.length) throw new Error('Nothing to change: edit a value first.');
      const chosen = form.querySelector('input[name=mode]:checked').value;
      const request = { Replace: replace, Remove: remove };
      if (chosen === 'replace') request.KeepSource = false;
      if (chosen === 'copy') request.KeepSource = true;
      if (chosen === 'inplace') Object.assign(request, { Keep: KEEP_UIDS[resource.level], Force: true, KeepSource: true });
      // A patient keeps its PatientID unless changed: Orthanc wants Force for that.
      if (resource.level === 'Patient' && !('PatientID' in replace)) request.Force = true;
      return request;
    },
  });
  if (!target) return;
  await runModification(resource, 'modify', target, 'Modify');
}

export async function anonymizeDialog(resource) {
  const body = [
    h('p', { class: 'muted' }, 'Anonymization follows the DICOM PS3.15 basic profile (as Orthanc does): ',
      'names, identifiers, dates and UIDs are replaced or removed.'),
    h('div', { class: 'grid2' },
      h('label', { class: 'field' }, 'New PatientName (empty: generated)', h('input', { type: 'text', name: 'PatientName' })),
      h('label', { class: 'field' }, 'New PatientID (empty: generated)', h('input', { type: 'text', name: 'PatientID' }))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'keepDescriptions' }), 'Keep study and series descriptions'),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'keepPrivate' }), 'Keep private tags'),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'keepSource', checked: true }), 'Keep the original'),
  ];
  const request = await openDialog({
    title: `Anonymize the ${LEVELS[resource.level].name}`, body, submitLabel: 'Anonymize',
    onSubmit: form => {
      const replace = {};
      for (const name of ['PatientName', 'PatientID']) {
        if (form.elements[name].value.trim()) replace[name] = form.elements[name].value.trim();
      }
      return {
        Replace: replace, KeepPrivateTags: form.elements.keepPrivate.checked,
        KeepSource: form.elements.keepSource.checked,
        Keep: form.elements.keepDescriptions.checked ? ['StudyDescription', 'SeriesDescription'] : [],
      };
    },
  });
  if (!request) return;
  await runModification(resource, 'anonymize', request, 'Anonymize');
}

async function runModification(resource, verb, request, title) {
  let job;
  try {
    job = await runJob(`${resourcePath(resource)}/${verb}`, request,
      `${title} ${LEVELS[resource.level].name} ${resource.title ?? ''}`.trim());
  } catch {
    return; /* the job's toast says why */
  }
  const path = job.Content?.Path;
  // A modified copy is the same resource to the user: it keeps the labels (Orthanc
  // gives the copy none). An anonymized one starts without.
  if (verb === 'modify' && path && path !== resourcePath(resource)) {
    await Promise.all((resource.labels ?? []).map(label =>
      put(`${path}/labels/${encodeURIComponent(label)}`, '').catch(() => {})));
  }
  emit('changes');
  if (path) go(`#${path}`);
}

// ---- labels and protection ----------------------------------------------------------

/** Labels of a resource as chips, with a field to add one. */
export function labelsEditor(resource, labels, { onChange } = {}) {
  const current = [...labels].sort();
  resource.labels = current;
  const container = h('div', { class: 'labels-editor' });
  const listId = `labels-known-${resource.id}`;
  async function change(method, label) {
    try {
      if (method === 'PUT') await put(`${resourcePath(resource)}/labels/${encodeURIComponent(label)}`, '');
      else await del(`${resourcePath(resource)}/labels/${encodeURIComponent(label)}`);
    } catch (failure) {
      notifyError(method === 'PUT' ? 'Cannot add the label' : 'Cannot remove the label', failure);
      return;
    }
    if (method === 'PUT' && !current.includes(label)) current.push(label);
    if (method === 'DELETE') current.splice(current.indexOf(label), 1);
    current.sort();
    render();
    emit('labels');
    onChange?.(current);
  }
  function render() {
    const input = h('input', { type: 'text', name: 'label', placeholder: 'Add a label', list: listId,
      'aria-label': 'New label', maxlength: 64, autocomplete: 'off' });
    const datalist = h('datalist', { id: listId });
    get('/tools/labels').then(all => fill(datalist, all.filter(l => !current.includes(l))
      .map(l => h('option', { value: l })))).catch(() => {});
    fill(container,
      current.length ? current.map(label => h('span', { class: 'chip label', dataset: { label } }, label,
        h('button', { type: 'button', 'aria-label': `Remove the label ${label}`, title: 'Remove',
          onclick: () => change('DELETE', label) }, icon('x'))))
        : h('span', { class: 'faint' }, 'No label'),
      server.system?.ReadOnly ? null : h('form', {
        onsubmit: event => {
          event.preventDefault();
          const label = input.value.trim();
          if (!label) return;
          if (!LABEL_PATTERN.test(label)) {
            notifyError('Invalid label', new Error('Letters, digits, "_" and "-" only (at most 64).'));
            return;
          }
          change('PUT', label);
        },
      }, input, datalist, button('Add', { kind: 'small', type: 'submit', icon: 'tag' })));
  }
  render();
  return container;
}

function protectButton(resource, onChanged) {
  const element = button('', { 'data-action': 'protect' });
  let isProtected = false;
  function render() {
    fill(element, icon(isProtected ? 'lock' : 'unlock'), isProtected ? 'Protected' : 'Protect');
    element.setAttribute('aria-pressed', String(isProtected));
    element.title = isProtected
      ? 'Protected from automatic recycling (MaximumStorageSize, MaximumPatientCount); click to unprotect'
      : 'Protect from automatic recycling when the storage is full';
  }
  render();
  get(`${resourcePath(resource)}/protected`, { as: 'text' }).then(text => {
    isProtected = text.trim() === '1';
    render();
  }).catch(() => {});
  element.addEventListener('click', async () => {
    try {
      await put(`${resourcePath(resource)}/protected`, isProtected ? '0' : '1');
      isProtected = !isProtected;
      render();
      notify(isProtected ? 'Patient protected' : 'Patient unprotected');
      onChanged?.();
    } catch (failure) {
      notifyError('Cannot change the protection', failure);
    }
  });
  return element;
}
