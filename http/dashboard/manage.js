// mcpproxy dashboard, managing servers: the add/edit form (stdio or URL, env, headers),
// import of another client's config, a server's detail view (its tools, a live log, edit,
// remove with confirmation), the sessions list, and the config with validate and apply.
//
// It is a panel of its own beside app.js (which owns the key, the servers table and the
// event stream) and talks to the same REST API with the key app.js keeps in localStorage.
// A server's detail opens from its name in the servers table. No UI library: the panels are
// a form and a few lists, and the h() helper below keeps building them as short as a
// template would, without vendoring one (and a second idiom beside app.js). As app.js, it
// builds the DOM with textContent only: every string from the daemon stays text.
'use strict';

(() => {
  const KEY_STORE = 'mcpproxy.apikey';
  const MAX_LOG_LINES = 1000;
  const $ = (id) => document.getElementById(id);

  function key() {
    try { return window.localStorage.getItem(KEY_STORE) || ''; } catch (_) { return ''; }
  }

  // h builds an element: h('td', {className: 'x', dataset: {a: 'b'}}, 'text', child, ...).
  function h(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'click') e.addEventListener('click', v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  class APIError extends Error {
    constructor(message, fields) {
      super(message);
      this.fields = fields || [];
    }
  }

  // api calls the REST API; a body that is a string is sent as it is (an imported file).
  async function api(method, path, body, type) {
    const opts = { method, headers: { 'X-API-Key': key() }, cache: 'no-store' };
    if (typeof body === 'string') {
      opts.headers['Content-Type'] = type || 'text/plain';
      opts.body = body;
    } else if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (_) {
      throw new APIError('daemon unreachable');
    }
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) {
      const msg = (data && typeof data.error === 'string' && data.error) || ('HTTP ' + resp.status);
      throw new APIError(msg, data && Array.isArray(data.errors) ? data.errors : []);
    }
    return data;
  }

  function showErrors(box, err) {
    box.replaceChildren();
    if (!err) return;
    box.append(h('p', { className: 'error' }, err.message));
    if (err.fields && err.fields.length > 0) {
      box.append(h('ul', { className: 'field-errors' },
        ...err.fields.map((f) => h('li', {}, h('code', {}, f.field), ': ' + f.message))));
    }
  }

  // ---- the form: add or edit ------------------------------------------------------------

  // pairs parses "K=V" lines into an object; a line without '=' is an error.
  function pairs(text, what) {
    const out = {};
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      const i = line.indexOf('=');
      if (i <= 0) throw new APIError(`${what}: "${line}" is not NAME=VALUE`);
      out[line.slice(0, i).trim()] = line.slice(i + 1);
    }
    return out;
  }

  function unpairs(obj) {
    return Object.entries(obj || {}).map(([k, v]) => `${k}=${v}`).join('\n');
  }

  const form = { editing: '', old: null };

  function setKind(kind) {
    $('srv-kind-stdio').checked = kind === 'stdio';
    $('srv-kind-url').checked = kind !== 'stdio';
    for (const e of document.querySelectorAll('#server-form .only-stdio')) e.hidden = kind !== 'stdio';
    for (const e of document.querySelectorAll('#server-form .only-url')) e.hidden = kind === 'stdio';
  }

  function resetForm() {
    form.editing = '';
    form.old = null;
    $('server-form').reset();
    $('srv-name').disabled = false;
    $('form-title').textContent = 'Add a server';
    $('srv-submit').textContent = 'Add server';
    $('srv-cancel').hidden = true;
    $('srv-approve-row').hidden = false;
    setKind('stdio');
    showErrors($('form-errors'), null);
  }

  // entryFromForm is the server entry the form describes.
  function entryFromForm() {
    const stdio = $('srv-kind-stdio').checked;
    const e = { name: $('srv-name').value.trim() };
    if (stdio) {
      e.command = $('srv-command').value.trim();
      e.args = $('srv-args').value.split('\n').map((a) => a.trim()).filter((a) => a !== '');
      e.env = pairs($('srv-env').value, 'env');
    } else {
      e.url = $('srv-url').value.trim();
      e.protocol = $('srv-protocol').value;
      e.headers = pairs($('srv-headers').value, 'headers');
    }
    return e;
  }

  // patchFrom turns the edited entry into a merge patch of the old one: fields of the other
  // kind and env or header names no longer listed are removed (null).
  function patchFrom(old, e) {
    const patch = Object.assign({}, e);
    delete patch.name;
    const drop = (field, now) => {
      const gone = {};
      for (const k of Object.keys((old && old[field]) || {})) if (!(k in (now || {}))) gone[k] = null;
      return Object.assign(gone, now || {});
    };
    if ('command' in e) {
      patch.env = drop('env', e.env);
      patch.url = null;
      patch.headers = null;
      patch.protocol = null;
    } else {
      patch.headers = drop('headers', e.headers);
      patch.command = null;
      patch.args = null;
      patch.env = null;
    }
    return patch;
  }

  async function submitForm(ev) {
    ev.preventDefault();
    const box = $('form-errors');
    showErrors(box, null);
    try {
      const e = entryFromForm();
      let res;
      if (form.editing) {
        res = await api('PATCH', '/api/v1/servers/' + encodeURIComponent(form.editing), patchFrom(form.old, e));
        $('form-result').textContent = `Updated ${res.server.name}.`;
        const name = form.editing;
        resetForm();
        openDetail(name);
      } else {
        if ($('srv-approve').checked) e.quarantined = false;
        res = await api('POST', '/api/v1/servers', e);
        const q = res.server.quarantined ? ' It is quarantined: review its tools, then approve it.' : '';
        $('form-result').textContent = `Added ${res.server.name}.${q}`;
        resetForm();
        openDetail(res.server.name);
      }
    } catch (err) {
      showErrors(box, err);
    }
  }

  // editServer fills the form with a server's entry as the config shows it (secret values
  // as ********, which the patch sends back to mean "keep").
  async function editServer(name) {
    try {
      const data = await api('GET', '/api/v1/config');
      const entry = (data.config.mcpServers || []).find((s) => s.name === name);
      if (!entry) throw new APIError(`server ${name} is not in the config`);
      resetForm();
      form.editing = name;
      form.old = entry;
      $('form-title').textContent = `Edit ${name}`;
      $('srv-submit').textContent = 'Save changes';
      $('srv-cancel').hidden = false;
      $('srv-approve-row').hidden = true;
      $('srv-name').value = name;
      $('srv-name').disabled = true;
      const stdio = !!entry.command;
      setKind(stdio ? 'stdio' : 'url');
      $('srv-command').value = entry.command || '';
      $('srv-args').value = (entry.args || []).join('\n');
      $('srv-env').value = unpairs(entry.env);
      $('srv-url').value = entry.url || '';
      $('srv-protocol').value = entry.protocol === 'sse' ? 'sse' : 'http';
      $('srv-headers').value = unpairs(entry.headers);
      $('server-form').scrollIntoView({ block: 'nearest' });
    } catch (err) {
      showErrors($('form-errors'), err);
    }
  }

  // ---- import ---------------------------------------------------------------------------

  async function submitImport(ev) {
    ev.preventDefault();
    const out = $('import-result');
    out.replaceChildren();
    let text = $('import-text').value;
    const file = $('import-file').files[0];
    if (file) text = await file.text();
    if (!text.trim()) {
      out.append(h('p', { className: 'error' }, 'Paste a config file or choose one.'));
      return;
    }
    try {
      const res = await api('POST', '/api/v1/servers/import?format=' + encodeURIComponent($('import-format').value), text);
      out.append(
        h('p', {}, `Read as ${res.format}.`),
        h('p', { className: 'import-added' }, 'Added (quarantined): ' + (res.added.join(', ') || 'none')),
        h('p', { className: 'import-skipped' }, 'Skipped, name in use: ' + (res.skipped.join(', ') || 'none')));
      if (res.errors.length) {
        out.append(h('p', {}, 'Could not import:'), h('ul', { className: 'import-errors' },
          ...res.errors.map((p) => h('li', {}, h('b', {}, p.server), p.field ? ' ' : '', p.field ? h('code', {}, p.field) : null, ': ' + p.message))));
      }
    } catch (err) {
      showErrors(out, err);
    }
  }

  // ---- server detail: tools, live log, edit, remove --------------------------------------

  const detail = { name: '', es: null, lines: 0 };

  function closeLog() {
    if (detail.es) {
      detail.es.close();
      detail.es = null;
    }
  }

  function closeDetail() {
    closeLog();
    detail.name = '';
    $('detail').hidden = true;
  }

  function addLogLine(line) {
    const box = $('detail-log');
    const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    const t = new Date(line.time);
    box.append(h('div', { className: 'log-line log-' + line.stream, dataset: { stream: line.stream } },
      h('span', { className: 'log-time' }, t.toLocaleTimeString()), ' ',
      h('span', { className: 'log-stream' }, line.stream), ' ', line.text));
    detail.lines++;
    while (detail.lines > MAX_LOG_LINES && box.firstChild) {
      box.firstChild.remove();
      detail.lines--;
    }
    if (atEnd) box.scrollTop = box.scrollHeight;
  }

  function followLog(name) {
    closeLog();
    $('detail-log').replaceChildren();
    detail.lines = 0;
    // EventSource cannot set headers: the key goes in ?apikey= (the daemon keeps it out of
    // its logs), as for /events.
    const es = new EventSource(`/api/v1/servers/${encodeURIComponent(name)}/logs?follow=true&tail=200&apikey=${encodeURIComponent(key())}`);
    detail.es = es;
    $('detail-log-state').textContent = 'connecting';
    es.addEventListener('open', () => { $('detail-log-state').textContent = 'live'; });
    es.addEventListener('log', (ev) => {
      try { addLogLine(JSON.parse(ev.data)); } catch (_) { /* not a line */ }
    });
    es.addEventListener('end', () => {
      closeLog();
      $('detail-log-state').textContent = 'ended: the server was removed';
    });
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) $('detail-log-state').textContent = 'closed';
      else $('detail-log-state').textContent = 'reconnecting';
    });
  }

  async function openDetail(name) {
    detail.name = name;
    $('detail').hidden = false;
    $('detail-name').textContent = name;
    $('detail-confirm').hidden = true;
    showErrors($('detail-errors'), null);
    followLog(name);
    await refreshDetail();
    $('detail').scrollIntoView({ block: 'nearest' });
  }

  async function refreshDetail() {
    const name = detail.name;
    if (!name) return;
    try {
      const [srv, tools] = await Promise.all([
        api('GET', '/api/v1/servers/' + encodeURIComponent(name)),
        api('GET', '/api/v1/servers/' + encodeURIComponent(name) + '/tools'),
      ]);
      if (detail.name !== name) return;
      const s = srv.server;
      const facts = [
        ['state', s.state], ['protocol', s.protocol], [s.url ? 'url' : 'command', s.url || [s.command].concat(s.args || []).join(' ')],
        ['enabled', s.enabled ? 'yes' : 'no'], ['quarantined', s.quarantined ? 'yes' : 'no'], ['last error', s.last_error || '-'],
      ];
      $('detail-facts').replaceChildren(...facts.map(([k, v]) => h('div', { dataset: { fact: k } }, h('dt', {}, k), h('dd', {}, v))));
      $('detail-tools').replaceChildren(...tools.tools.map((t) =>
        h('tr', { dataset: { tool: t.name } }, h('td', { className: 'name' }, t.name), h('td', {}, t.description || ''))));
      $('detail-tools-count').textContent = `${tools.tools.length} tools` + (tools.quarantined ? ' (quarantined: not offered to agents)' : '');
    } catch (err) {
      showErrors($('detail-errors'), err);
    }
  }

  async function removeServer() {
    const name = detail.name;
    try {
      await api('DELETE', '/api/v1/servers/' + encodeURIComponent(name));
      closeDetail();
      $('form-result').textContent = `Removed ${name}.`;
    } catch (err) {
      showErrors($('detail-errors'), err);
    }
    $('detail-confirm').hidden = true;
  }

  // ---- sessions -------------------------------------------------------------------------

  async function loadSessions() {
    try {
      const data = await api('GET', '/api/v1/sessions');
      const rows = data.sessions.map((s) => h('tr', { dataset: { session: s.id } },
        h('td', { className: 'mono' }, s.id.slice(0, 12)), h('td', {}, s.endpoint || '/mcp'),
        h('td', {}, [s.client_name, s.client_version].filter(Boolean).join(' ') || '-'),
        h('td', {}, s.status || ''), h('td', { className: 'num' }, String(s.tool_calls || 0)),
        h('td', {}, s.last_activity ? new Date(s.last_activity).toLocaleString() : '-')));
      $('sessions-body').replaceChildren(...rows);
      $('sessions-empty').hidden = rows.length > 0;
    } catch (err) {
      showErrors($('sessions-errors'), err);
    }
  }

  // ---- config: view, validate, apply ----------------------------------------------------

  async function loadConfig() {
    const box = $('config-result');
    box.replaceChildren();
    try {
      const data = await api('GET', '/api/v1/config');
      $('config-text').value = JSON.stringify(data.config, null, 2);
      $('config-path').textContent = data.path || '';
    } catch (err) {
      showErrors(box, err);
    }
  }

  const configBody = () => $('config-text').value;

  async function validateConfig() {
    const box = $('config-result');
    box.replaceChildren();
    try {
      const res = await api('POST', '/api/v1/config/validate', configBody(), 'application/json');
      if (res.valid) {
        box.append(h('p', { className: 'ok' }, 'The config is valid.'));
      } else {
        showErrors(box, new APIError(`The config is not valid (${res.errors.length} problems).`, res.errors));
      }
    } catch (err) {
      showErrors(box, err);
    }
  }

  async function applyConfig() {
    const box = $('config-result');
    box.replaceChildren();
    try {
      const res = await api('POST', '/api/v1/config/apply', configBody(), 'application/json');
      const part = (label, list) => `${label}: ${list.length ? list.join(', ') : 'none'}`;
      box.append(h('p', { className: 'ok' }, 'Applied. ' + [part('added', res.added), part('removed', res.removed), part('changed', res.changed)].join('; ')));
      if (res.restart_required.length) box.append(h('p', {}, 'Needs a daemon restart: ' + res.restart_required.join(', ')));
    } catch (err) {
      showErrors(box, err);
    }
  }

  // ---- wiring ---------------------------------------------------------------------------

  function init() {
    resetForm();
    $('srv-kind-stdio').addEventListener('change', () => setKind('stdio'));
    $('srv-kind-url').addEventListener('change', () => setKind('url'));
    $('server-form').addEventListener('submit', submitForm);
    $('srv-cancel').addEventListener('click', resetForm);
    $('import-form').addEventListener('submit', submitImport);
    $('detail-close').addEventListener('click', closeDetail);
    $('detail-edit').addEventListener('click', () => editServer(detail.name));
    $('detail-remove').addEventListener('click', () => {
      $('detail-confirm-name').textContent = detail.name;
      $('detail-confirm').hidden = false;
    });
    $('detail-confirm-yes').addEventListener('click', removeServer);
    $('detail-confirm-no').addEventListener('click', () => { $('detail-confirm').hidden = true; });
    $('detail-refresh').addEventListener('click', refreshDetail);
    $('sessions-refresh').addEventListener('click', loadSessions);
    $('config-load').addEventListener('click', loadConfig);
    $('config-validate').addEventListener('click', validateConfig);
    $('config-apply').addEventListener('click', applyConfig);
    // A server's name in the servers table (app.js's) opens its detail.
    $('servers').addEventListener('click', (ev) => {
      const cell = ev.target.closest('td.name');
      const row = cell && cell.closest('tr[data-server]');
      if (row) openDetail(row.dataset.server);
    });
  }

  init();
})();
