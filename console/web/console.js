/* console.js: what every page of the console shares: building elements (all text goes
   in with textContent, never as HTML), fetching the JSON API, polling, the status line.
   No framework, no third-party code. */
'use strict';

const AL = {
  /* el('td', {className: 'ok'}, 'text', childNode, ...): strings become text nodes. */
  el (tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'className') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role' || key === 'scope'
               || key === 'id' || key === 'title' || key === 'type' || key === 'tabindex' || key === 'for')
        node.setAttribute(key, String(value));
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  /* A table: headers (strings), rows (arrays of cells: strings or nodes), optional row attributes. */
  table (caption, headers, rows, rowAttributes) {
    const head = AL.el('thead', {}, AL.el('tr', {}, headers.map((h) => AL.el('th', { scope: 'col' }, h))));
    const body = AL.el('tbody', {}, rows.map((cells, index) =>
      AL.el('tr', rowAttributes ? rowAttributes(index) : {}, cells.map((c) => AL.el('td', {}, c)))));
    return AL.el('table', {}, caption ? AL.el('caption', { className: 'muted' }, caption) : null, head, body);
  },

  async json (path) {
    const response = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) throw new Error((body && body.error) || (response.status + ' ' + response.statusText));
    return body;
  },

  status (text, bad) {
    const node = document.getElementById('status');
    node.textContent = text;
    node.className = bad ? 'bad' : 'muted';
  },

  /* Run fn now and every ms milliseconds after it settles; errors go to the status line. */
  poll (fn, ms) {
    const run = async () => {
      try {
        await fn();
        AL.status('updated ' + new Date().toLocaleTimeString(), false);
      } catch (e) {
        AL.status('cannot update: ' + e.message, true);
      }
      setTimeout(run, ms);
    };
    run();
  },

  replace (id, ...nodes) {
    const target = document.getElementById(id);
    target.replaceChildren(...nodes.flat());
  },

  time (ms) {
    if (!ms) return 'never';
    return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  },

  badge (ok, yes, no) {
    return AL.el('span', { className: ok ? 'ok' : 'bad' }, ok ? yes : no);
  },
};

document.addEventListener('DOMContentLoaded', () => {
  for (const link of document.querySelectorAll('nav a')) {
    if (link.pathname === location.pathname || (location.pathname === '/' && link.pathname === '/index.html'))
      link.setAttribute('aria-current', 'page');
  }
});
