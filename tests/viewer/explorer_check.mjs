// End-to-end check of Pharos Explorer (/ui/), every action done through the page, in
// Debian's chromium driven by playwright-core (the OHIF check's harness: no browser
// download).
//
//   node tests/viewer/explorer_check.mjs '<json spec>'
//
// spec: {
//   "url": "http://127.0.0.1:8042",          // the server (explorer at /ui/)
//   "artifacts": "test-artifacts/ui",        // screenshots, downloads and report.json
//   "credentials": "user:password",          // optional: answer the Basic auth prompt
//   "scenario": "full" | "auth",             // what to do (see the two functions below)
//   "upload": {"files": [paths], "folder": path, "zip": path, "drop": [paths]},
//   "expect": {...}                           // values the steps check (see each step)
// }
//
// Prints a JSON report on stdout; exits 1 when a step fails, a request answers >= 400 or
// fails, a request leaves the server's origin, or the page logs an error: all of them
// listed, not just the first.

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2] ?? '{}');
const base = new URL(spec.url);
const artifacts = spec.artifacts ?? 'test-artifacts/ui';
const expect = spec.expect ?? {};
const stepTimeout = spec.timeoutMs ?? 30_000;
const deadline = Date.now() + (spec.deadlineMs ?? 300_000);

const report = {
  ok: false, url: spec.url, steps: [], failedRequests: [], failedLoads: [], abortedRequests: 0,
  externalRequests: [], consoleErrors: [], pageErrors: [], accessibility: [], requests: 0,
  screenshots: [], downloads: [],
};

await rm(artifacts, { recursive: true, force: true });
await mkdir(artifacts, { recursive: true });

