// System: what the archive holds (/statistics), how the server is set up (/system), and
// the remote nodes it knows (modalities with C-ECHO, peers with a test).

import { get, post } from '../api.js';
import { errorBox, notify, notifyError } from '../dialog.js';
import { bytes, button, fill, h, integer } from '../dom.js';

function stat(value, label, key) {
  return h('div', { class: 'panel stat', dataset: { stat: key } },
    h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

function keyValues(pairs) {
  return h('table', { class: 'kv' }, h('tbody', {}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([name, value]) => h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, value)))));
}

export class SystemView {
  constructor(main) {
    this.main = main;
  }

  destroy() {}

  async update() {
    fill(this.main, h('p', { class: 'muted' }, 'Loading…'));
    let system, statistics, modalities, peers;
    try {
      [system, statistics, modalities, peers] = await Promise.all([
        get('/system'), get('/statistics'), get('/modalities?expand'), get('/peers?expand')]);
    } catch (failure) {
      fill(this.main, errorBox(failure));
      return;
    }
    const disk = Number(statistics.TotalDiskSize ?? 0);
    const raw = Number(statistics.TotalUncompressedSize ?? 0);
    const limit = Number(system.MaximumStorageSize ?? 0);
    fill(this.main,
      h('div', { class: 'page-head' }, h('h1', {}, 'System'),
        h('span', { class: 'sub' }, `${system.Name} — Pharos ${system.PharosVersion ?? ''}, Orthanc API ${system.Version}`),
        h('span', { class: 'grow' }), button('Refresh', { icon: 'refresh', onclick: () => this.update() })),
      h('section', { 'aria-label': 'Statistics', class: 'stats' },
        stat(integer(statistics.CountPatients), 'patients', 'patients'),
        stat(integer(statistics.CountStudies), 'studies', 'studies'),
        stat(integer(statistics.CountSeries), 'series', 'series'),
        stat(integer(statistics.CountInstances), 'instances', 'instances'),
        stat(bytes(disk), limit ? `on disk, of ${integer(limit)} MB allowed` : 'on disk', 'disk'),
        stat(bytes(raw), raw !== disk ? 'uncompressed' : 'uncompressed (no compression)', 'uncompressed')),
      h('div', { class: 'two-col', style: { marginTop: '16px' } },
        h('section', { class: 'panel panel-pad', 'aria-labelledby': 'server-title' },
          h('h2', { id: 'server-title' }, 'Server'),
          keyValues([
            ['Name', system.Name], ['Product', `${system.Product ?? 'Pharos'} ${system.PharosVersion ?? ''}`],
            ['Orthanc API version', `${system.Version} (ApiVersion ${system.ApiVersion})`],
            ['DICOM', `AET ${system.DicomAet}, port ${system.DicomPort}`], ['HTTP port', system.HttpPort],
            ['Storage limit', system.MaximumStorageSize ? `${integer(system.MaximumStorageSize)} MB (${system.MaximumStorageMode})` : 'none'],
            ['Patient limit', system.MaximumPatientCount ? integer(system.MaximumPatientCount) : 'none'],
            ['Overwrite instances', system.OverwriteInstances ? 'yes' : 'no'],
            ['Read only', system.ReadOnly ? 'yes' : 'no'],
            ['Storage compression', system.StorageCompression ? 'yes' : 'no'],
            ['Index', system.DatabaseBackendPlugin ?? `built-in (schema ${system.DatabaseVersion})`],
          ])),
        h('section', { class: 'panel panel-pad', 'aria-labelledby': 'nodes-title' },
          h('h2', { id: 'nodes-title' }, 'DICOM modalities'),
          this.nodes(Object.entries(modalities), ([name, m]) => [name, `${m.AET}@${m.Host}:${m.Port}`,
            button('Echo', { icon: 'echo', kind: 'small', 'data-echo': name, onclick: () => this.echo(name) })],
          'No modality (DicomModalities).'),
          h('h2', { style: { marginTop: '16px' } }, 'Orthanc peers'),
          this.nodes(Object.entries(peers), ([name, p]) => [name, p.Url,
            button('Test', { icon: 'echo', kind: 'small', onclick: () => this.testPeer(name) })],
          'No peer (OrthancPeers).'))));
  }

  nodes(entries, row, empty) {
    if (!entries.length) return h('p', { class: 'muted' }, empty);
    return h('table', { class: 'list' }, h('tbody', {}, entries.map(entry => {
      const [name, detail, action] = row(entry);
      return h('tr', {}, h('td', {}, h('strong', {}, name)), h('td', { class: 'mono' }, detail), h('td', { class: 'tight' }, action));
    })));
  }

  async echo(name) {
    try {
      await post(`/modalities/${encodeURIComponent(name)}/echo`, {});
      notify(`C-ECHO to ${name} succeeded`);
    } catch (failure) {
      notifyError(`C-ECHO to ${name} failed`, failure);
    }
  }

  async testPeer(name) {
    try {
      const answer = await get(`/peers/${encodeURIComponent(name)}/system`);
      notify(`${name} answers`, `${answer.Name ?? ''} ${answer.Version ? `(Orthanc API ${answer.Version})` : ''}`);
    } catch (failure) {
      notifyError(`${name} does not answer`, failure);
    }
  }
}
