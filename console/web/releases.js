/* releases.js: each release's state machine, its history and its deploy journal,
   refreshed every second (no reload). */
'use strict';

const PATH = ['PREPARE', 'STAGING', 'VALIDATE', 'APPROVE', 'DEPLOY', 'MONITOR', 'DONE'];

function states (release) {
  const seen = new Set((release.history || []).map((h) => h.state));
  const list = AL.el('ol', { className: 'states', 'aria-label': 'state machine' });
  const terminal = release.state === 'ROLLED_BACK' || release.state === 'FAILED';
  for (const state of PATH) {
    let cls = seen.has(state) ? 'done' : '';
    if (state === release.state) cls = 'current';
    list.appendChild(AL.el('li', { className: cls, 'aria-current': state === release.state ? 'step' : null }, state));
  }
  if (terminal)
    list.appendChild(AL.el('li', { className: 'failed current', 'aria-current': 'step' }, release.state));
  return list;
}

/* The last DeployProgress seen on the bus: its step and outcome, and a bar only when
   the message carries a percent (a rollout's share); 0 is "no percent", not 0% done. */
function progress (label, live) {
  if (!live) return null;
  const percent = Math.max(0, Math.min(100, live.percent || 0));
  return AL.el('p', { 'data-progress': label },
    label + ': ' + live.step + ' ' + live.outcome + ' ',
    percent > 0 ? [AL.el('progress', { max: 100, value: percent, 'aria-label': label + ' progress ' + percent + '%' }),
      ' ' + percent + '% '] : null,
    live.detail ? AL.el('span', { className: 'muted' }, live.detail) : null);
}

function journal (label, entries) {
  if (!entries || entries.length === 0) return null;
  return AL.el('div', {}, AL.el('h3', {}, label + ' deployment journal'),
    AL.table(null, ['#', 'Step', 'Phase', 'Status', 'Detail'],
      entries.map((e) => [String(e.sequence), e.step, e.phase, e.status, e.detail || ''])));
}

function card (item) {
  const r = item.release;
  const awaiting = item.awaiting_approval
    ? AL.el('p', { className: 'warn' }, 'awaiting approval: ', AL.el('code', {}, 'airlock approve ' + r.release_id + '-prod'))
    : null;
  return AL.el('article', { className: 'card', 'data-release': r.release_id, 'data-state': r.state },
    AL.el('h2', {}, r.release_id),
    AL.el('p', {}, r.service + ' ' + r.version + ' (' + (r.type || 'standard') + '), state ',
      AL.el('strong', { className: r.state === 'DONE' ? 'ok' : (r.state === 'FAILED' || r.state === 'ROLLED_BACK') ? 'bad' : '' }, r.state),
      r.detail ? ': ' + r.detail : ''),
    states(r), awaiting,
    progress('staging', item.progress && item.progress.staging),
    progress('production', item.progress && item.progress.production),
    AL.el('h3', {}, 'History'),
    AL.table(null, ['Time', 'State', 'Detail'], (r.history || []).map((h) => [AL.time(h.time_ms), h.state, h.detail || ''])),
    journal('staging', item.events && item.events.staging),
    journal('production', item.events && item.events.production),
    item.error ? AL.el('p', { className: 'bad' }, item.error) : null);
}

AL.poll(async () => {
  const data = await AL.json('/api/releases');
  AL.replace('releases', data.releases.length === 0 ? AL.el('p', {}, 'no releases in the pipeline')
    : data.releases.map(card));
}, 1000);
