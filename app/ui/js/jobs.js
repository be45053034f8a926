// Jobs: following one job with a toast (send, retrieve, modify, anonymize, archive), the
// jobs page with live progress, and the count of active jobs in the side bar.

import { ApiError, get, post, url } from './api.js';
import { emptyState, errorBox, notifyError, toast } from './dialog.js';
import { button, fill, h, orthancStamp } from './dom.js';

const FINAL = new Set(['Success', 'Failure']);
const TYPE_NAMES = {
  DicomModalityStore: 'Send to modality',
  OrthancPeerStore: 'Send to peer',
  DicomMoveScu: 'Retrieve (C-MOVE)',
  DicomGetScu: 'Retrieve (C-GET)',
  ResourceModification: 'Modify',
  Archive: 'Archive',
  Media: 'Media (DICOMDIR)',
  MergeStudy: 'Merge',
  SplitStudy: 'Split',
  DicomWebStowClient: 'Send (STOW-RS)',
  DicomWebWadoRetrieveClient: 'Retrieve (WADO-RS)',
  StorageCommitmentScp: 'Storage commitment',
};

export function jobTypeName(job) {
  if (job.Type === 'ResourceModification') {
    return job.Content?.IsAnonymization ? 'Anonymize' : 'Modify';
  }
  if (job.Type === 'Archive' && job.Content?.IsMedia) return 'Media (DICOMDIR)';
  return TYPE_NAMES[job.Type] ?? job.Type;
}

const pause = ms => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Follow a job to its end with a toast showing its progress. Resolves with the job's
 * final JSON when it succeeded, rejects (after showing why) when it failed.
 */
export async function followJob(jobId, title, doneTitle = title) {
  activeJobs.add(jobId);
  refreshBadge();
  const note = toast({ title, text: 'Pending…', progress: 0 });
  try {
    for (let delay = 300; ; delay = Math.min(delay * 1.5, 1500)) {
      const job = await get(`/jobs/${jobId}`);
      note.update({ text: `${job.State} — ${job.Progress ?? 0}%`, progress: job.Progress ?? 0 });
      if (job.State === 'Success') {
        note.update({ kind: 'ok', title: doneTitle, text: doneTitle === title ? 'Done' : title, progress: 100 });
        note.close(5000);
        return job;
      }
      if (job.State === 'Failure') {
        const why = [job.ErrorDescription, job.ErrorDetails].filter(Boolean).join(': ');
        note.update({ kind: 'bad', text: why || 'Failed', progress: job.Progress ?? 0 });
        throw new Error(why || 'the job failed');
      }
      await pause(delay);
    }
  } catch (failure) {
    if (failure instanceof ApiError) note.update({ kind: 'bad', text: failure.message });
    throw failure;
  } finally {
    activeJobs.delete(jobId);
    refreshBadge();
  }
}

/** Start a job through *path* (a POST answering {ID, Path}) and follow it. */
export async function runJob(path, body, title, doneTitle = title) {
  try {
    const started = await post(path, { ...body, Asynchronous: true });
    return await followJob(started.ID, title, doneTitle);
  } catch (failure) {
    if (failure instanceof ApiError) notifyError(title, failure);
    throw failure;
  }
}

const activeJobs = new Set();

function refreshBadge(count = activeJobs.size) {
  const badge = document.getElementById('jobs-badge');
  if (!badge) return;
  badge.hidden = count === 0;
  badge.textContent = String(count);
  badge.title = `${count} job(s) in progress`;
}

function stateChip(state) {
  const kind = { Success: 'ok', Failure: 'bad', Running: 'run', Pending: 'wait', Paused: 'wait',
    Retry: 'wait' }[state] ?? '';
  return h('span', { class: `chip ${kind}` }, state);
}

function describe(job) {
  const content = job.Content ?? {};
  const parts = [];
  if (content.RemoteAet) parts.push(`AET ${content.RemoteAet}`);
  if (content.Peer) parts.push([content.Peer].flat().join(', '));
  if (content.InstancesCount !== undefined) parts.push(`${content.InstancesCount} instance(s)`);
  if (content.FailedInstancesCount) parts.push(`${content.FailedInstancesCount} failed`);
  if (content.Description && content.Description !== 'REST API') parts.push(content.Description);
  if (job.State === 'Failure') parts.push([job.ErrorDescription, job.ErrorDetails].filter(Boolean).join(': '));
  return parts.join(' · ');
}

