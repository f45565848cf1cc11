// The page's sections: each loads from the admin endpoints and renders into its own elements.

import { call, get, query } from './api.js';
import { el, json, note, num, show, table, time } from './dom.js';
import { diffStates } from './diff.js';

const $ = id => document.getElementById(id);

let failed = () => {};

/** Who hears of an error in a button's or a row's action (the page shows it). */
export function whenFailed(handler) {
  failed = handler;
}

/** An event handler that reports a failure instead of leaving the promise unhandled. */
function guard(action) {
  return (...args) => Promise.resolve().then(() => action(...args)).catch(error => failed(error));
}

// A section can be asked to load again before its last answer is in (a tab opens with a list,
// then the form is sent): only the newest request may render, whichever answer comes last.
const requests = new Map();

/** Starts a request of `section`; the returned check says whether it is still the newest. */
function newest(section) {
  const ticket = (requests.get(section) ?? 0) + 1;
  requests.set(section, ticket);
  return () => requests.get(section) === ticket;
}

function path(...parts) {
  return parts.map(encodeURIComponent).join('/');
}

/** An inline confirmation in `box`: the question (text or nodes), then a button to go ahead and one to go back. */
function confirmIn(box, question, label, action) {
  const clear = () => show(box);
  show(box,
    el('div', { class: 'confirm', role: 'dialog' },
      el('div', {}, question),
      el('div', { class: 'actions' },
        label ? el('button', { type: 'button', class: 'danger', 'data-confirm': 'yes', onclick: guard(async () => { clear(); await action(); }) }, label) : null,
        el('button', { type: 'button', 'data-confirm': 'no', onclick: clear }, 'Back'))));
}

// --- Partitions -------------------------------------------------------------------------------

export async function loadPartitions() {
  const current = newest('loadPartitions');
  const data = await get('partitions');
  if (!current()) {
    return;
  }
  const held = data.partitions.filter(p => p.state === 'held');
  const lag = held.reduce((sum, p) => sum + (p.lag ?? 0), 0);
  show($('partitions-summary'),
    `${data.partitions.length} partitions, ${held.length} held by ${data.replicas.length} replica(s); lag ${lag} message(s) in all.`);
  show($('partitions-table'), table([
    { name: 'partition', title: 'Partition', value: p => p.partition },
    { name: 'state', title: 'State', value: p => p.state },
    { name: 'owner', title: 'Owner', value: p => p.owner ?? '–' },
    { name: 'epoch', title: 'Epoch', value: p => p.epoch },
    { name: 'checkpoint', title: 'Checkpoint', value: p => p.checkpoint },
    { name: 'lag', title: 'Lag', value: p => num(p.lag) },
    { name: 'snapshot_seq', title: 'Snapshot at', value: p => num(p.snapshot_seq) },
    { name: 'snapshot_age', title: 'Snapshot age', value: p => (p.snapshot_age_s === null ? '–' : `${num(p.snapshot_age_s, 0)} s`) },
    { name: 'snapshot_bytes', title: 'Snapshot bytes', value: p => num(p.snapshot_bytes) },
  ], data.partitions, p => ({ 'data-partition': p.partition, class: p.state === 'held' ? null : 'warn' })));
  show($('replicas-table'), table([
    { name: 'worker', title: 'Replica', value: r => r.worker },
    { name: 'partitions', title: 'Partitions held', value: r => r.partitions },
    { name: 'leaving', title: 'Leaving', value: r => (r.leaving ? 'yes' : 'no') },
    { name: 'heartbeat', title: 'Last heartbeat', value: r => `${num(r.heartbeat_age_s, 0)} s ago` },
  ], data.replicas));
}

// --- Instances --------------------------------------------------------------------------------

export async function searchInstances() {
  const current = newest('searchInstances');
  const form = new FormData($('instance-search'));
  const filter = Object.fromEntries(['saga', 'tenant', 'key', 'status', 'limit'].map(name => [name, (form.get(name) ?? '').toString().trim()]));
  const { status, body } = await call(`instances${query(filter)}`);
  if (!current()) {
    return;
  }
  if (status !== 200) {
    show($('instances-list'), note('fail', `${status}: ${body.error ?? 'search failed'}`));
    return;
  }
  const missing = body.partitions_missing.length > 0
    ? ` Partitions ${body.partitions_missing.join(', ')} did not answer (moving, or no saga replica holds them).`
    : '';
  show($('instances-list'),
    note('info', `${body.instances.length} instance(s)${body.truncated ? ' (more match: raise the limit)' : ''}; ${body.partitions_answered} partition(s) answered.${missing}`),
    table([
      { name: 'tenant', title: 'Tenant', value: i => i.tenant },
      { name: 'saga', title: 'Saga', value: i => i.saga },
      { name: 'key', title: 'Key', value: i => i.key },
      { name: 'status', title: 'Status', value: i => i.status },
      { name: 'version', title: 'Version', value: i => i.version },
      { name: 'partition', title: 'Partition', value: i => i.partition },
      { name: 'updated', title: 'Last event', value: i => time(i.updated_at) },
      { name: 'timers', title: 'Timers', value: i => i.timers },
    ], body.instances, i => ({
      class: 'clickable', tabindex: '0', 'data-key': i.key, 'data-saga': i.saga,
      onclick: guard(() => showInstance(i.saga, i.key, i.tenant)),
      onkeydown: guard(e => (e.key === 'Enter' ? showInstance(i.saga, i.key, i.tenant) : null)),
    })));
}

