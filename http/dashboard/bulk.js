// mcpproxy dashboard: bulk actions on a selection of servers. Each row of the servers
// table gets a checkbox (app.js announces every row it builds with an mcpproxy:rowcreated event);
// "Select failed" checks the rows in error, backoff or needs_auth; an action posts the
// selected names to the bulk route and follows the operation it answers with
// (GET /api/v1/operations/{id}, polled) until done, then names the failed servers.
// Everything from the daemon goes into the page through textContent.
'use strict';

(() => {
  const KEY_STORE = 'mcpproxy.apikey';
  const POLL_MS = 300;
  const FAILED = ['error', 'backoff', 'needs_auth'];
  const $ = (id) => document.getElementById(id);

  function key() {
    try { return window.localStorage.getItem(KEY_STORE) || ''; } catch (_) { return ''; }
  }

  async function api(method, path, body) {
    const headers = { 'X-API-Key': key() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((data && typeof data.error === 'string' && data.error) || ('HTTP ' + resp.status));
    return data;
  }

  function boxes() {
    return Array.from(document.querySelectorAll('#servers tbody input.bulk-select'));
  }

  function selected() {
    return boxes().filter((b) => b.checked).map((b) => b.dataset.server);
  }

  function refresh() {
    const n = selected().length;
    $('bulk-count').textContent = n ? n + ' selected' : '';
    for (const b of document.querySelectorAll('button[data-sel-op]')) b.disabled = n === 0;
  }

  // addBox gives a row its checkbox once; rows built before this script ran get theirs
  // when the page has loaded (see the sweep in the DOMContentLoaded handler).
  function addBox(row, name) {
    if (row.querySelector('input.bulk-select')) return;
    const td = document.createElement('td');
    td.className = 'select';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.className = 'bulk-select';
    box.dataset.server = name;
    box.setAttribute('aria-label', 'select ' + name);
    box.addEventListener('change', refresh);
    td.appendChild(box);
    row.insertBefore(td, row.firstChild);
  }

  document.addEventListener('mcpproxy:rowcreated', (e) => addBox(e.detail.row, e.detail.name));

  function counts(op) {
    return op.ready + '/' + op.total + ' ready, ' + op.failed + ' failed, ' + op.skipped + ' skipped';
  }

  async function run(op) {
    const names = selected();
    if (!names.length) return;
    const progress = $('bulk-progress');
    const summary = $('bulk-summary');
    summary.textContent = '';
    for (const b of document.querySelectorAll('button[data-sel-op]')) b.disabled = true;
    try {
      const res = await api('POST', '/api/v1/servers/' + op, { servers: names });
      let cur;
      for (;;) {
        cur = await api('GET', '/api/v1/operations/' + encodeURIComponent(res.operation));
        progress.textContent = op + ': ' + counts(cur);
        if (cur.done) break;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      const failed = cur.servers.filter((s) => s.status === 'failed');
      summary.textContent = failed.length
        ? op + ' done: ' + failed.length + ' failed: ' + failed.map((s) => s.name + (s.error ? ' (' + s.error + ')' : '')).join(', ')
        : op + ' done: ' + counts(cur);
      summary.classList.toggle('warn', failed.length > 0);
    } catch (err) {
      summary.textContent = op + ': ' + err.message;
    } finally {
      refresh();
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    const head = document.querySelector('#servers thead tr');
    if (head) {
      const th = document.createElement('th');
      const all = document.createElement('input');
      all.type = 'checkbox';
      all.id = 'bulk-select-all';
      all.setAttribute('aria-label', 'select all');
      all.addEventListener('change', () => { for (const b of boxes()) b.checked = all.checked; refresh(); });
      th.appendChild(all);
      head.insertBefore(th, head.firstChild);
    }
    for (const row of document.querySelectorAll('#servers tbody tr[data-server]')) addBox(row, row.dataset.server);
    $('bulk-select-failed').addEventListener('click', () => {
      for (const b of boxes()) b.checked = FAILED.includes(b.closest('tr').dataset.state);
      refresh();
    });
    for (const b of document.querySelectorAll('button[data-sel-op]')) {
      b.addEventListener('click', () => run(b.dataset.selOp));
    }
    refresh();
  });
})();
