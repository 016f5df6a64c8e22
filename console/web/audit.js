/* audit.js: the audit log with filters, a page at a time (older rows: before=SEQ), a
   row's hash and chain link, the verification against the latest signed checkpoint,
   and seed 001's deployment history table. audit.html?limit=N sets the page size. */
'use strict';

const filters = document.getElementById('filters');
const pageSize = new URLSearchParams(window.location.search).get('limit');
let before = null;        // the page shown: rows older than this sequence (null: the newest)
let nextBefore = null;    // where the page after it starts (null: no older match)

function query () {
  const params = new URLSearchParams();
  for (const name of ['type', 'sender', 'release', 'q']) {
    const value = document.getElementById('f-' + name).value.trim();
    if (value) params.set(name, value);
  }
  if (document.getElementById('f-denied').checked) params.set('denied', '1');
  if (pageSize) params.set('limit', pageSize);
  if (before !== null) params.set('before', String(before));
  return params.toString();
}

async function showRow (sequence) {
  const row = await AL.json('/api/audit_row?seq=' + encodeURIComponent(sequence));
  const entries = [['sequence', String(row.sequence)], ['time', row.time], ['sender', row.sender + ' (' + row.role + ')'],
    ['type', row.type], ['message id', row.message_id], ['deployment', row.deployment_id || '-'],
    ['environment', row.environment || '-'], ['decision', row.decision], ['reason', row.reason || '-'],
    ['hash', AL.el('code', {}, row.hash)],
    ['previous row hash', row.previous_hash === null ? 'unknown' : AL.el('code', {}, row.previous_hash)],
    ['chain link', AL.badge(row.link_holds, 'holds: hash = SHA-256(previous hash || row)', 'BROKEN: the hash does not follow from the previous row')],
    ['envelope', row.envelope_bytes + ' bytes']];
  AL.replace('detail', AL.el('h3', {}, 'Row ' + row.sequence),
    AL.table(null, ['Field', 'Value'], entries));
  document.getElementById('detail').setAttribute('data-sequence', String(row.sequence));
}

let latest = 0;   // the newest events() call: an older answer never replaces a newer filter's

async function events () {
  const mine = ++latest;
  const data = await AL.json('/api/audit?' + query());
  if (mine !== latest) return;
  nextBefore = data.next_before;
  document.getElementById('older').hidden = nextBefore === null;
  document.getElementById('newest').hidden = before === null;
  const table = AL.table(data.matched + ' of ' + data.rows_in_log + ' rows match; newest first'
    + (before === null ? '' : ', older than row ' + before),
    ['#', 'Time', 'Sender', 'Type', 'Deployment', 'Env', 'Decision', 'Reason'],
    data.rows.map((r) => [String(r.sequence), r.time, r.sender, r.type, r.deployment_id, r.environment,
      AL.el('span', { className: r.decision === 'denied' ? 'bad' : 'ok' }, r.decision), r.reason]),
    (i) => ({ className: 'selectable' + (data.rows[i].decision === 'denied' ? ' denied' : ''), tabindex: 0,
              'data-sequence': data.rows[i].sequence, 'data-type': data.rows[i].type, 'data-decision': data.rows[i].decision }));
  for (const tr of table.querySelectorAll('tbody tr')) {
    const open = () => showRow(tr.getAttribute('data-sequence')).catch((e) => AL.status(e.message, true));
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  }
  AL.replace('events', table);
}

async function verify () {
  const v = await AL.json('/api/verify');
  AL.replace('verify', AL.el('p', { 'data-verify': v.result },
    AL.badge(v.ok, 'OK', v.result), ' ' + v.rows + ' rows verified; head ', AL.el('code', {}, v.head_hash), '. ',
    v.checkpoint_checked ? 'Signed checkpoint of ' + v.checkpoint_rows + ' rows verifies (key ' + v.checkpoint_key
      + (v.key_pinned ? ', the broker\'s key from keys/checkpoint.pub).' : ', the checkpoint\'s own: not pinned).')
      : (v.checkpoint ? 'Checkpoint ' + v.checkpoint + ': ' + v.reason : 'No signed checkpoint yet: the chain alone was verified.'),
    v.ok ? '' : ' ' + v.reason));
}

async function history () {
  const h = await AL.json('/api/history');
  AL.replace('history', h.history.length === 0 ? AL.el('p', {}, 'no deployments in the log')
    : AL.table(null, ['Date', 'Deployment', 'Service', 'Version', 'Type', 'Status', 'Rollback', 'Duration', 'Notes'],
      h.history.map((r) => [r.date, r.deployment, r.service, r.version, r.type, r.status, r.rollback,
        r.duration_ms ? (r.duration_ms / 1000).toFixed(1) + ' s' : '-', r.notes])));
}

function show (page) {
  before = page;
  events().catch((e) => AL.status(e.message, true));
}

filters.addEventListener('submit', (event) => { event.preventDefault(); show(null); });
document.getElementById('older').addEventListener('click', () => show(nextBefore));
document.getElementById('newest').addEventListener('click', () => show(null));
AL.poll(async () => { await Promise.all([events(), verify(), history()]); }, 3000);