/** The jobs page: every job, refreshed every second while one is not finished. */
export class JobsView {
  constructor(main) {
    this.main = main;
    this.body = h('div', { class: 'panel' });
    fill(main,
      h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'),
        h('span', { class: 'sub' }, 'Sends, retrieves, modifications and archives run as jobs; progress refreshes live.'),
        h('span', { class: 'grow' }),
        button('Refresh', { icon: 'refresh', onclick: () => this.refresh() })),
      this.body);
    this.timer = null;
    this.alive = true;
  }

  update() { return this.refresh(); }

  destroy() {
    this.alive = false;
    clearTimeout(this.timer);
  }

  async refresh() {
    clearTimeout(this.timer);
    let jobs;
    try {
      jobs = await get('/jobs?expand');
    } catch (failure) {
      fill(this.body, errorBox(failure));
      return;
    }
    if (!this.alive) return;
    jobs.sort((a, b) => (b.CreationTime ?? '').localeCompare(a.CreationTime ?? ''));
    const active = jobs.filter(job => !FINAL.has(job.State)).length;
    refreshBadge(Math.max(active, activeJobs.size));
    this.render(jobs);
    this.timer = setTimeout(() => this.refresh(), active ? 1000 : 5000);
  }

  render(jobs) {
    if (!jobs.length) {
      fill(this.body, emptyState('jobs', 'No job yet. Sending, retrieving, modifying or anonymizing starts one.'));
      return;
    }
    const rows = jobs.map(job => h('tr', { dataset: { job: job.ID, state: job.State } },
      h('td', { class: 'nowrap' }, jobTypeName(job), h('span', { class: 'sub-line mono' }, job.ID.slice(0, 8))),
      h('td', {}, stateChip(job.State)),
      h('td', { class: 'progress-cell' },
        h('div', { class: `progress ${job.State === 'Success' ? 'done' : job.State === 'Failure' ? 'failed' : ''}`,
          role: 'progressbar', 'aria-label': `Progress of job ${job.ID}`, 'aria-valuemin': 0,
          'aria-valuemax': 100, 'aria-valuenow': job.Progress ?? 0 },
        h('span', { style: { width: `${job.Progress ?? 0}%` } })),
        h('span', { class: 'sub-line' }, `${job.Progress ?? 0}%`)),
      h('td', { class: 'clip', title: describe(job) }, describe(job)),
      h('td', { class: 'nowrap' }, orthancStamp(job.CreationTime, true)),
      h('td', { class: 'nowrap num' }, job.EffectiveRuntime !== undefined ? `${Number(job.EffectiveRuntime).toFixed(1)} s` : ''),
      h('td', { class: 'tight' }, this.actions(job))));
    fill(this.body, h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Type', 'State', 'Progress', 'Details', 'Created', 'Run time', '']
        .map(name => h('th', { scope: 'col' }, name)))),
      h('tbody', {}, rows))));
  }

  actions(job) {
    const act = (label, iconName, verb) => button(label, {
      icon: iconName, kind: 'ghost small', iconOnly: true,
      onclick: async () => {
        try { await post(`/jobs/${job.ID}/${verb}`, {}); } catch (failure) { notifyError(`${label} failed`, failure); }
        this.refresh();
      },
    });
    const buttons = [];
    if (job.State === 'Running' || job.State === 'Pending') buttons.push(act('Pause', 'pause', 'pause'));
    if (job.State === 'Paused') buttons.push(act('Resume', 'play', 'resume'));
    if (!FINAL.has(job.State)) buttons.push(act('Cancel', 'stop', 'cancel'));
    if (job.State === 'Failure') buttons.push(act('Resubmit', 'refresh', 'resubmit'));
    const result = job.Content?.Path;
    if (job.State === 'Success' && job.Type === 'ResourceModification' && /^\/(patients|studies|series|instances)\//.test(result ?? '')) {
      buttons.push(h('a', { class: 'button ghost small', href: `#${result}`, title: 'The modified or anonymized resource' },
        h('span', {}, 'Open')));
    }
    if (job.State === 'Success' && job.Type === 'Archive' && job.Content?.ArchiveSizeMB !== undefined) {
      buttons.push(h('a', { class: 'button ghost small', href: url(`/jobs/${job.ID}/archive`), download: '' },
        h('span', {}, 'Download')));
    }
    return h('div', { class: 'toolbar' }, buttons);
  }
}