/** The instance's state, timers, outbox, parking and history (each step with its state diff) in #instance-detail. */
export async function showInstance(saga, key, tenant) {
  const current = newest('showInstance');
  const detail = $('instance-detail');
  show(detail, note('info', `Loading ${saga}/${key}…`));
  const { status, body } = await call(`instances/${path(saga, key)}${query({ tenant })}`);
  if (!current()) {
    return;
  }
  if (status !== 200) {
    show(detail, note('fail', `${status}: ${body.error ?? 'not found'}`));
    return;
  }
  const s = body.summary;
  show(detail,
    el('h3', {}, `${s.tenant}/${s.saga}/${s.key}`),
    el('p', { class: 'facts' },
      `${s.status}, version ${s.version}, partition ${body.partition} (owner ${body.worker}, epoch ${body.epoch}), last event ${s.last_event ?? '–'} at ${time(s.updated_at)}`),
    el('h4', {}, 'State'),
    json(body.state, { id: 'instance-state' }),
    body.parked ? [
      el('h4', {}, 'Parked'),
      el('p', { class: 'note fail', id: 'instance-parked' },
        `on ${body.parked.type} (${body.parked.event_id}), inbox #${body.parked.inbox_seq}: ${body.parked.reason} — ${body.parked.detail}`),
    ] : null,
    body.held.length > 0 ? [
      el('h4', {}, `Held (${body.held.length})`),
      table([
        { name: 'inbox_seq', title: 'Inbox #', value: h => h.inbox_seq },
        { name: 'event_id', title: 'Event', value: h => h.event_id ?? '–' },
        { name: 'type', title: 'Type', value: h => h.type ?? '–' },
        { name: 'subject', title: 'Subject', value: h => h.subject },
        { name: 'bytes', title: 'Bytes', value: h => h.bytes },
      ], body.held),
    ] : null,
    el('h4', {}, 'Timers'),
    Object.keys(body.timers ?? {}).length === 0 ? note('info', 'none')
      : table([
        { name: 'name', title: 'Timer', value: t => t[0] },
        { name: 'due', title: 'Due', value: t => time(t[1]) },
      ], Object.entries(body.timers)),
    el('h4', {}, 'Outbox (commands not yet published)'),
    body.outbox.length === 0 ? note('info', 'empty')
      : table([
        { name: 'command_id', title: 'Command', value: c => c.command_id },
        { name: 'effect', title: 'Effect', value: c => c.effect },
        { name: 'causation_id', title: 'Caused by', value: c => c.causation_id },
        { name: 'created_at', title: 'Created', value: c => c.created_at },
      ], body.outbox),
    el('h4', {}, `History (${body.history.length} kept step(s))`),
    el('ol', { id: 'instance-history', class: 'history' }, body.history.map((step, i) => historyStep(step, i > 0 ? body.history[i - 1] : null))));
}

function historyStep(step, previous) {
  const decided = [
    step.commands.length > 0 ? `commands: ${step.commands.map(c => `${c.effect} (${c.id})`).join(', ')}` : null,
    step.schedules.length > 0 ? `timers: ${step.schedules.map(t => `${t.name} at ${time(t.due_ms)}`).join(', ')}` : null,
    step.cancel.length > 0 ? `cancelled timers: ${step.cancel.join(', ')}` : null,
    step.done ? 'done' : null,
  ].filter(Boolean);
  let diff;
  if (previous || step.version === 1) {
    const changes = diffStates(previous ? previous.state : null, step.state);
    diff = changes.length === 0 ? note('info', 'state unchanged') : el('table', { class: 'diff' },
      el('thead', {}, el('tr', {}, el('th', {}, ''), el('th', {}, 'Path'), el('th', {}, 'Before'), el('th', {}, 'After'))),
      el('tbody', {}, changes.map(c => el('tr', { class: `diff-${c.kind}`, 'data-kind': c.kind, 'data-path': c.path },
        el('td', { class: 'mark' }, c.kind === 'added' ? '+' : c.kind === 'removed' ? '−' : '~'),
        el('td', { 'data-field': 'path' }, c.path),
        el('td', { 'data-field': 'before' }, c.kind === 'added' ? '' : JSON.stringify(c.before)),
        el('td', { 'data-field': 'after' }, c.kind === 'removed' ? '' : JSON.stringify(c.after))))));
  } else {
    diff = note('info', 'the step before this one is no longer kept: no diff');
  }
  return el('li', { class: 'step', 'data-version': step.version },
    el('div', { class: 'step-head' },
      el('strong', {}, `v${step.version}`), ` ${step.type} `, el('code', {}, step.event_id),
      ` · ${step.handler}${step.timer ? ` (timer ${step.timer})` : ''} · ${step.time} · state ${step.state_hash}`),
    decided.length > 0 ? el('div', { class: 'step-decided' }, decided.join(' · ')) : null,
    diff);
}