let browser;
let page;
try {
  const [username, ...rest] = (spec.credentials ?? '').split(':');
  browser = await chromium.launch({
    executablePath: spec.chromium ?? '/usr/bin/chromium', headless: true, timeout: stepTimeout,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({
    viewport: { width: 1366, height: 800 }, acceptDownloads: true,
    httpCredentials: spec.credentials ? { username, password: rest.join(':'), origin: base.origin } : undefined,
  });
  page = await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  watch(page);
  if (spec.scenario === 'auth') await authScenario();
  else await fullScenario();
} catch (error) {
  report.steps.push({ name: 'browser', ok: false, error: String(error?.stack ?? error) });
} finally {
  await browser?.close().catch(() => {});
}

report.ok = report.steps.length > 0 && report.steps.every(s => s.ok)
  && !report.failedRequests.length && !report.failedLoads.length && !report.externalRequests.length
  && !report.consoleErrors.length && !report.pageErrors.length && !report.accessibility.length;
await writeFile(join(artifacts, 'report.json'), JSON.stringify(report, null, 2));
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(report.ok ? 0 : 1);

// ---- the scenarios ------------------------------------------------------------------

async function fullScenario() {
  const ui = new URL('/ui/', base).href;

  await step('studies list', async () => {
    await page.goto(ui);
    await rows().first().waitFor();
    const shown = await rows().count();
    check(shown === expect.firstPageRows, `${shown} rows on the first page, expected ${expect.firstPageRows}`);
    await checkRange(`1–${expect.firstPageRows} of ${expect.studies}`);
    await shot('studies');
    return { rows: shown };
  });

  await step('redirects from Orthanc Explorer and Explorer 2', async () => {
    for (const path of ['/app/explorer.html', '/ui/app/']) {
      await page.goto(new URL(path, base).href);
      await page.waitForURL(url => url.pathname === '/ui/');
      await rows().first().waitFor();
    }
  });

  await step('upload files (file input)', async () => {
    await page.goto(`${ui}#/upload`);
    await page.locator('#upload-files').setInputFiles(spec.upload.files);
    const stats = await uploadFinished();
    check(stats.stored === spec.upload.files.length, `stored ${stats.stored} of ${spec.upload.files.length} files`);
    await page.locator('#uploaded-studies tbody tr').first().waitFor();
    await shot('upload-files');
    return stats;
  });

  await step('upload a folder, with progress', async () => {
    // A slow link, so that the progress is seen between 0 and 100 %.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20,
      downloadThroughput: -1, uploadThroughput: 1_500_000 });
    await page.goto(`${ui}#/upload`);
    await page.locator('#upload-folder').setInputFiles(spec.upload.folder);
    const meter = page.getByRole('progressbar', { name: 'Upload progress' });
    const partial = await page.waitForFunction(() => {
      const value = Number(document.querySelector('#upload-progress [role=progressbar]')?.getAttribute('aria-valuenow'));
      return value > 5 && value < 95 ? value : null;
    }, undefined, { polling: 50 });
    const seen = Number(await partial.jsonValue());
    await shot('upload-folder-progress');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0,
      downloadThroughput: -1, uploadThroughput: -1 });
    const stats = await uploadFinished();
    check(stats.stored === expect.folderInstances, `stored ${stats.stored}, expected ${expect.folderInstances}`);
    check(Number(await meter.getAttribute('aria-valuenow')) === 100, 'the bar ends at 100 %');
    await shot('upload-folder-done');
    return { ...stats, progressSeen: seen };
  });

  await step('upload a ZIP', async () => {
    await page.goto(`${ui}#/upload`);
    await page.locator('#upload-files').setInputFiles(spec.upload.zip);
    const stats = await uploadFinished();
    check(stats.stored === expect.zipInstances, `stored ${stats.stored}, expected ${expect.zipInstances}`);
    return stats;
  });

  await step('upload by drag and drop', async () => {
    await page.goto(`${ui}#/studies`);
    const files = await Promise.all(spec.upload.drop.map(async path => ({
      name: basename(path), data: (await readFile(path)).toString('base64') })));
    const dataTransfer = await page.evaluateHandle(items => {
      const transfer = new DataTransfer();
      for (const { name, data } of items) {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        transfer.items.add(new File([bytes], name, { type: 'application/dicom' }));
      }
      return transfer;
    }, files);
    // Dragging files over any page opens the upload page, which takes the drop.
    await page.dispatchEvent('main', 'dragenter', { dataTransfer });
    await page.waitForURL(url => url.hash === '#/upload');
    await page.dispatchEvent('#dropzone', 'dragover', { dataTransfer });
    await shot('upload-drag-over');
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer });
    const stats = await uploadFinished();
    check(stats.stored === spec.upload.drop.length, `stored ${stats.stored} of ${spec.upload.drop.length}`);
    await shot('upload-drop');
    return stats;
  });

  await step('search', async () => {
    await page.goto(`${ui}#/studies`);
    await page.getByLabel('Patient name').fill(expect.searchName.toLowerCase());
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(url => url.hash.includes('PatientName='));
    await waitList({ rows: 1 });
    const text = await rows().first().innerText();
    check(text.toUpperCase().includes(expect.searchName), `the row shows ${expect.searchName}: ${text}`);
    await shot('search');
    await page.getByRole('button', { name: 'Clear' }).click();
    await waitList({ rows: expect.firstPageRows });
  });

  await step('sort', async () => {
    await page.goto(`${ui}#/studies`);
    await rows().first().waitFor();
    await page.locator('th button.sort[data-sort="name"]').click();
    await waitList({ sort: 'name', dir: 'asc', page: 0 });
    const ascending = await columnTexts(1);
    check(isSorted(ascending), `ascending by name: ${ascending.join(' | ')}`);
    await page.locator('th button.sort[data-sort="name"]').click();
    await waitList({ sort: 'name', dir: 'desc', page: 0 });
    const descending = await columnTexts(1);
    check(isSorted([...descending].reverse()), `descending by name: ${descending.join(' | ')}`);
    check(descending[0] !== ascending[0], 'the order changed');
    check(await page.locator('th[aria-sort="descending"]').count() === 1, 'the header says aria-sort');
    await shot('sorted');
    return { first: ascending[0], last: descending[0] };
  });

  await step('page', async () => {
    await page.goto(`${ui}#/studies?sort=name&dir=asc`);
    await waitList({ sort: 'name', dir: 'asc', page: 0, rows: expect.firstPageRows });
    const firstPage = await columnTexts(1);
    await page.getByRole('button', { name: 'Next page' }).click();
    await waitList({ page: 1, rows: expect.studiesAfterUploads - expect.firstPageRows });
    await checkRange(`${expect.firstPageRows + 1}–${expect.studiesAfterUploads} of ${expect.studiesAfterUploads}`);
    const secondPage = await columnTexts(1);
    check(secondPage.length === expect.studiesAfterUploads - expect.firstPageRows, `${secondPage.length} rows on page 2`);
    check(!secondPage.some(name => firstPage.includes(name) && name.startsWith('PAGING')), 'pages do not overlap');
    check(isSorted([...firstPage, ...secondPage]), 'the order goes on across pages');
    await shot('page-2');
    await page.getByLabel('Rows per page').selectOption('50');
    await waitList({ page: 0, size: 50, rows: expect.studiesAfterUploads });
    check(await page.getByRole('button', { name: 'Previous page' }).isDisabled(), 'no page before the first');
  });

  let study;
  await step('browse patient, study, series, instance', async () => {
    await page.goto(`${ui}#/studies?PatientName=${encodeURIComponent(expect.browseName)}`);
    await waitList({ rows: 1 });
    await rows().first().locator('td').nth(3).click(); // a cell, not the link: the row opens
    await page.waitForURL(url => /#\/studies\/[\w-]+$/.test(url.hash));
    study = page.url().split('/').pop();
    await page.locator('.card[data-series]').first().waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('.card .thumb img')].some(i => i.complete && i.naturalWidth > 0));
    await settle();
    await shot('study');
    const ohif = await page.locator('[data-action=ohif]').getAttribute('href');
    check(ohif.startsWith('/ohif/viewer?StudyInstanceUIDs='), `the OHIF link: ${ohif}`);
    await page.locator('.card[data-series]').first().click();
    await page.waitForURL(url => url.hash.startsWith('#/series/'));
    await page.locator('.card[data-instance]').first().waitFor();
    await settle();
    await shot('series');
    await page.locator('.card[data-instance]').nth(2).click();
    await page.waitForURL(url => url.hash.startsWith('#/instances/'));
    await page.getByRole('cell', { name: 'PatientName', exact: true }).waitFor();
    await page.waitForFunction(() => document.querySelector('.preview-box img')?.naturalWidth > 0);
    await page.getByPlaceholder('Filter tags').fill('0010,');
    const filtered = await page.waitForFunction(() => {
      const shown = [...document.querySelectorAll('.tags-table tbody tr')].filter(row => !row.hidden);
      return shown.length < 20 ? shown.map(row => row.cells[0].innerText) : null;
    }, undefined, { polling: 100 });
    const visible = await filtered.jsonValue();
    check(visible.length >= 2 && visible.every(tag => tag.startsWith('0010,')), `tags shown: ${visible.join(' ')}`);
    await page.getByPlaceholder('Filter tags').fill('');
    await shot('instance');
    await page.locator('.crumbs a').nth(1).click(); // the patient
    await page.waitForURL(url => url.hash.startsWith('#/patients/'));
    await page.locator('.find-list tbody tr').first().waitFor();
    await shot('patient');
    return { study };
  });

  await step('label', async () => {
    await page.goto(`${ui}#/studies/${study}`);
    await page.getByLabel('New label').fill('urgent-ui');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.locator('.labels-editor .chip.label[data-label="urgent-ui"]').waitFor();
    await page.locator('#nav-labels a[data-label="urgent-ui"]').click();
    await page.waitForURL(url => url.hash.includes('label=urgent-ui'));
    await waitList({ rows: 1 });
    await shot('label-filter');
  });

  await step('protect', async () => {
    await page.goto(`${ui}#/studies/${study}`);
    await page.locator('.facts a[href^="#/patients/"]').click();
    const protect = page.locator('[data-action=protect]');
    await protect.waitFor();
    await page.waitForTimeout(300); // its state is read after the page is drawn
    check(await protect.getAttribute('aria-pressed') === 'false', 'not protected at first');
    await protect.click();
    await page.waitForFunction(() => document.querySelector('[data-action=protect]')?.getAttribute('aria-pressed') === 'true');
    await shot('protected');
    return { patient: page.url().split('/').pop() };
  });

  await step('modify', async () => {
    await page.goto(`${ui}#/studies/${study}`);
    await page.locator('[data-action=modify]').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('StudyDescription').fill(expect.modifiedDescription);
    await shot('modify-dialog');
    await dialog.getByRole('button', { name: 'Modify' }).click();
    await page.waitForURL(url => /#\/studies\/[\w-]+$/.test(url.hash) && !url.hash.endsWith(study));
    await page.getByRole('heading', { level: 1, name: expect.modifiedDescription }).waitFor();
    study = page.url().split('/').pop();
    await shot('modified');
    return { study };
  });

  let anonymized;
  await step('anonymize', async () => {
    await page.locator('[data-action=anonymize]').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('New PatientName (empty: generated)').fill('ANON^UI');
    await dialog.getByRole('button', { name: 'Anonymize' }).click();
    await page.waitForURL(url => /#\/studies\/[\w-]+$/.test(url.hash) && !url.hash.endsWith(study));
    await page.locator('.crumbs a', { hasText: 'ANON, UI' }).waitFor();
    anonymized = page.url().split('/').pop();
    await shot('anonymized');
    return { anonymized };
  });

  await step('download ZIP and DICOMDIR', async () => {
    await page.goto(`${ui}#/studies/${study}`);
    const saved = {};
    for (const action of ['download-zip', 'download-media']) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator(`[data-action=${action}]`).click()]);
      const path = join(artifacts, `${action}.zip`);
      await download.saveAs(path);
      const head = (await readFile(path)).subarray(0, 4);
      check(head.toString('latin1') === 'PK\u0003\u0004', `${action} is a ZIP`);
      saved[action] = path;
      report.downloads.push(path);
    }
    return saved;
  });

  await step('delete', async () => {
    await page.goto(`${ui}#/studies/${anonymized}`);
    await page.locator('[data-action=delete]').click();
    const dialog = page.getByRole('dialog');
    await shot('delete-confirm');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    // The anonymized patient had this study only: back to the list, without it.
    await page.waitForURL(url => url.hash === '#/studies');
    await rows().first().waitFor();
    check(await page.locator(`tr[data-id="${anonymized}"]`).count() === 0, 'the study left the list');
  });

  for (const [kind, name] of [['peer', expect.peer], ['modality', expect.modality], ['dicomweb', expect.dicomweb]]) {
    await step(`send to a ${kind}`, async () => {
      await page.goto(`${ui}#/studies/${study}`);
      await page.locator('[data-action=send]').click();
      const dialog = page.getByRole('dialog');
      await dialog.locator(`input[value="${kind}:${name}"]`).check();
      await shot(`send-${kind}-dialog`);
      await dialog.getByRole('button', { name: 'Send' }).click();
      await page.locator('.toast.ok .toast-title span', { hasText: new RegExp(`^Sent to ${name}$`) }).waitFor();
      await shot(`sent-${kind}`);
    });
  }

  await step('jobs with live progress', async () => {
    await page.goto(`${ui}#/jobs`);
    await page.locator('tr[data-job]').first().waitFor();
    const before = await page.locator('tr[data-job]').count();
    // A job started elsewhere appears and completes on the open page (it polls /jobs).
    const started = await page.evaluate(async ({ study }) => {
      const answer = await fetch(`/studies/${study}/archive`, { method: 'POST',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Asynchronous: true }) });
      return (await answer.json()).ID;
    }, { study });
    await page.locator(`tr[data-job="${started}"][data-state="Success"]`).waitFor();
    const rowsNow = await page.locator('tr[data-job]').count();
    check(rowsNow === before + 1, `${rowsNow} jobs listed, ${before} before`);
    const states = await page.locator('tr[data-job]').evaluateAll(list => list.map(r => r.dataset.state));
    check(states.every(s => s === 'Success'), `every job succeeded: ${states.join(', ')}`);
    const values = await page.locator('tr[data-job] [role=progressbar]').evaluateAll(list => list.map(b => b.getAttribute('aria-valuenow')));
    check(values.every(v => v === '100'), `every bar at 100: ${values.join(', ')}`);
    await shot('jobs');
    return { jobs: rowsNow };
  });

  await step('query and retrieve from a modality', async () => {
    await page.goto(`${ui}#/query`);
    await page.getByLabel('Modality to query').selectOption(expect.modality);
    await page.getByRole('button', { name: 'Echo' }).click();
    await page.locator('.toast.ok', { hasText: 'C-ECHO' }).waitFor();
    await page.getByLabel('Patient name').fill(expect.remoteName);
    await page.getByRole('button', { name: 'Search' }).click();
    const answer = page.locator('#query-answers tbody tr[data-answer]');
    await answer.first().waitFor();
    check(await answer.count() === 1, 'one answer');
    check(await answer.locator('.chip.ok').count() === 0, 'not in the archive yet');
    await answer.getByRole('button', { name: 'Series' }).click();
    await page.locator('#query-answers tr.series-row td table tr').first().waitFor();
    await shot('query');
    await answer.getByRole('button', { name: 'Retrieve' }).click();
    await page.locator('.toast.ok', { hasText: 'Retrieved' }).waitFor();
    await page.locator('#query-answers tbody tr[data-answer] .chip.ok').waitFor();
    await shot('retrieved');
  });

  await step('system and storage', async () => {
    await page.goto(`${ui}#/system`);
    const instances = page.locator('[data-stat=instances] .value');
    await instances.waitFor();
    check((await instances.innerText()).replace(/,/g, '') === String(expect.instancesAtEnd),
      `instances: ${await instances.innerText()}, expected ${expect.instancesAtEnd}`);
    await page.locator(`button[data-echo="${expect.modality}"]`).click();
    await page.locator('.toast.ok', { hasText: 'C-ECHO' }).first().waitFor();
    await shot('system');
  });

  await step('keyboard', async () => {
    await page.goto('about:blank');
    await page.goto(`${ui}#/studies`);
    await rows().first().waitFor();
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement?.dataset?.skip !== undefined), 'the skip link comes first');
    await page.keyboard.press('Enter');
    check(await page.evaluate(() => document.activeElement?.id === 'main'), 'Enter moves to the content');
    // Tab reaches the first study link; Enter opens it.
    let reached = false;
    for (let i = 0; i < 40 && !reached; i += 1) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.matches('tbody a[href^="#/studies/"]'));
    }
    check(reached, 'Tab reaches a study link');
    await page.keyboard.press('Enter');
    await page.waitForURL(url => /#\/studies\/[\w-]+$/.test(url.hash));
    await page.locator('[data-action=delete]').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
  });
}

