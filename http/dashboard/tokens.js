// mcpproxy dashboard, agent tokens panel: create a token (shown once), list them, revoke.
//
// It reads the API key app.js keeps in localStorage and talks to /api/v1/tokens. Like
// app.js it builds the page with textContent only. The token itself lives only in the
// "created" box until the user dismisses it; it is never stored.
'use strict';

(() => {
  const KEY_STORE = 'mcpproxy.apikey';
  const $ = (id) => document.getElementById(id);

  function key() {
    try { return window.localStorage.getItem(KEY_STORE) || ''; } catch (_) { return ''; }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { 'X-API-Key': key() }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) {
      throw new Error((data && typeof data.error === 'string' && data.error) || ('HTTP ' + resp.status));
    }
    return data;
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function when(v) {
    if (!v) return '-';
    const d = new Date(v);
    return isNaN(d) ? String(v) : d.toLocaleString();
  }

  function list(s) {
    return s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  }

  function render(tokens) {
    const body = $('tokens').tBodies[0];
    body.replaceChildren();
    for (const t of tokens) {
      const row = document.createElement('tr');
      row.dataset.token = t.name;
      const expires = when(t.expires_at) + (t.expired ? ' (expired)' : '');
      row.append(
        cell(t.name, 'name'),
        cell((t.servers || []).join(', '), 'servers'),
        cell((t.tools || []).length ? t.tools.join(', ') : 'all of the servers', 'tools'),
        cell(t.read_only ? 'yes' : 'no', 'readonly'),
        cell(when(t.created_at)),
        cell(expires, 'expires'),
        cell(when(t.last_used_at), 'last-used'),
      );
      const actions = document.createElement('td');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'act';
      b.dataset.action = 'revoke';
      b.textContent = 'Revoke';
      b.addEventListener('click', () => revoke(t.name, b));
      actions.append(b);
      row.append(actions);
      body.append(row);
    }
    $('tokens-empty').hidden = tokens.length > 0;
  }

  async function load() {
    if (!key()) return;
    try {
      const data = await api('GET', '/api/v1/tokens');
      render((data && data.tokens) || []);
    } catch (err) {
      $('token-error').textContent = 'Listing tokens failed: ' + err.message;
    }
  }

  async function revoke(name, button) {
    if (!window.confirm('Revoke agent token ' + name + '? Its agent is cut off at once.')) return;
    button.disabled = true;
    try {
      await api('DELETE', '/api/v1/tokens/' + encodeURIComponent(name));
      $('token-error').textContent = '';
    } catch (err) {
      $('token-error').textContent = 'Revoking ' + name + ' failed: ' + err.message;
    }
    await load();
  }

  async function create(ev) {
    ev.preventDefault();
    const spec = {
      name: $('token-name').value.trim(),
      servers: list($('token-servers').value),
      read_only: $('token-readonly').checked,
    };
    const tools = list($('token-tools').value);
    if (tools.length) spec.tools = tools;
    const hours = Number($('token-expires').value);
    if ($('token-expires').value !== '' && hours > 0) {
      spec.expires_at = new Date(Date.now() + hours * 3600 * 1000).toISOString();
    }
    try {
      const t = await api('POST', '/api/v1/tokens', spec);
      $('token-error').textContent = '';
      $('token-created-name').textContent = t.name;
      $('token-secret').textContent = t.token;
      $('token-created').hidden = false;
      $('token-form').reset();
    } catch (err) {
      $('token-error').textContent = err.message;
    }
    await load();
  }

  function dismiss() {
    $('token-secret').textContent = '';
    $('token-created-name').textContent = '';
    $('token-created').hidden = true;
  }

  async function copy() {
    try {
      await navigator.clipboard.writeText($('token-secret').textContent);
      $('token-copy').textContent = 'Copied';
    } catch (_) {
      window.getSelection().selectAllChildren($('token-secret'));
    }
  }

  function init() {
    $('token-form').addEventListener('submit', create);
    $('token-dismiss').addEventListener('click', dismiss);
    $('token-copy').addEventListener('click', copy);
    // app.js shows the main view once it has a key that works: list the tokens then.
    new MutationObserver(() => { if (!$('main').hidden) load(); })
      .observe($('main'), { attributes: true, attributeFilter: ['hidden'] });
    if (!$('main').hidden) load();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
