// mcpproxy dashboard: the tool review panel (tool-level trust). Each server row gets a
// "Tools" button (it says how many tools await review); it opens the server's own tool list,
// also while the server is quarantined, so that the user sees what they approve: each tool's
// approval, for a changed tool the difference between its pinned and current definition
// field by field, an approve button per tool and for all, and the per-tool switch
// (disabled_tools). The panel follows the event stream: servers.changed and tools.indexed
// of its server reload it.
//
// Everything from the daemon is shown through textContent (see app.js): tool names and
// descriptions come from upstream servers.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const dash = window.mcpproxy;
  if (!dash) return;
  const { api, notice, el } = dash;

  const st = { server: '', seq: 0, quarantined: false };

  const path = (server, rest) => '/api/v1/servers/' + encodeURIComponent(server) + rest;

  // ---- the row button -----------------------------------------------------------------

  document.addEventListener('mcpproxy:row', (ev) => {
    const { server, row, actions } = ev.detail;
    let b = actions.querySelector('button[data-action="tools"]');
    if (!b) {
      b = el('button', 'act review', 'Tools');
      b.type = 'button';
      b.dataset.action = 'tools';
      b.addEventListener('click', () => open(row.dataset.server));
      actions.appendChild(b);
    }
    const due = server.tools_awaiting_review || 0;
    b.textContent = due > 0 ? 'Tools (' + due + ' to review)' : 'Tools';
    b.classList.toggle('due', due > 0);
    row.dataset.awaiting = String(due);
  });

  document.addEventListener('mcpproxy:event', (ev) => {
    const { name, data } = ev.detail;
    if (!st.server || !data) return;
    const about = name === 'servers.changed' ? data.server && data.server.name : data.server;
    if (about !== st.server) return;
    if (name === 'servers.changed' && data.reason === 'removed') {
      close();
      return;
    }
    if (name === 'servers.changed' || name === 'tools.indexed') load();
  });

  // ---- the panel ----------------------------------------------------------------------

  function open(server) {
    st.server = server;
    $('review-title').textContent = 'Tools of ' + server;
    $('tool-review').hidden = false;
    load();
    $('tool-review').scrollIntoView({ block: 'nearest' });
  }

  function close() {
    st.server = '';
    $('tool-review').hidden = true;
    $('review-tools').tBodies[0].replaceChildren();
  }

  // load fetches the server's tools; an answer to an older request than the newest is
  // dropped, so that a slow one never undoes a newer one.
  async function load() {
    const server = st.server;
    const seq = ++st.seq;
    let data;
    try {
      data = await api('GET', path(server, '/tools'));
    } catch (err) {
      if (err.message !== 'unauthorized' && seq === st.seq) notice('tools of ' + server + ': ' + err.message);
      return;
    }
    if (seq !== st.seq || server !== st.server) return;
    render(data);
  }

  function render(data) {
    const tools = Array.isArray(data.tools) ? data.tools : [];
    st.quarantined = !!data.quarantined;
    const panel = $('tool-review');
    panel.dataset.server = data.server || st.server;
    panel.dataset.quarantined = String(st.quarantined);
    $('review-state').textContent = st.quarantined
      ? 'Quarantined: the whole server awaits review. Approving it approves all ' + tools.length + ' tools as they are now.'
      : (data.awaiting_review || 0) + ' of ' + tools.length + ' tools await review';
    $('review-approve-server').hidden = !st.quarantined;
    $('review-approve-all').hidden = st.quarantined || !(data.awaiting_review > 0);
    $('review-empty').hidden = tools.length > 0;
    const body = $('review-tools').tBodies[0];
    const rows = [];
    for (const t of tools) {
      rows.push(toolRow(t));
      if (t.approval === 'changed') rows.push(diffRow(t));
    }
    body.replaceChildren(...rows);
  }

  // rawName is the tool's name as the server lists it.
  function rawName(t) {
    const prefix = (t.server || st.server) + ':';
    return typeof t.name === 'string' && t.name.startsWith(prefix) ? t.name.slice(prefix.length) : String(t.name);
  }

  function toolRow(t) {
    const name = rawName(t);
    const tr = document.createElement('tr');
    tr.dataset.tool = name;
    tr.dataset.approval = String(t.approval || '');
    tr.dataset.disabled = String(!!t.disabled);
    const badge = el('span', 'badge approval-' + (['approved', 'changed', 'pending'].includes(t.approval) ? t.approval : 'unknown'), String(t.approval || ''));
    const approvalCell = el('td', 'approval');
    approvalCell.appendChild(badge);
    const sw = document.createElement('input');
    sw.type = 'checkbox';
    sw.checked = !t.disabled;
    sw.dataset.action = 'switch';
    sw.setAttribute('aria-label', 'Enable ' + name);
    sw.addEventListener('change', () => setEnabled(name, sw.checked, sw));
    const switchCell = el('td', 'switch');
    switchCell.appendChild(sw);
    const actions = el('td', 'actions');
    if (!st.quarantined && t.approval !== 'approved') {
      const b = el('button', 'act', t.approval === 'changed' ? 'Approve change' : 'Approve');
      b.type = 'button';
      b.dataset.action = 'approve-tool';
      b.addEventListener('click', () => approve({ tools: [name] }, b));
      actions.appendChild(b);
    }
    tr.append(el('td', 'tool-name', name), approvalCell, el('td', 'tool-desc', String(t.description || '')), switchCell, actions);
    return tr;
  }

  // diffRow shows, for a changed tool, each definition field that differs: the pinned text
  // struck out above the current one.
  function diffRow(t) {
    const tr = document.createElement('tr');
    tr.className = 'review-diff';
    tr.dataset.diffOf = rawName(t);
    const td = el('td');
    td.colSpan = 5;
    const prev = (t.previous && typeof t.previous === 'object') ? t.previous : {};
    const cur = (t.definition && typeof t.definition === 'object') ? t.definition : {};
    const keys = Array.from(new Set([...Object.keys(prev), ...Object.keys(cur)])).sort();
    for (const k of keys) {
      const a = show(prev[k]);
      const b = show(cur[k]);
      if (a === b) continue;
      td.append(el('div', 'diff-field', k), el('div', 'diff-old', a), el('div', 'diff-new', b));
    }
    tr.appendChild(td);
    return tr;
  }

  function show(v) {
    if (v === undefined) return '(none)';
    if (typeof v === 'string') return v;
    return JSON.stringify(v, null, 2);
  }

  async function approve(body, btn) {
    if (btn) btn.disabled = true;
    try {
      render(await api('POST', path(st.server, '/tools/approve'), body));
      notice('');
    } catch (err) {
      if (err.message !== 'unauthorized') notice('approve: ' + err.message);
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  async function setEnabled(name, on, sw) {
    sw.disabled = true;
    try {
      render(await api('POST', path(st.server, '/tools/' + encodeURIComponent(name) + (on ? '/enable' : '/disable'))));
      notice('');
    } catch (err) {
      sw.checked = !on;
      sw.disabled = false;
      if (err.message !== 'unauthorized') notice((on ? 'enable ' : 'disable ') + name + ': ' + err.message);
    }
  }

  async function approveServer(btn) {
    btn.disabled = true;
    try {
      await api('POST', path(st.server, '/quarantine'), { quarantined: false });
      notice('');
      await load();
    } catch (err) {
      if (err.message !== 'unauthorized') notice('approve ' + st.server + ': ' + err.message);
    } finally {
      btn.disabled = false;
    }
  }

  $('review-close').addEventListener('click', close);
  $('review-approve-all').addEventListener('click', (ev) => approve({ all: true }, ev.currentTarget));
  $('review-approve-server').addEventListener('click', (ev) => approveServer(ev.currentTarget));
})();
