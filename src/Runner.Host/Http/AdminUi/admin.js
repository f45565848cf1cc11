// The admin page: the token form, the tabs, and the throughput sampler. The sections themselves
// are in sections.js; every data call goes through api.js with the bearer token.

import { Refused, get, setToken, whenRefused } from './api.js';
import { el, note, show } from './dom.js';
import { Colours, drawPlot } from './plot.js';
import * as sections from './sections.js';

const $ = id => document.getElementById(id);

const Loaders = {
  partitions: sections.loadPartitions,
  instances: sections.searchInstances,
  parked: sections.loadParked,
  quarantine: sections.loadQuarantine,
  effects: sections.loadEffects,
  throughput: async () => drawThroughput(),
};

const SampleEveryMs = 1000;
const WindowMs = 120_000;
const PartitionsEveryMs = 5000;
const Series = [
  { field: 'transitions', label: 'Transitions' },
  { field: 'routed', label: 'Routed' },
  { field: 'commands_dispatched', label: 'Commands dispatched' },
  { field: 'effects_completed', label: 'Effects completed' },
];

let current = Object.hasOwn(Loaders, location.hash.slice(1)) ? location.hash.slice(1) : 'partitions';
let samples = [];
let sampler = null;
let partitionsTimer = null;

// --- Signing in and being refused ---------------------------------------------------------------

function refuse(refused) {
  stopTimers();
  $('tabs').hidden = true;
  $('main').hidden = true;
  for (const container of document.querySelectorAll('[data-clear]')) {
    container.replaceChildren();
  }
  samples = [];
  $('replica').textContent = '';
  $('auth').hidden = false;
  $('auth').dataset.status = String(refused.status);
  show($('auth'), refused.message);
}

whenRefused(refuse);

function failed(error) {
  if (error instanceof Refused) {
    return; // already shown
  }
  $('error').hidden = false;
  show($('error'), `Error: ${error.message}`);
}

async function signIn() {
  $('error').hidden = true;
  try {
    // An admin call proves the token before anything is shown.
    const first = await get('throughput');
    $('auth').hidden = true;
    $('tabs').hidden = false;
    $('main').hidden = false;
    $('replica').textContent = `replica ${first.worker}`;
    samples = [first];
    startTimers();
    await openTab(current);
  } catch (error) {
    failed(error);
  }
}

$('token-form').addEventListener('submit', event => {
  event.preventDefault();
  setToken($('token').value.trim());
  $('token').value = '';
  signIn();
});

$('forget').addEventListener('click', () => {
  setToken('');
  signIn();
});

// --- Tabs ---------------------------------------------------------------------------------------

async function openTab(name) {
  current = name;
  history.replaceState(null, '', `#${name}`);
  for (const button of document.querySelectorAll('#tabs button')) {
    button.setAttribute('aria-selected', String(button.dataset.tab === name));
  }
  for (const section of document.querySelectorAll('main > section')) {
    section.hidden = section.id !== `tab-${name}`;
  }
  await load(name);
}

async function load(name) {
  $('error').hidden = true;
  try {
    await Loaders[name]();
  } catch (error) {
    failed(error);
  }
}

for (const button of document.querySelectorAll('#tabs button')) {
  button.addEventListener('click', () => openTab(button.dataset.tab));
}
for (const button of document.querySelectorAll('button[data-refresh]')) {
  button.addEventListener('click', () => load(button.dataset.refresh));
}

$('instance-search').addEventListener('submit', event => {
  event.preventDefault();
  sections.searchInstances().catch(failed);
});

$('quarantine-filter').addEventListener('submit', event => {
  event.preventDefault();
  sections.loadQuarantine().catch(failed);
});

sections.whenFailed(failed);

sections.whenOpen(instance => {
  const form = $('instance-search');
  form.elements.saga.value = instance.saga;
  form.elements.tenant.value = instance.tenant;
  form.elements.key.value = instance.key;
  form.elements.status.value = '';
  openTab('instances')
    .then(() => sections.showInstance(instance.saga, instance.key, instance.tenant))
    .catch(failed);
});

// --- Timers: the throughput sampler, and the partitions' lag while they are shown ---------------

function startTimers() {
  stopTimers();
  sampler = setInterval(sample, SampleEveryMs);
  partitionsTimer = setInterval(() => {
    if (current === 'partitions') {
      sections.loadPartitions().catch(failed);
    }
  }, PartitionsEveryMs);
}

function stopTimers() {
  clearInterval(sampler);
  clearInterval(partitionsTimer);
  sampler = null;
  partitionsTimer = null;
}

async function sample() {
  try {
    const next = await get('throughput');
    // Behind a load balancer another replica may answer: its totals are not comparable.
    if (samples.length > 0 && samples[samples.length - 1].worker !== next.worker) {
      samples = [];
    }
    samples.push(next);
    samples = samples.filter(s => s.at_ms >= next.at_ms - WindowMs - SampleEveryMs);
    $('throughput-status').textContent = '';
    if (current === 'throughput') {
      drawThroughput();
    }
  } catch (error) {
    if (!(error instanceof Refused)) {
      $('throughput-status').textContent = `last sample failed: ${error.message}`;
    }
  }
}

/** Per-second rates between consecutive samples; a total that went down (a restart) gives no point. */
function rates(field) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].at_ms - samples[i - 1].at_ms) / 1000;
    const dv = samples[i][field] - samples[i - 1][field];
    if (dt > 0 && dv >= 0) {
      points.push({ t: samples[i].at_ms, v: dv / dt });
    }
  }
  return points;
}

function drawThroughput() {
  const canvas = $('throughput-canvas');
  const series = Series.map(s => ({ ...s, points: rates(s.field) }));
  const now = samples.length > 0 ? samples[samples.length - 1].at_ms : Date.now();
  const drawn = drawPlot(canvas, series, now, WindowMs);
  const peak = Math.max(0, ...series[0].points.map(p => p.v));
  canvas.dataset.samples = String(samples.length);
  canvas.dataset.points = String(drawn);
  canvas.dataset.peakTransitions = peak.toFixed(2);
  const last = samples[samples.length - 1];
  canvas.dataset.transitionsTotal = String(last ? last.transitions : 0);
  show($('throughput-legend'), series.map((s, i) => el('li', { class: `series-${i}`, 'data-series': s.field },
    el('span', { class: 'swatch' }), `${s.label}: ${s.points.length > 0 ? s.points[s.points.length - 1].v.toFixed(1) : '–'}/s`,
    last ? el('span', { class: 'total' }, ` (${last[s.field]} since start)`) : null)));
  show($('throughput-facts'), note('info',
    `${samples.length} sample(s), one a second, over the last ${WindowMs / 1000} s: this replica's own counts${last ? ` (${last.worker})` : ''}. Peak transitions ${peak.toFixed(1)}/s.`));
}

if (Colours.length < Series.length) {
  throw new Error('plot.js has fewer colours than series');
}

signIn();
