/* approvals.js: each pending production request with everything `airlock approve`
   shows. What airlock states (facts, window, freeze, quorum) is kept apart from what an
   agent wrote (unverified, shown as text in its own marked box). No approve button. */
'use strict';

function factsTable (facts, context, so_far) {
  const rows = [];
  for (const [key, value] of Object.entries(facts)) rows.push([key, AL.el('code', {}, String(value))]);
  for (const key of ['window', 'freeze', 'quorum', 'soak', 'scan'])
    rows.push([key, context[key] === null || context[key] === undefined ? 'unknown' : context[key]]);
  rows.push(['signatures so far', so_far.length === 0 ? 'none yet'
    : so_far.map((s) => s.decision + ' by ' + s.sender + ' (' + s.key_id + ')' + (s.signature_verifies ? '' : ' SIGNATURE DOES NOT VERIFY')).join('; ')]);
  const table = AL.table(null, ['Fact (stated by airlock)', 'Value'], rows);
  table.className = 'facts';
  return table;
}

function agentText (text) {
  const list = AL.el('dl', {});
  for (const [key, value] of Object.entries(text)) {
    if (key === 'checklist') continue;
    list.append(AL.el('dt', {}, key), AL.el('dd', {}, AL.el('pre', { className: 'agent-value', 'data-key': key }, String(value))));
  }
  const checklist = (text.checklist || []).map((c) =>
    AL.el('li', {}, (c.checked ? '[x] ' : '[ ] ') + c.section + ': ', AL.el('span', { className: 'agent-value' }, c.text)));
  return AL.el('section', { className: 'agent-text', 'aria-label': 'written by an agent, unverified' },
    AL.el('h3', {}, 'Written by an agent: unverified, shown as plain text'),
    list, checklist.length ? AL.el('ul', {}, checklist) : null);
}

function command (text) {
  const button = AL.el('button', { type: 'button' }, 'Copy');
  button.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(text); button.textContent = 'Copied'; }
    catch (e) { button.textContent = 'Select and copy by hand'; }
  });
  return AL.el('div', { className: 'command' }, 'Approve in a terminal, with your own key: ',
    AL.el('code', { className: 'approve-command' }, text), button);
}

AL.poll(async () => {
  const data = await AL.json('/api/approvals');
  AL.replace('approvals', data.approvals.length === 0 ? AL.el('p', {}, 'no production request awaits approval')
    : data.approvals.map((a) => AL.el('article', { className: 'card', 'data-request': a.facts.request_id },
      AL.el('h2', {}, a.facts.request_id),
      factsTable(a.facts, a.context || {}, a.signatures_so_far || []),
      agentText(a.agent_text), command(a.approve_with))));
}, 2000);
