/* soak.js: live charts of a service's soak signals per version (inline SVG drawn here),
   fed by the server-sent event stream /api/stream. Every sample arrives judged by the
   monitor's rules on the server (value, limit and status of each rule, the baseline):
   this page draws what it is told and judges nothing itself. */
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const W = 560, H = 200, PAD = 42;
const COLORS = ['#0b4f9c', '#b35900', '#5b2a86', '#14632c', '#8a1c1c'];
const SIGNALS = [
  { key: 'rps', title: 'Traffic (requests/s)', rule: null },
  { key: 'error_percent', title: 'Error rate (%)', rule: 'error_rate_increase', baseline: 'error_percent' },
  { key: 'p50_ms', title: 'Latency p50 (ms)', rule: null },
  { key: 'p99_ms', title: 'Latency p99 (ms)', rule: 'latency_p99_factor', baseline: 'p99_ms' },
  { key: 'cpu_percent', title: 'CPU (%)', rule: 'cpu_percent' },
  { key: 'memory_percent', title: 'Memory (%)', rule: 'memory_percent' },
];

const streams = new Map();   // "env/service" -> {samples: [], markers: []}
let selected = null;
let picked = false;          // the user chose a stream: keep it
let rules = null;
let dirty = false;

function stream (key) {
  if (!streams.has(key)) streams.set(key, { samples: [], markers: [] });
  return streams.get(key);
}

