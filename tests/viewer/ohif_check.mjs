// End-to-end check of the OHIF viewer served by Pharos, in Debian's chromium driven by
// playwright-core (no browser download: executablePath is the system chromium).
//
//   node tests/viewer/ohif_check.mjs '<json spec>'
//
// spec: {
//   "url": "http://127.0.0.1:8042",            // the Pharos server (viewer at /ohif/)
//   "artifacts": "test-artifacts/viewer",       // screenshots and report.json go here
//   "credentials": "user:password",             // optional: answer the Basic auth prompt
//   "chromium": "/usr/bin/chromium",            // optional
//   "list": {"expect": ["BRAINIX", "KNEE"]},    // study list must show these rows
//   "studies": [{"uid": "1.2...", "label": "brainix", "open": "list" | "url",
//                "listText": "BRAINIX"}],       // "list": click the row + "Basic Viewer"
//   "dicomwebRoot": "http://127.0.0.1:8042/dicom-web"  // optional: the viewer (from "url")
//                  // uses DICOMweb on this other origin (CORS), as when OHIF is hosted elsewhere
// }
//
// Prints a JSON report on stdout; exits 1 when a step fails, a request answers >= 400 or
// fails, a request leaves the server's origin, or the page logs an error — all of them
// listed, not just the first.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2] ?? '{}');
const base = new URL(spec.url);
const artifacts = spec.artifacts ?? 'test-artifacts/viewer';
const dicomwebRoot = spec.dicomwebRoot ? new URL(spec.dicomwebRoot) : null;
const allowedOrigins = new Set([base.origin, ...(dicomwebRoot ? [dicomwebRoot.origin] : [])]);
const stepTimeout = spec.timeoutMs ?? 30_000;
// The whole check stops starting steps after this (the pytest side kills it later).
const deadline = Date.now() + (spec.deadlineMs ?? 180_000);

// Console errors OHIF 3.13.2 logs by itself, whatever the server: each with the reason it
// is not about Pharos. Keep this list short and specific.
const BENIGN_CONSOLE_ERRORS = [
  // (none needed so far)
];

const report = {
  ok: false, url: spec.url, steps: [], failedRequests: [], failedLoads: [], abortedRequests: 0,
  externalRequests: [], consoleErrors: [], pageErrors: [], requests: 0, screenshots: [],
};

function fail(kind, detail) {
  report[kind].push(detail);
}

await rm(artifacts, { recursive: true, force: true });  // no stale screenshots
await mkdir(artifacts, { recursive: true });
const userDataDir = await mkdtemp(join(tmpdir(), 'pharos-chromium-'));
let context;
try {
  const [username, ...rest] = (spec.credentials ?? '').split(':');
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: spec.chromium ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    httpCredentials: spec.credentials
      ? { username, password: rest.join(':'), origin: base.origin } : undefined,
    timeout: stepTimeout,
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  watch(page);
  if (dicomwebRoot) {
    // The viewer from one origin, its data from another: swap the roots of the generated
    // configuration, as a site hosting OHIF itself would write them.
    await page.route(url => url.pathname === '/ohif/app-config.js', async route => {
      const answer = await route.fetch();
      const script = (await answer.text()).replace(
        /("(?:qido|wado|wadoUri)Root": )"[^"]*"/g, `$1${JSON.stringify(dicomwebRoot.href.replace(/\/$/, ''))}`);
      await route.fulfill({ response: answer, body: script });
    });
  }

  const list = spec.list ?? { expect: [] };
  await step('study list', async () => {
    await page.goto(new URL('/ohif/', base).href);
    for (const text of list.expect) {
      await page.locator('tr').filter({ hasText: text }).first().waitFor();
    }
    await settle(page);
    await shot(page, 'study-list');
  });

  for (const study of spec.studies ?? []) {
    await step(`study ${study.label}`, async () => {
      if (study.open === 'list' && !report.steps[0].ok) {
        throw new Error('not run: the study list did not show the expected studies');
      }
      if (study.open === 'list') {
        await page.goto(new URL('/ohif/', base).href);
        await page.locator('tr').filter({ hasText: study.listText }).first().click();
        await page.getByRole('button', { name: 'Basic Viewer' }).click();
        await page.waitForURL(url => url.pathname.startsWith('/ohif/viewer')
          && url.searchParams.get('StudyInstanceUIDs') === study.uid);
      } else {
        const target = new URL('/ohif/viewer', base);
        target.searchParams.set('StudyInstanceUIDs', study.uid);
        await page.goto(target.href);
      }
      // An image was drawn: the viewport overlay shows its VOI window ("W:400 L:40").
      const handle = await page.waitForFunction(() => {
        for (const element of document.querySelectorAll('.viewport-overlay')) {
          const match = /W:\s*(-?\d+(?:\.\d+)?)/.exec(element.textContent ?? '');
          if (match) return match[1];
        }
        return null;
      }, undefined, { polling: 250 });
      const windowWidth = Number(await handle.jsonValue());
      // OHIF's first-visit guided tour (a fresh profile every run) would cover the image.
      const skipTour = page.getByText('Skip all', { exact: true });
      if (await skipTour.isVisible()) await skipTour.click();
      await settle(page);
      await shot(page, `study-${study.label}`);
      return { windowWidth };
    });
  }
} catch (error) {
  report.steps.push({ name: 'browser', ok: false, error: String(error?.stack ?? error) });
} finally {
  await context?.close().catch(() => {});
  await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
}