// --- Parked -----------------------------------------------------------------------------------

const ActionText = {
  resume: 'Resume: run the held events again, the failed one first, with the script version running now?',
  skip: 'Skip: drop the event the instance is parked on, then run the held events after it?',
  cancel: 'Cancel: run compensate on the event the instance is parked on, then the held events after it?',
};

export async function loadParked() {
  const current = newest('loadParked');
  const { status, body } = await call(`instances${query({ status: 'parked', limit: 500 })}`);
  if (!current()) {
    return;
  }
  if (status !== 200) {
    show($('parked-list'), note('fail', `${status}: ${body.error ?? 'list failed'}`));
    return;
  }
  show($('parked-list'),
    note('info', body.instances.length === 0 ? 'No parked instances.' : `${body.instances.length} parked instance(s).`),
    body.instances.length === 0 ? null : table([
      { name: 'tenant', title: 'Tenant', value: i => i.tenant },
      { name: 'saga', title: 'Saga', value: i => i.saga },
      { name: 'key', title: 'Key', value: i => i.key },
      { name: 'version', title: 'Version', value: i => i.version },
      { name: 'updated', title: 'Last event', value: i => time(i.updated_at) },
      { name: 'actions', title: '', value: i => el('span', { class: 'actions' },
        ['resume', 'skip', 'cancel'].map(action => el('button', {
          type: 'button', 'data-action': action,
          onclick: () => confirmIn($('parked-confirm'), `${i.tenant}/${i.saga}/${i.key} — ${ActionText[action]}`,
            `${action[0].toUpperCase()}${action.slice(1)} ${i.key}`, () => act(i, action)),
        }, action[0].toUpperCase() + action.slice(1))),
        el('button', { type: 'button', 'data-action': 'show', onclick: () => openInstance(i) }, 'Show')) },
    ], body.instances, i => ({ 'data-key': i.key, 'data-saga': i.saga })));
}

async function act(instance, action) {
  show($('parked-result'), note('info', `${action} of ${instance.saga}/${instance.key}…`));
  const { status, body } = await call(`instances/${path(instance.saga, instance.key, action)}${query({ tenant: instance.tenant })}`, 'POST');
  show($('parked-result'), note(status === 200 ? 'ok' : 'fail', `${status}: ${body.message ?? body.error ?? body.outcome}`, { 'data-outcome': body.outcome ?? status }));
  await loadParked();
}

let openHandler = () => {};

/** What Show does (the page switches to Instances and shows the instance there). */
export function whenOpen(handler) {
  openHandler = handler;
}

function openInstance(instance) {
  openHandler(instance);
}

// --- Quarantine -------------------------------------------------------------------------------

export async function loadQuarantine() {
  const current = newest('loadQuarantine');
  const form = new FormData($('quarantine-filter'));
  const filter = Object.fromEntries(['reason', 'stage', 'saga'].map(name => [name, (form.get(name) ?? '').toString().trim()]));
  const { status, body } = await call(`quarantine${query({ ...filter, limit: 500 })}`);
  if (!current()) {
    return;
  }
  if (status !== 200) {
    show($('quarantine-list'), note('fail', `${status}: ${body.error ?? 'list failed'}`));
    return;
  }
  show($('quarantine-list'),
    note('info', body.entries.length === 0 ? 'No quarantine records.' : `${body.entries.length} record(s)${body.truncated ? ' (more exist)' : ''}.`),
    body.entries.length === 0 ? null : table([
      { name: 'time', title: 'Time', value: e => e.record.time },
      { name: 'reason', title: 'Reason', value: e => e.record.reason },
      { name: 'stage', title: 'Stage', value: e => e.record.stage },
      { name: 'instance', title: 'Instance', value: e => [e.record.tenant, e.record.saga, e.record.key].filter(Boolean).join('/') || '–' },
      { name: 'subject', title: 'Subject', value: e => e.record.subject },
      { name: 'detail', title: 'Detail', value: e => el('span', { class: 'detail', title: e.record.detail }, e.record.detail) },
      { name: 'worker', title: 'Kept by', value: e => e.worker },
      { name: 'actions', title: '', value: e => el('span', { class: 'actions' },
        e.record.parked ? el('span', { class: 'tag', title: 'the instance is parked on this event: resume, skip or cancel the instance instead' }, 'parked') : null,
        el('button', { type: 'button', 'data-action': 'requeue', onclick: guard(() => dryRun(e, 'requeue')) }, 'Requeue'),
        el('button', { type: 'button', 'data-action': 'discard', onclick: guard(() => dryRun(e, 'discard')) }, 'Discard')) },
    ], body.entries, e => ({ 'data-id': e.id, 'data-reason': e.record.reason })));
}