function svg (tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function versionColor (versions, version) {
  return COLORS[versions.indexOf(version) % COLORS.length];
}

function chart (signal, data, versions) {
  const samples = data.samples;
  const t0 = samples[0].time_ms, t1 = Math.max(samples[samples.length - 1].time_ms, t0 + 1000);
  let max = 0;
  for (const s of samples) {
    if (s[signal.key] !== null) max = Math.max(max, s[signal.key]);
    const r = signal.rule && s.rules && s.rules[signal.rule];
    if (r && r.limit !== null) max = Math.max(max, r.limit);
    if (signal.baseline && s.baseline_values && s.baseline_values[signal.baseline] !== null)
      max = Math.max(max, s.baseline_values[signal.baseline]);
  }
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => PAD + (W - PAD - 8) * (t - t0) / (t1 - t0);
  const y = (v) => H - 20 - (H - 30) * v / max;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': signal.title + ' over time', 'data-signal': signal.key });
  root.appendChild(svg('title', {}, signal.title));
  root.appendChild(svg('line', { x1: PAD, y1: H - 20, x2: W - 8, y2: H - 20, stroke: '#888' }));
  root.appendChild(svg('line', { x1: PAD, y1: 10, x2: PAD, y2: H - 20, stroke: '#888' }));
  root.appendChild(svg('text', { x: 2, y: 16, 'font-size': 11, fill: '#333' }, max.toFixed(max < 10 ? 2 : 0)));
  root.appendChild(svg('text', { x: 2, y: H - 20, 'font-size': 11, fill: '#333' }, '0'));
  root.appendChild(svg('text', { x: PAD, y: H - 4, 'font-size': 11, fill: '#333' }, new Date(t0).toLocaleTimeString()));
  root.appendChild(svg('text', { x: W - 90, y: H - 4, 'font-size': 11, fill: '#333' }, new Date(t1).toLocaleTimeString()));
  // Each run of baseline samples: a shaded band.
  for (let i = 0; i < samples.length; i++) {
    if (!samples[i].baseline) continue;
    let j = i;
    while (j + 1 < samples.length && samples[j + 1].baseline) j++;
    const bx0 = x(samples[i].time_ms), bx1 = x(samples[j].time_ms);
    root.appendChild(svg('rect', { x: bx0, y: 10, width: Math.max(2, bx1 - bx0), height: H - 30, fill: '#dfe8f1', class: 'baseline-band' }));
    i = j;
  }
  // The baseline value the rules compare against, and the limit of the rule, per sample.
  const path = (points) => points.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join(' ');
  if (signal.baseline) {
    const points = samples.filter((s) => s.baseline_values && s.baseline_values[signal.baseline] !== null)
      .map((s) => [x(s.time_ms), y(s.baseline_values[signal.baseline])]);
    if (points.length) root.appendChild(svg('path', { d: path(points), fill: 'none', stroke: '#5c6b7a', 'stroke-width': 1, class: 'baseline-line' }));
  }
  if (signal.rule) {
    const points = samples.filter((s) => s.rules && s.rules[signal.rule] && s.rules[signal.rule].limit !== null)
      .map((s) => [x(s.time_ms), y(s.rules[signal.rule].limit)]);
    if (points.length) root.appendChild(svg('path', { d: path(points), fill: 'none', stroke: '#a4161a', 'stroke-dasharray': '5 4', class: 'limit-line' }));
  }
  // Checkpoints: from the first judged sample (the soak's start), as the policy sets them.
  const first = samples.find((s) => s.judged);
  if (first && rules) {
    for (const ms of rules.soak.checkpoints_ms) {
      const t = first.time_ms + ms;
      if (t > t1) continue;
      root.appendChild(svg('line', { x1: x(t), y1: 10, x2: x(t), y2: H - 20, stroke: '#14632c', 'stroke-dasharray': '2 3', class: 'checkpoint' }));
    }
  }
  // One line per version.
  for (const version of versions) {
    const points = samples.filter((s) => s.version === version && s[signal.key] !== null).map((s) => [x(s.time_ms), y(s[signal.key])]);
    if (points.length) root.appendChild(svg('path', { d: path(points), fill: 'none', stroke: versionColor(versions, version), 'stroke-width': 2, class: 'series', 'data-version': version, 'data-points': points.length }));
  }
  // Breaches and rollbacks.
  for (const m of data.markers) {
    if (m.time_ms < t0) continue;
    root.appendChild(svg('line', { x1: x(m.time_ms), y1: 10, x2: x(m.time_ms), y2: H - 20, stroke: '#a4161a', 'stroke-width': 2, class: 'marker marker-' + m.kind }));
  }
  return AL.el('figure', { className: 'chart' }, AL.el('h3', {}, signal.title), root);
}

function render () {
  if (!dirty) return;
  dirty = false;
  const keys = [...streams.keys()];
  if (!keys.length) { AL.status('waiting for soak signals…', false); return; }
  if (!picked || !streams.has(selected)) {
    // The stream with the latest sample, production first.
    const latest = (k) => { const d = streams.get(k).samples; return d.length ? d[d.length - 1].time_ms : 0; };
    const production = keys.filter((k) => k.startsWith('production/'));
    selected = (production.length ? production : keys).reduce((a, b) => (latest(b) >= latest(a) ? b : a));
  }
  const picker = AL.el('select', { id: 'pick', 'aria-label': 'service and environment' },
    keys.map((k) => AL.el('option', { value: k, selected: k === selected }, k)));
  picker.addEventListener('change', () => { selected = picker.value; picked = true; dirty = true; render(); });
  const data = streams.get(selected);
  const versions = [...new Set(data.samples.map((s) => s.version || '(all)'))];
  for (const s of data.samples) if (!s.version) s.version = '(all)';
  AL.replace('legend', AL.el('label', {}, 'Showing ', picker),
    versions.map((v) => AL.el('span', {}, AL.el('span', { className: 'swatch', style: 'background:' + versionColor(versions, v) }), 'version ' + v)),
    AL.el('span', {}, AL.el('span', { className: 'swatch', style: 'background:#dfe8f1' }), 'baseline samples'));
  const last = data.samples[data.samples.length - 1];
  AL.replace('markers', AL.el('ul', { className: 'marker-list' },
    data.markers.map((m) => AL.el('li', { className: 'breach', 'data-marker': m.kind }, AL.time(m.time_ms) + ' ' + m.kind + ': ' + m.text))));
  if (!data.samples.length) { AL.replace('charts'); return; }
  AL.replace('charts', SIGNALS.map((signal) => chart(signal, data, versions)));
  AL.status(data.samples.length + ' samples; last #' + last.sequence + ' verdict ' + (last.verdict || 'not judged'), last.verdict === 'breach');
}

function start () {
  const source = new EventSource('/api/stream');
  source.addEventListener('soak', (event) => {
    const s = JSON.parse(event.data);
    const data = stream(s.environment + '/' + s.service);
    data.samples.push(s);
    if (data.samples.length > 2000) data.samples.shift();
    if (s.verdict === 'breach' && !data.markers.some((m) => m.kind === 'breach'))
      data.markers.push({ kind: 'breach', time_ms: s.time_ms, text: Object.entries(s.rules || {}).filter(([, r]) => r.status === 'breach').map(([k, r]) => k + ': ' + r.detail).join('; ') || 'the soak breached its rules' });
    dirty = true;
  });
  source.addEventListener('rollback', (event) => {
    const r = JSON.parse(event.data);
    stream(r.environment + '/' + r.service).markers.push({ kind: 'rollback', time_ms: r.time_ms, text: r.rule + ': ' + r.detail });
    dirty = true;
  });
  source.addEventListener('progress', (event) => {
    const p = JSON.parse(event.data);
    if (p.step !== 'rollback' || p.outcome !== 'started') return;
    stream(p.environment + '/' + p.service).markers.push({ kind: 'rollback-step', time_ms: p.time_ms, text: 'rollback of ' + p.deployment_id + ' started' });
    dirty = true;
  });
  source.onerror = () => AL.status('the signal stream is reconnecting…', true);
  setInterval(render, 500);
}

AL.json('/api/soak_rules').then((r) => { rules = r; }).catch(() => { rules = null; }).finally(start);