async function authScenario() {
  const ui = new URL('/ui/', base).href;
  await step('studies list behind authentication', async () => {
    await page.goto(ui);
    await rows().first().waitFor();
    await shot('studies');
  });
  await step('upload behind authentication', async () => {
    await page.goto(`${ui}#/upload`);
    await page.locator('#upload-files').setInputFiles(spec.upload.files);
    const stats = await uploadFinished();
    check(stats.stored === spec.upload.files.length, `stored ${stats.stored}`);
    await shot('upload');
  });
  await step('browse and preview behind authentication', async () => {
    await page.goto(`${ui}#/studies?PatientName=${encodeURIComponent(expect.browseName)}`);
    await waitList({ rows: 1 });
    await rows().first().locator('a').first().click();
    await page.locator('.card[data-series]').first().click();
    await page.locator('.card[data-instance]').first().click();
    await page.waitForFunction(() => document.querySelector('.preview-box img')?.naturalWidth > 0);
    await shot('instance');
  });
  await step('label and download behind authentication', async () => {
    await page.locator('.crumbs a').nth(2).click(); // the study
    await page.getByLabel('New label').fill('checked');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.locator('.labels-editor .chip.label[data-label="checked"]').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-action=download-zip]').click()]);
    const path = join(artifacts, 'study.zip');
    await download.saveAs(path);
    check((await readFile(path)).subarray(0, 2).toString('latin1') === 'PK', 'a ZIP');
  });
  await step('values are text, never markup', async () => {
    // 2017-06-27-XSSInjection.dcm: <script> in PatientName, StudyDescription, SeriesDescription.
    await page.goto(`${ui}#/studies?PatientName=HelloWorld`);
    await waitList({ rows: 1 });
    check((await rows().first().innerText()).includes('<script>alert('), 'the name is shown as it is');
    await rows().first().locator('a').first().click();
    await page.getByRole('heading', { level: 1, name: /MyStudy<script>/ }).waitFor();
    await page.locator('.card[data-series]').first().click();
    await page.getByRole('heading', { level: 1, name: /MySeries<script>/ }).waitFor();
    check(await page.locator('main script').count() === 0, 'no script element in the page');
    await shot('markup-as-text');
  });
  await step('system behind authentication', async () => {
    await page.goto(`${ui}#/system`);
    await page.locator('[data-stat=instances] .value').waitFor();
    await shot('system');
  });
}

