/* agents.js: who is connected to the broker, last heartbeat, restarts and last error. */
'use strict';

AL.poll(async () => {
  const data = await AL.json('/api/agents');
  AL.replace('agents', data.agents.length === 0 ? AL.el('p', {}, 'no agent connected')
    : AL.table(null, ['Identity', 'Role', 'Alive', 'Last heartbeat'],
      data.agents.map((a) => [a.identity, a.role, AL.badge(a.alive, 'yes', 'no'),
        a.age_seconds === null ? 'never' : a.age_seconds.toFixed(1) + ' s ago']),
      (i) => ({ 'data-identity': data.agents[i].identity })));
  AL.replace('processes', AL.table(null, ['Process', 'Connected', 'Restarts', 'Last line that matters in its log (last error, else last line)'],
    data.processes.map((p) => [p.name, AL.badge(p.connected, 'yes', 'no'),
      p.restarts === null ? 'not started by airlock up' : String(p.restarts),
      p.last_line === null ? AL.el('span', { className: 'muted' }, 'none') : AL.el('code', {}, p.last_line)]),
    (i) => ({ 'data-process': data.processes[i].name })));
}, 2000);