/** Asks for a dry run first and shows what would happen; the real action only on confirmation. */
async function dryRun(entry, action) {
  const box = $('quarantine-confirm');
  show(box, note('info', `Dry run of ${action} for ${entry.id}…`));
  const { status, body } = await call(`quarantine/${action}${query({ id: entry.id, dry_run: true })}`, 'POST');
  if (status !== 200) {
    show(box, note('fail', `${status}: ${body.error ?? 'dry run failed'}`));
    return;
  }
  const would = body.results.filter(r => r.outcome.startsWith('would_'));
  confirmIn(box,
    [el('p', {}, `Dry run of ${action} (nothing changed yet):`),
      el('ul', { class: 'dry-run' }, body.results.map(r => el('li', { 'data-outcome': r.outcome },
        `${r.outcome} — ${r.reason} ${r.subject}${r.detail ? `: ${r.detail}` : ''}`))),
      body.results.length === 0 ? note('info', 'The record is gone (already acted on?).') : null],
    would.length > 0 ? `${action[0].toUpperCase()}${action.slice(1)} ${would.length} record(s)` : null,
    async () => {
      const done = await call(`quarantine/${action}${query({ id: entry.id })}`, 'POST');
      const results = done.body.results ?? [];
      show($('quarantine-result'), note(done.status === 200 && results.every(r => !r.outcome.startsWith('refused')) ? 'ok' : 'fail',
        `${done.status}: ${results.map(r => `${r.outcome}${r.requeued_as ? ` as ${r.requeued_as.stream}#${r.requeued_as.seq}` : ''}${r.detail ? ` (${r.detail})` : ''}`).join('; ') || done.body.error || 'nothing done'}`,
        { 'data-outcome': results.map(r => r.outcome).join(',') }));
      await loadQuarantine();
    });
}

// --- Effects ----------------------------------------------------------------------------------

export async function loadEffects() {
  const current = newest('loadEffects');
  // The token check first: /info is open, but this page shows nothing without the token.
  await get('drain');
  const info = await get('../info');
  if (!current()) {
    return;
  }
  const declared = info.manifest?.effects ?? [];
  const breakers = info.breakers;
  show($('effects-summary'), breakers === null
    ? note('info', `Replica ${info.worker_id} (${info.mode}) runs no effect workers: no breakers here. Effects declared in manifest ${info.manifest?.version?.slice(0, 12) ?? '–'}:`)
    : note('info', `Circuit breakers of replica ${info.worker_id} (${info.mode}, ${info.state}), per effect and upstream it has called. Other effect workers keep their own.`));
  const rows = declared.flatMap(effect => {
    const mine = (breakers ?? []).filter(b => b.effect === effect.name);
    return mine.length === 0 ? [{ effect, breaker: null }] : mine.map(breaker => ({ effect, breaker }));
  });
  for (const breaker of breakers ?? []) {
    if (!declared.some(e => e.name === breaker.effect)) {
      rows.push({ effect: { name: breaker.effect, provider: '(no longer declared)' }, breaker });
    }
  }
  show($('effects-list'), table([
    { name: 'effect', title: 'Effect', value: r => r.effect.name },
    { name: 'provider', title: 'Provider', value: r => r.effect.provider },
    { name: 'pool', title: 'Pool', value: r => r.effect.pool ?? '–' },
    { name: 'concurrency', title: 'Concurrency', value: r => num(r.effect.concurrency) },
    { name: 'upstream', title: 'Upstream', value: r => r.breaker?.upstream ?? '–' },
    { name: 'breaker', title: 'Breaker', value: r => (r.breaker ? el('span', { class: `breaker ${r.breaker.state}` }, r.breaker.state) : 'not called yet') },
    { name: 'held', title: 'Held back', value: r => num(r.breaker?.held) },
    { name: 'opened', title: 'Times opened', value: r => num(r.breaker?.opened) },
  ], rows, r => ({ 'data-effect': r.effect.name })));
}