// ---- helpers ------------------------------------------------------------------------

function rows() {
  return page.locator('.find-list tbody tr[data-id]');
}

// Wait until the list shows a page loaded with these attributes (rows, sort, dir, page,
// size: what FindList writes on its element once a page is drawn).
async function waitList(expected) {
  await page.waitForFunction(want => {
    const list = document.querySelector('.find-list');
    if (!list || list.hasAttribute('aria-busy')) return false;
    return Object.entries(want).every(([key, value]) => list.dataset[key] === String(value));
  }, expected, { polling: 100 });
}

async function columnTexts(index) {
  return page.locator('.find-list tbody tr[data-id]').evaluateAll(
    (list, n) => list.map(row => row.children[n].innerText.trim()), index);
}

function isSorted(values) {
  const keys = values.map(v => v.toUpperCase());
  return keys.every((value, i) => i === 0 || keys[i - 1] <= value);
}

async function checkRange(text) {
  await page.locator('.table-foot .range', { hasText: text }).waitFor();
}

async function uploadFinished() {
  await page.locator('#upload-progress h2', { hasText: 'Finished' }).waitFor({ timeout: 120_000 });
  const stat = async key => Number((await page.locator(`[data-stat=${key}]`).innerText()).replace(/,/g, ''));
  const stats = { stored: await stat('stored'), already: await stat('already'), failed: await stat('failed'),
    skipped: await stat('skipped') };
  check(stats.failed === 0, `${stats.failed} failed uploads`);
  return stats;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function step(name, body) {
  const started = Date.now();
  if (started > deadline) {
    report.steps.push({ name, ok: false, error: 'not run: the check ran out of time' });
    return;
  }
  try {
    const result = await body();
    report.steps.push({ name, ok: true, ms: Date.now() - started, ...result });
  } catch (error) {
    report.steps.push({ name, ok: false, ms: Date.now() - started, error: String(error?.message ?? error) });
    await shot(`failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
  }
}

async function shot(name) {
  await audit(name);
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path });
  report.screenshots.push(path);
}

// Accessibility basics on every screen shot: each control has a name, each image an alt.
async function audit(name) {
  const problems = await page.evaluate(() => {
    const found = [];
    const visible = el => el.offsetParent !== null || el.getClientRects().length > 0;
    for (const el of document.querySelectorAll('button, a[href], input:not([type=hidden]), select, textarea')) {
      if (!visible(el) && !(el.type === 'file')) continue;
      const labelled = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.title
        || (el.labels && el.labels.length) || (el.innerText ?? '').trim() || el.getAttribute('placeholder');
      if (!labelled) found.push(`${el.tagName.toLowerCase()} without a name: ${el.outerHTML.slice(0, 120)}`);
    }
    for (const img of document.querySelectorAll('img')) {
      if (!img.hasAttribute('alt')) found.push(`img without alt: ${img.src}`);
    }
    return found;
  });
  for (const problem of problems) report.accessibility.push(`${name}: ${problem}`);
}

async function settle(quietMs = 500, maxMs = 10_000) {
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    const before = completed;
    await page.waitForTimeout(quietMs);
    if (inFlight.size <= streams.size && completed === before) return;
  }
}

var inFlight;
var completed;
var streams;

function watch(target) {
  inFlight = new Set();
  streams = new Set();
  completed = 0;
  target.on('request', request => {
    report.requests += 1;
    inFlight.add(request);
    if (request.url().includes('/changes/stream')) streams.add(request);
    const url = new URL(request.url());
    if (!['data:', 'blob:'].includes(url.protocol) && url.origin !== base.origin) {
      report.externalRequests.push(`${request.method()} ${request.url()}`);
    }
  });
  target.on('requestfinished', request => { inFlight.delete(request); streams.delete(request); completed += 1; });
  target.on('requestfailed', request => {
    inFlight.delete(request);
    streams.delete(request);
    completed += 1;
    const reason = request.failure()?.errorText ?? 'unknown';
    if (reason === 'net::ERR_ABORTED') report.abortedRequests += 1;
    else report.failedLoads.push(`${request.method()} ${request.url()}: ${reason}`);
  });
  target.on('response', async response => {
    if (response.status() < 400) return;
    let body = '';
    try { body = (await response.text()).slice(0, 500); } catch { /* gone */ }
    report.failedRequests.push({ method: response.request().method(), url: response.url(), status: response.status(), body });
  });
  target.on('console', message => {
    if (message.type() !== 'error') return;
    const location = message.location();
    report.consoleErrors.push(`${message.text().slice(0, 1000)} (${location.url}:${location.lineNumber})`);
  });
  target.on('pageerror', error => report.pageErrors.push(String(error?.stack ?? error).slice(0, 1000)));
  // The page never calls alert/confirm: one would be a value run as code.
  target.on('dialog', dialog => {
    report.pageErrors.push(`a JavaScript dialog opened: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
}
