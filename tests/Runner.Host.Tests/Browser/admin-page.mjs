// Drives the admin page of a running runner in headless Chromium (Debian's /usr/bin/chromium,
// through playwright-core) and checks its flows; run by AdminPageTests.
//
// Environment: RUNNER_ADMIN_URL (the page, …/admin/ui/), RUNNER_ADMIN_TOKEN, RUNNER_ADMIN_SCREENSHOTS
// (a directory for the screenshots), RUNNER_ADMIN_EXPECT (JSON: what the runner was given, see
// `expect` below). Prints one JSON line per event ({"event": …}) and a last line
// {"ok": true|false, …}; exits 0 only when every step passed.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const url = required('RUNNER_ADMIN_URL');
const token = required('RUNNER_ADMIN_TOKEN');
const shots = required('RUNNER_ADMIN_SCREENSHOTS');
/** { partitions, owner, saga, keys[], parked: { saga, key, skip_fold[] }, requeue, discard, effect, burst_transitions } */
const expect = JSON.parse(required('RUNNER_ADMIN_EXPECT'));
const Timeout = 20_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.log(JSON.stringify({ ok: false, error: `${name} is not set` }));
    process.exit(2);
  }
  return value;
}

function emit(event) {
  console.log(JSON.stringify(event));
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'runner-admin-chromium-'));
const steps = [];
const screenshots = [];
const pageErrors = [];
const foreign = [];
let context;
let page;

async function shot(name) {
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
}

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    steps.push({ name, ms: Date.now() - started });
    emit({ event: 'step', name, ms: Date.now() - started });
  } catch (error) {
    steps.push({ name, ms: Date.now() - started, error: error.message });
    try {
      await shot(`failed-${name}`);
    } catch {
      // the page itself may be gone
    }
    throw new Error(`${name}: ${error.message}`);
  }
}

async function openTab(name) {
  await page.click(`#tabs button[data-tab="${name}"]`);
  await page.locator(`#tab-${name}`).waitFor({ state: 'visible' });
}

/** The texts of one column (`data-field`) of a table's body rows. */
async function column(container, field) {
  return page.locator(`${container} tbody tr td[data-field="${field}"]`).allTextContents();
}