report.ok = report.steps.length > 0 && report.steps.every(s => s.ok)
  && !report.failedRequests.length && !report.failedLoads.length
  && !report.externalRequests.length && !report.consoleErrors.length
  && !report.pageErrors.length;
await writeFile(join(artifacts, 'report.json'), JSON.stringify(report, null, 2));
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(report.ok ? 0 : 1);

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
    await shot(context.pages()[0], `failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
  }
}

async function shot(page, name) {
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path });
  report.screenshots.push(path);
}

// Wait until no request of the page has been in flight for a moment (thumbnails,
// prefetch), so that their answers are checked too; bounded, OHIF may prefetch long.
async function settle(page, quietMs = 750, maxMs = 15_000) {
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    const before = inFlight.size + completed;
    await page.waitForTimeout(quietMs);
    if (inFlight.size === 0 && inFlight.size + completed === before) return;
  }
}

var inFlight;
var completed;

function watch(page) {
  inFlight = new Set();
  completed = 0;
  page.on('request', request => {
    report.requests += 1;
    inFlight.add(request);
    const url = new URL(request.url());
    if (!['data:', 'blob:'].includes(url.protocol) && !allowedOrigins.has(url.origin)) {
      fail('externalRequests', `${request.method()} ${request.url()}`);
    }
  });
  page.on('requestfinished', request => { inFlight.delete(request); completed += 1; });
  page.on('requestfailed', request => {
    inFlight.delete(request);
    completed += 1;
    const reason = request.failure()?.errorText ?? 'unknown';
    // Cancellations (OHIF aborting a prefetch, or our navigation to the next study) are
    // not server failures; count them, fail on everything else.
    if (reason === 'net::ERR_ABORTED') report.abortedRequests += 1;
    else fail('failedLoads', `${request.method()} ${request.url()}: ${reason}`);
  });
  page.on('response', async response => {
    if (response.status() < 400) return;
    let body = '';
    try { body = (await response.text()).slice(0, 500); } catch { /* body gone */ }
    fail('failedRequests', {
      method: response.request().method(), url: response.url(), status: response.status(), body,
    });
  });
  page.on('console', message => {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (BENIGN_CONSOLE_ERRORS.some(pattern => pattern.test(text))) return;
    const location = message.location();
    fail('consoleErrors', `${text.slice(0, 1000)} (${location.url}:${location.lineNumber})`);
  });
  page.on('pageerror', error => fail('pageErrors', String(error?.stack ?? error).slice(0, 1000)));
}
