'use strict';

// pipeline.{tenant}.{pipeline}.run.requested, data:
//   { run_id, pipeline, pool?, inputs: [{ partition, path }], output_dir, contract?, transforms?,
//     resources?, paths?, max_attempts?, retry_after_ms?, deadline_ms? }
// Each partition runs as a slice (effect slice.launch) reading its input and writing
// {output_dir}/{partition}.jsonl, dead letters to {output_dir}/{partition}.dead.jsonl, with a
// checkpoint in {output_dir}/.state so a retried slice resumes where the failed one committed.

const DEFAULTS = { pool: 'etl', max_attempts: 3, retry_after_ms: 2000, deadline_ms: 10 * 60 * 1000 };

function spec(run, partition, input) {
  const base = run.output_dir + '/' + partition;
  const s = {
    slice: 'v1',
    run: {
      id: run.run_id + '.' + partition,
      job: { namespace: run.tenant + '.' + run.pipeline, name: partition },
      parent: { run_id: run.run_id, job: { namespace: run.tenant, name: run.pipeline } },
    },
    source: { type: 'jsonl', path: input },
    transforms: run.transforms || [],
    sink: { type: 'jsonl', path: base + '.jsonl' },
    dead_letter: { type: 'jsonl', path: base + '.dead.jsonl' },
    checkpoint: { path: run.output_dir + '/.state/' + partition + '.ckpt', every_batches: 16 },
  };
  if (run.contract) {
    s.contract = run.contract;
  }
  return s;
}

function launch(run, partition, ctx) {
  const part = run.parts[partition];
  const id = ctx.id('slice.' + partition + '.' + part.attempts);
  part.command_id = id;
  const payload = { spec: spec(run, partition, part.input) };
  if (run.resources) payload.resources = run.resources;
  if (run.paths) payload.paths = run.paths;
  return { effect: 'slice.launch', id: id, pool: run.pool, payload: payload };
}

function partitionOf(state, commandId) {
  for (const name of Object.keys(state.parts)) {
    if (state.parts[name].command_id === commandId) return name;
  }
  return null;
}

function totals(state) {
  const t = { partitions: 0, succeeded: 0, failed: 0, attempts: 0, records_in: 0, records_out: 0, dead_lettered: 0, filtered: 0, bytes_in: 0, bytes_out: 0 };
  for (const name of Object.keys(state.parts)) {
    const p = state.parts[name];
    t.partitions++;
    t.attempts += p.attempts;
    if (p.status === 'succeeded') t.succeeded++;
    if (p.status === 'failed') t.failed++;
    if (p.records) {
      t.records_in += p.records.in; t.records_out += p.records.out;
      t.dead_lettered += p.records.dead_lettered; t.filtered += p.records.filtered;
      t.bytes_in += p.bytes.in; t.bytes_out += p.bytes.out;
    }
  }
  return t;
}

function finish(state, outcome, reason, ctx) {
  const next = Object.assign({}, state, { status: outcome, finished_at: ctx.now });
  if (reason) next.reason = reason;
  const partitions = {};
  for (const name of Object.keys(state.parts)) {
    const p = state.parts[name];
    partitions[name] = { status: p.status, attempts: p.attempts, output: p.output || null, error: p.error || null };
  }
  return {
    state: next,
    commands: [{
      effect: 'pipeline.notify', id: ctx.id('notify.' + outcome),
      payload: { run_id: state.run_id, pipeline: state.pipeline, outcome: outcome, reason: reason || null, totals: totals(state), partitions: partitions },
    }],
    cancel: ['run-deadline'].concat(Object.keys(state.parts).map(function (n) { return 'retry.' + n; })),
    done: true,
  };
}

function on_event(state, event, ctx) {
  if (event.type === 'pipeline.run.requested' || /\.run\.requested$/.test(event.subject || '')) {
    if (state !== null) return { state: state };
    const req = event.data;
    const run = {
      run_id: req.run_id, pipeline: req.pipeline, tenant: ctx.tenant, status: 'running', started_at: ctx.now,
      pool: req.pool || DEFAULTS.pool, output_dir: req.output_dir, contract: req.contract || null, transforms: req.transforms || [],
      resources: req.resources || null, paths: req.paths || null,
      max_attempts: req.max_attempts || DEFAULTS.max_attempts, retry_after_ms: req.retry_after_ms || DEFAULTS.retry_after_ms,
      parts: {},
    };
    let repeated = null;
    (req.inputs || []).forEach(function (input, i) {
      const name = input.partition || ('p' + i);
      if (run.parts[name]) repeated = repeated || name;
      run.parts[name] = { input: input.path, attempts: 1, status: 'running' };
    });
    const names = Object.keys(run.parts);
    if (names.length === 0) {
      return finish(run, 'failed', 'the request lists no inputs', ctx);
    }
    // Two inputs under one partition name would share an output file: refuse rather than drop one.
    if (repeated !== null) {
      return finish(run, 'failed', 'the request lists partition ' + repeated + ' more than once', ctx);
    }
    const commands = names.map(function (name) { return launch(run, name, ctx); });
    return { state: run, commands: commands, schedules: [{ name: 'run-deadline', after_ms: req.deadline_ms || DEFAULTS.deadline_ms, deadline: true }] };
  }
  if (state === null || state.status !== 'running') {
    return { state: state };
  }
  if (event.type === 'slice.launch.succeeded') {
    const name = partitionOf(state, event.data.command_id);
    if (name === null) return { state: state };
    const next = JSON.parse(JSON.stringify(state));
    const output = event.data.result.output || {};
    next.parts[name].status = 'succeeded';
    next.parts[name].output = output.output ? output.output.name : null;
    next.parts[name].records = output.records || { in: 0, out: 0, dead_lettered: 0, filtered: 0 };
    next.parts[name].bytes = output.bytes || { in: 0, out: 0 };
    const open = Object.keys(next.parts).filter(function (n) { return next.parts[n].status !== 'succeeded'; });
    return open.length === 0 ? finish(next, 'completed', null, ctx) : { state: next };
  }
  if (event.type === 'timer.fired' && event.data.name.indexOf('retry.') === 0) {
    const name = event.data.name.substring('retry.'.length);
    if (!state.parts[name] || state.parts[name].status !== 'retrying') return { state: state };
    const next = JSON.parse(JSON.stringify(state));
    next.parts[name].attempts += 1;
    next.parts[name].status = 'running';
    return { state: next, commands: [launch(next, name, ctx)] };
  }
  return { state: state };
}

// A failed slice (a failed result) or the run's deadline.
function compensate(state, event, ctx) {
  if (state === null || state.status !== 'running') {
    return { state: state };
  }
  if (event.type === 'timer.fired') {
    return finish(state, 'failed', 'deadline passed', ctx);
  }
  const name = partitionOf(state, event.data.command_id);
  if (name === null) return { state: state };
  const next = JSON.parse(JSON.stringify(state));
  const part = next.parts[name];
  part.error = { code: event.data.error.code, message: event.data.error.message };
  if (part.attempts < next.max_attempts) {
    part.status = 'retrying';
    return { state: next, schedules: [{ name: 'retry.' + name, after_ms: next.retry_after_ms }] };
  }
  part.status = 'failed';
  return finish(next, 'failed', 'partition ' + name + ' failed ' + part.attempts + ' times: ' + part.error.code, ctx);
}