async function noDataShown() {
  check(await page.locator('#main').isHidden(), 'the data area is shown without a valid token');
  check(await page.locator('#tabs').isHidden(), 'the tabs are shown without a valid token');
  check(await page.locator('#main td').count() === 0, 'table cells are in the page without a valid token');
}

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  context.setDefaultTimeout(Timeout);
  page = context.pages()[0] ?? await context.newPage();
  const origin = new URL(url).origin;
  page.on('pageerror', error => pageErrors.push(error.message));
  page.on('request', request => {
    if (!request.url().startsWith(origin)) {
      foreign.push(request.url());
    }
  });

  await step('no-token', async () => {
    await page.goto(url);
    const auth = page.locator('#auth');
    await auth.waitFor({ state: 'visible' });
    const text = await auth.textContent();
    check(text.includes('401') && text.includes('token required'), `expected the 401 "token required" message, got "${text}"`);
    await noDataShown();
    await shot('01-no-token');
  });

  await step('wrong-token', async () => {
    await page.fill('#token', 'not-the-token');
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('auth').textContent.includes('token invalid'));
    const text = await page.locator('#auth').textContent();
    check(text.startsWith('401'), `expected a 401 message, got "${text}"`);
    await noDataShown();
    await shot('02-wrong-token');
  });

  await step('partitions', async () => {
    await page.fill('#token', token);
    await page.click('#token-form button[type="submit"]');
    await page.locator('#tab-partitions').waitFor({ state: 'visible' });
    check(await page.locator('#auth').isHidden(), 'the 401 message stays after a valid token');
    await page.waitForFunction(n => document.querySelectorAll('#partitions-table tbody tr').length === n, expect.partitions);
    const owners = await column('#partitions-table', 'owner');
    const states = await column('#partitions-table', 'state');
    check(owners.every(o => o === expect.owner), `every partition owned by ${expect.owner}; owners: ${owners.join(', ')}`);
    check(states.every(s => s === 'held'), `every partition held; states: ${states.join(', ')}`);
    const epochs = await column('#partitions-table', 'epoch');
    check(epochs.every(e => Number(e) >= 1), `epochs: ${epochs.join(', ')}`);
    const lags = await column('#partitions-table', 'lag');
    check(lags.every(l => /^\d+$/.test(l)), `lag of every held partition: ${lags.join(', ')}`);
    const replicas = await column('#replicas-table', 'worker');
    check(replicas.includes(expect.owner), `replicas: ${replicas.join(', ')}`);
    await shot('03-partitions');
  });

  await step('instances-search', async () => {
    await openTab('instances');
    await page.fill('#instance-search input[name="saga"]', expect.saga);
    await page.selectOption('#instance-search select[name="status"]', 'done');
    await page.click('#instance-search button[type="submit"]');
    // The tab's own first list (everything) may still be on screen: wait for the search's answer.
    await page.waitForFunction(({ keys, saga }) => {
      const rows = [...document.querySelectorAll('#instances-list tbody tr')];
      const shown = rows.map(r => r.dataset.key);
      return keys.every(k => shown.includes(k)) && rows.every(r => r.dataset.saga === saga);
    }, { keys: expect.keys, saga: expect.saga });
    const sagas = await column('#instances-list', 'saga');
    check(sagas.every(s => s === expect.saga), `only ${expect.saga} instances: ${sagas.join(', ')}`);
    const statuses = await column('#instances-list', 'status');
    check(statuses.every(s => s === 'done'), `only done instances: ${statuses.join(', ')}`);
    await shot('04-instances');
  });

  await step('instance-history', async () => {
    const key = expect.keys[0];
    await page.click(`#instances-list tbody tr[data-key="${key}"]`);
    await page.locator('#instance-history li.step').nth(1).waitFor();
    const heading = await page.locator('#instance-detail h3').textContent();
    check(heading.endsWith(`/${expect.saga}/${key}`), `detail of ${key}: "${heading}"`);
    const state = JSON.parse(await page.locator('#instance-state').textContent());
    check(state.status === 'done', `state: ${JSON.stringify(state)}`);
    // v1 created the state; v2 changed its status from working to done.
    const first = page.locator('#instance-history li.step[data-version="1"] table.diff tr[data-path="status"]');
    check(await first.getAttribute('data-kind') === 'added', 'v1 adds status');
    check(await first.locator('td[data-field="after"]').textContent() === '"working"', 'v1 sets status to "working"');
    const second = page.locator('#instance-history li.step[data-version="2"] table.diff tr[data-path="status"]');
    check(await second.getAttribute('data-kind') === 'changed', 'v2 changes status');
    check(await second.locator('td[data-field="before"]').textContent() === '"working"', 'v2 status before');
    check(await second.locator('td[data-field="after"]').textContent() === '"done"', 'v2 status after');
    const unchanged = await page.locator('#instance-history li.step[data-version="2"] table.diff tr[data-path="version"]').count();
    check(unchanged === 0, 'v2 lists an unchanged path');
    await page.locator('#instance-history').scrollIntoViewIfNeeded();
    await shot('05-instance-history');
  });

  await step('parked-skip', async () => {
    const { saga, key, skip_fold: fold } = expect.parked;
    await openTab('parked');
    const row = page.locator(`#parked-list tbody tr[data-saga="${saga}"][data-key="${key}"]`);
    await row.waitFor();
    await shot('06-parked');
    await row.locator('button[data-action="skip"]').click();
    await page.locator('#parked-confirm .confirm').waitFor();
    await shot('07-parked-confirm-skip');
    await page.click('#parked-confirm button[data-confirm="yes"]');
    const result = page.locator('#parked-result p.note.ok');
    await result.waitFor();
    const text = await result.textContent();
    check(text.includes('applied') && text.includes('now running'), `skip result: "${text}"`);
    await row.waitFor({ state: 'detached' });
    await shot('08-parked-after-skip');

    // Its state is the fold without the skipped event.
    await page.click(`#tabs button[data-tab="instances"]`);
    await page.fill('#instance-search input[name="saga"]', saga);
    await page.fill('#instance-search input[name="key"]', key);
    await page.selectOption('#instance-search select[name="status"]', '');
    await page.click('#instance-search button[type="submit"]');
    await page.locator(`#instances-list tbody tr[data-key="${key}"] td[data-field="status"]`).filter({ hasText: 'running' }).waitFor();
    await page.click(`#instances-list tbody tr[data-key="${key}"]`);
    await page.waitForFunction(k => document.querySelector('#instance-detail h3')?.textContent.endsWith(`/${k}`), key);
    const state = JSON.parse(await page.locator('#instance-state').textContent());
    check(JSON.stringify(state.order) === JSON.stringify(fold), `state after skip: ${JSON.stringify(state)}`);
    check(await page.locator('#instance-parked').count() === 0, 'still shown as parked');
    // The step after the skip appended the held event's n to the list.
    const appended = page.locator(`#instance-history li.step[data-version="2"] table.diff tr[data-path="order[${fold.length - 1}]"]`);
    check(await appended.getAttribute('data-kind') === 'added', 'the last step adds to order');
    check(await appended.locator('td[data-field="after"]').textContent() === String(fold[fold.length - 1]), 'the last step adds the held n');
    await shot('09-instance-after-skip');
  });

  await step('quarantine', async () => {
    await openTab('quarantine');
    for (const [reason, action, outcome] of [[expect.requeue, 'requeue', 'requeued'], [expect.discard, 'discard', 'discarded']]) {
      const row = page.locator(`#quarantine-list tbody tr[data-reason="${reason}"]`);
      await row.first().waitFor();
      check(await row.count() === 1, `one ${reason} record, found ${await row.count()}`);
      await row.locator(`button[data-action="${action}"]`).click();
      const dry = page.locator(`#quarantine-confirm li[data-outcome="would_${action}"]`);
      await dry.waitFor();
      check(await row.count() === 1, `the dry run of ${action} changed the list`);
      await shot(`10-quarantine-dry-run-${action}`);
      await page.click('#quarantine-confirm button[data-confirm="yes"]');
      await page.locator(`#quarantine-result p[data-outcome="${outcome}"]`).waitFor();
      await row.waitFor({ state: 'detached' });
    }
    await shot('11-quarantine-after');
  });

  await step('effects', async () => {
    await openTab('effects');
    const row = page.locator(`#effects-list tbody tr[data-effect="${expect.effect}"]`);
    await row.first().waitFor();
    const breaker = await row.first().locator('td[data-field="breaker"]').textContent();
    check(breaker === 'closed', `breaker of ${expect.effect}: "${breaker}"`);
    const upstream = await row.first().locator('td[data-field="upstream"]').textContent();
    check(upstream !== '–', `the upstream of ${expect.effect} is shown`);
    await shot('12-effects');
  });

  await step('throughput', async () => {
    await openTab('throughput');
    const canvas = page.locator('#throughput-canvas');
    await page.waitForFunction(() => Number(document.getElementById('throughput-canvas').dataset.samples) >= 2);
    const before = Number(await canvas.getAttribute('data-transitions-total'));
    // The test publishes a burst of events when it reads this line; the plot must show it.
    emit({ event: 'throughput-waiting', transitions: before });
    await page.waitForFunction(([from, burst]) => {
      const data = document.getElementById('throughput-canvas').dataset;
      return Number(data.transitionsTotal) >= from + burst && Number(data.peakTransitions) >= 1;
    }, [before, expect.burst_transitions], { timeout: 30_000 });
    // The transitions line (drawn on top, in #2563eb) rises above the zero line at the bottom.
    const painted = await page.evaluate(() => {
      const canvas = document.getElementById('throughput-canvas');
      const rows = Math.floor(canvas.height * 0.85);
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, rows).data;
      let blue = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i + 2] > 200 && pixels[i] < 90 && pixels[i + 1] < 140) {
          blue++;
        }
      }
      return blue;
    });
    check(painted > 50, `the transitions line is drawn above zero (${painted} of its pixels)`);
    emit({ event: 'throughput', samples: Number(await canvas.getAttribute('data-samples')), peak_transitions: Number(await canvas.getAttribute('data-peak-transitions')), painted });
    await shot('13-throughput');
  });

  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('; ')}`);
  check(foreign.length === 0, `requests beyond the runner: ${foreign.join(', ')}`);
  console.log(JSON.stringify({ ok: true, steps, screenshots }));
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  process.exit(0);
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: error.message, steps, screenshots, page_errors: pageErrors, foreign }));
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
