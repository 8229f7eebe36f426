// mcpproxy dashboard: a servers table kept live by the /events stream, per-server and bulk
// actions, tool search, status counts and a log of recent events. Panels in files of their
// own (tools.js) use window.mcpproxy (api, notice, el) and two DOM events: mcpproxy:row
// after a server row is filled, mcpproxy:event for each event of the stream.
//
// Every string that comes from the daemon (and so possibly from an upstream server: tool
// descriptions, error messages, names) goes into the page through textContent or
// attribute setters, never through innerHTML, so that it is shown as text.
'use strict';

(() => {
  const KEY_STORE = 'mcpproxy.apikey';
  const MAX_EVENTS = 50;
  const TOOL_LIMIT = 50;
  const RETRY_MIN = 1000;
  const RETRY_MAX = 30000;
  // SELF_GRANTS are the auth.grant values of servers the daemon logs in by itself.
  const SELF_GRANTS = ['client_credentials', 'id_jag'];
  const STATES = ['disabled', 'connecting', 'ready', 'error', 'backoff', 'stopping', 'needs_auth'];
  const EVENT_NAMES = ['servers.changed', 'tools.indexed', 'config.reloaded', 'activity.recorded', 'operation.progress', 'operation.done'];

  const $ = (id) => document.getElementById(id);

  const st = {
    key: '',
    // name -> {data, row, cells, seq}; seq is the event sequence number of the last
    // event that touched the row, so that a list fetched earlier never undoes it.
    servers: new Map(),
    // name -> the event sequence number at which an event removed the server: a list
    // fetched before that event still has it (say, stopping) and must not bring it back.
    removed: new Map(),
    es: null,
    live: false,
    wasLive: false,
    lastEventId: '',
    eventSeq: 0,
    retryDelay: RETRY_MIN,
    retryTimer: 0,
    statusTimer: 0,
    toolTimer: 0,
    toolSeq: 0,
  };

  // ---- API key ----------------------------------------------------------------------

  // takeKeyFromURL moves ?apikey= from the address bar into localStorage, so that the key
  // does not stay in the history, bookmarks or screen shares.
  function takeKeyFromURL() {
    const url = new URL(window.location.href);
    if (!url.searchParams.has('apikey')) return;
    const key = url.searchParams.get('apikey') || '';
    url.searchParams.delete('apikey');
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    if (key) {
      try { window.localStorage.setItem(KEY_STORE, key); } catch (_) { st.key = key; }
    }
  }

  function storedKey() {
    try { return window.localStorage.getItem(KEY_STORE) || ''; } catch (_) { return st.key; }
  }

  function saveKey(key) {
    st.key = key;
    try { window.localStorage.setItem(KEY_STORE, key); } catch (_) { /* private mode: keep it in memory */ }
  }

  function forgetKey() {
    st.key = '';
    try { window.localStorage.removeItem(KEY_STORE); } catch (_) { /* nothing stored */ }
  }

  function showLogin(message) {
    stopEvents();
    $('main').hidden = true;
    $('forget').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('key-input').value = '';
    $('key-input').focus();
  }

  function onUnauthorized() {
    forgetKey();
    showLogin('The daemon refused this API key. Enter the current one.');
  }

  // ---- REST -------------------------------------------------------------------------

  class APIError extends Error {}

  async function api(method, path, body) {
    const opts = { method, headers: { 'X-API-Key': st.key }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (err) {
      throw new APIError('daemon unreachable');
    }
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (resp.status === 401) {
      onUnauthorized();
      throw new APIError('unauthorized');
    }
    if (!resp.ok) {
      throw new APIError((data && typeof data.error === 'string' && data.error) || ('HTTP ' + resp.status));
    }
    return data;
  }

  function notice(text) {
    const el = $('notice');
    el.textContent = text || '';
    el.hidden = !text;
  }

  // ---- servers table ----------------------------------------------------------------

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function button(label, action, handler) {
    const b = el('button', 'act', label);
    b.type = 'button';
    b.dataset.action = action;
    b.addEventListener('click', handler);
    return b;
  }

  function makeRow(name) {
    const row = document.createElement('tr');
    row.dataset.server = name;
    const cells = {
      name: el('td', 'name', name),
      protocol: el('td', 'protocol'),
      state: el('td', 'state'),
      tools: el('td', 'tools num'),
      quarantined: el('td', 'quarantined'),
      lastError: el('td', 'last-error'),
      retries: el('td', 'retries num'),
      actions: el('td', 'actions'),
    };
    cells.badge = el('span', 'badge');
    cells.state.appendChild(cells.badge);
    cells.toggle = button('Disable', 'disable', () => act(name, cells.toggle.dataset.action));
    cells.restart = button('Restart', 'restart', () => act(name, 'restart'));
    cells.quarantine = button('Quarantine', 'quarantine', () => act(name, cells.quarantine.dataset.action));
    // Log in: shown on needs_auth rows; opens the authorization URL in a new tab, and the
    // row turns ready live when servers.changed arrives.
    cells.login = button('Log in', 'login', () => login(name));
    cells.login.hidden = true;
    // A self-granting server (auth.grant client_credentials or id_jag) has no login to
    // offer (the daemon's would be refused with 409): its needs_auth row says so instead.
    cells.selfGrant = el('span', 'self-grant muted');
    cells.selfGrant.hidden = true;
    cells.actions.append(cells.login, cells.selfGrant, cells.toggle, cells.restart, cells.quarantine);
    for (const k of ['name', 'protocol', 'state', 'tools', 'quarantined', 'lastError', 'retries', 'actions']) {
      row.appendChild(cells[k]);
    }
    // bulk.js adds the row's selection checkbox when it is built (mcpproxy:rowcreated, once a
    // row; mcpproxy:row follows every fill)
    document.dispatchEvent(new CustomEvent('mcpproxy:rowcreated', { detail: { row, name } }));
    return { data: null, row, cells, seq: 0 };
  }

  function fillRow(entry, s) {
    const c = entry.cells;
    entry.data = s;
    const state = STATES.includes(s.state) ? s.state : 'unknown';
    c.protocol.textContent = s.protocol || '';
    c.badge.textContent = String(s.state || '');
    c.badge.className = 'badge state-' + state;
    c.tools.textContent = String(s.tools_count ?? 0);
    c.quarantined.textContent = s.quarantined ? 'yes' : 'no';
    c.quarantined.classList.toggle('warn', !!s.quarantined);
    c.lastError.textContent = s.last_error || '';
    c.lastError.title = s.last_error || '';
    c.retries.textContent = String(s.retry_count ?? 0);
    entry.row.dataset.state = state;
    if (s.enabled) {
      c.toggle.textContent = 'Disable';
      c.toggle.dataset.action = 'disable';
    } else {
      c.toggle.textContent = 'Enable';
      c.toggle.dataset.action = 'enable';
    }
    c.restart.disabled = !s.enabled;
    const grant = s.auth && SELF_GRANTS.includes(s.auth.grant) ? s.auth.grant : '';
    c.login.hidden = s.state !== 'needs_auth' || grant !== '';
    c.selfGrant.hidden = s.state !== 'needs_auth' || grant === '';
    c.selfGrant.textContent = grant ? 'logs in by itself (' + grant + ')' : '';
    c.selfGrant.title = grant ? 'The daemon gets this server\'s tokens itself; if the row stays here, its logs say why.' : '';
    if (s.quarantined) {
      c.quarantine.textContent = 'Approve';
      c.quarantine.dataset.action = 'approve';
    } else {
      c.quarantine.textContent = 'Quarantine';
      c.quarantine.dataset.action = 'quarantine';
    }
    // Panels in their own files (tools.js) add to the row from here.
    document.dispatchEvent(new CustomEvent('mcpproxy:row', { detail: { server: s, row: entry.row, actions: c.actions } }));
  }

  // upsertServer adds or updates one row, keeping the table sorted by name.
  function upsertServer(s) {
    if (!s || typeof s.name !== 'string') return null;
    let entry = st.servers.get(s.name);
    if (!entry) {
      entry = makeRow(s.name);
      st.servers.set(s.name, entry);
      const body = $('servers').tBodies[0];
      let before = null;
      for (const [name, other] of st.servers) {
        if (name > s.name && (!before || name < before.row.dataset.server)) before = other;
      }
      body.insertBefore(entry.row, before ? before.row : null);
    }
    fillRow(entry, s);
    $('servers-empty').hidden = st.servers.size > 0;
    return entry;
  }

  function removeServer(name) {
    const entry = st.servers.get(name);
    if (!entry) return;
    entry.row.remove();
    st.servers.delete(name);
    $('servers-empty').hidden = st.servers.size > 0;
  }

  // loadServers replaces the table with the daemon's list, except rows that an event
  // changed while the request was under way (the event is newer than the list).
  async function loadServers() {
    const since = st.eventSeq;
    const data = await api('GET', '/api/v1/servers');
    const list = (data && Array.isArray(data.servers)) ? data.servers : [];
    const seen = new Set();
    for (const s of list) {
      seen.add(s.name);
      const entry = st.servers.get(s.name);
      if (entry && entry.seq > since) continue;
      if ((st.removed.get(s.name) ?? -1) > since) continue;
      upsertServer(s);
    }
    for (const [name, entry] of Array.from(st.servers)) {
      if (!seen.has(name) && entry.seq <= since) removeServer(name);
    }
    // A removal this list was fetched after is in the list already.
    for (const [name, seq] of Array.from(st.removed)) {
      if (seq <= since) st.removed.delete(name);
    }
    $('servers-empty').hidden = st.servers.size > 0;
  }

  async function login(name) {
    // The tab is opened in the click's turn (popup blockers allow only that) and pointed at
    // the authorization URL once the daemon answers it.
    const tab = window.open('', '_blank');
    try {
      const res = await api('POST', '/api/v1/servers/' + encodeURIComponent(name) + '/login');
      notice('');
      if (tab) {
        tab.opener = null;
        tab.location.href = res.authorization_url;
      } else {
        window.open(res.authorization_url, '_blank', 'noopener');
      }
    } catch (err) {
      if (tab) tab.close();
      if (err.message !== 'unauthorized') notice('login ' + name + ': ' + err.message);
    }
  }

  async function act(name, action) {
    const base = '/api/v1/servers/' + encodeURIComponent(name);
    let path = base + '/' + action;
    let body;
    if (action === 'quarantine' || action === 'approve') {
      path = base + '/quarantine';
      body = { quarantined: action === 'quarantine' };
    }
    try {
      const res = await api('POST', path, body);
      notice('');
      // While the stream is live the servers.changed event updates the row; without it,
      // the answer is the best news there is.
      if (!st.live && res && res.server) upsertServer(res.server);
    } catch (err) {
      if (err.message !== 'unauthorized') notice(action + ' ' + name + ': ' + err.message);
    }
  }

  async function bulk(op, btn) {
    btn.disabled = true;
    try {
      const r = await api('POST', '/api/v1/servers/' + op);
      let text = op + ': ' + r.total + ' total, ' + r.successful + ' successful, ' + r.failed +
        ' failed, ' + r.skipped + ' skipped';
      const errs = r.errors ? Object.keys(r.errors) : [];
      if (errs.length) text += ' (' + errs.map((n) => n + ': ' + r.errors[n]).join('; ') + ')';
      $('bulk-result').textContent = text;
      if (!st.live) await loadServers();
    } catch (err) {
      if (err.message !== 'unauthorized') $('bulk-result').textContent = op + ': ' + err.message;
    } finally {
      btn.disabled = false;
    }
  }

  // ---- status strip -----------------------------------------------------------------

  async function loadStatus() {
    const s = await api('GET', '/api/v1/status');
    const sv = s.servers || {};
    $('c-total').textContent = String(sv.total ?? '-');
    $('c-connected').textContent = String(sv.connected ?? '-');
    $('c-quarantined').textContent = String(sv.quarantined ?? '-');
    $('c-disabled').textContent = String(sv.disabled ?? '-');
    $('c-errored').textContent = String(sv.errored ?? '-');
    $('c-tools').textContent = String((s.tools && s.tools.total) ?? '-');
    $('c-review').textContent = String((s.tools && s.tools.awaiting_review) ?? '-');
    $('version').textContent = s.version ? 'v' + s.version : '';
  }

  // scheduleStatus refreshes the counts shortly after an event. A refresh already due is
  // not pushed back, so that a steady run of events cannot starve the counts.
  function scheduleStatus() {
    if (st.statusTimer) return;
    st.statusTimer = setTimeout(() => {
      st.statusTimer = 0;
      loadStatus().catch(() => {});
    }, 250);
  }

  function setLive(mode) {
    st.live = mode === 'live';
    document.body.dataset.stream = mode;
    const el = $('live');
    el.textContent = mode;
    el.className = 'live stream-' + mode;
  }

  // ---- tools ------------------------------------------------------------------------

  async function searchTools() {
    const seq = ++st.toolSeq;
    const q = $('tool-q').value.trim();
    const params = new URLSearchParams({ limit: String(TOOL_LIMIT) });
    if (q) params.set('q', q);
    let data;
    try {
      data = await api('GET', '/api/v1/tools?' + params.toString());
    } catch (err) {
      if (seq === st.toolSeq && err.message !== 'unauthorized') $('tools-total').textContent = err.message;
      return;
    }
    if (seq !== st.toolSeq) return; // a newer search is under way
    const body = $('tools').tBodies[0];
    const rows = [];
    for (const t of (data.tools || [])) {
      const row = document.createElement('tr');
      row.dataset.tool = String(t.name);
      row.append(
        el('td', 'tool-name', String(t.name ?? '')),
        el('td', 'tool-server', String(t.server ?? '')),
        el('td', 'num', typeof t.score === 'number' && q ? t.score.toFixed(2) : ''),
        // Why the search found it: the fields of the tool the query matched.
        el('td', 'tool-matched muted', Array.isArray(t.matched) ? t.matched.map(String).join(', ') : ''),
        el('td', 'tool-desc', String(t.description ?? '')),
      );
      rows.push(row);
    }
    body.replaceChildren(...rows);
    const shown = rows.length;
    const total = typeof data.total === 'number' ? data.total : shown;
    let text;
    if (q) {
      text = shown + (shown === 1 ? ' match' : ' matches') + ' (' + total + ' tools indexed)';
    } else {
      text = shown < total ? shown + ' of ' + total + ' tools' : total + (total === 1 ? ' tool' : ' tools');
    }
    $('tools-total').textContent = text;
  }

  // scheduleSearch runs the search after delay. Typing (debounce) moves a pending search
  // later; events and reconnects (debounce false) only make sure one is pending, so that
  // a run of events cannot postpone it for ever.
  function scheduleSearch(delay, debounce) {
    if (st.toolTimer) {
      if (!debounce) return;
      clearTimeout(st.toolTimer);
    }
    st.toolTimer = setTimeout(() => {
      st.toolTimer = 0;
      searchTools();
    }, delay);
  }

  // ---- event log --------------------------------------------------------------------

  function summary(name, d) {
    if (!d || typeof d !== 'object') return '';
    switch (name) {
      case 'servers.changed': {
        const s = d.server || {};
        let text = String(s.name ?? '') + ': ' + String(d.reason ?? '') + ' \u2192 ' + String(s.state ?? '');
        if (s.last_error && (s.state === 'error' || s.state === 'backoff')) text += ' (' + s.last_error + ')';
        return text;
      }
      case 'tools.indexed':
        return String(d.server ?? '') + ': ' + String(d.server_tools ?? 0) + ' tools indexed, ' + String(d.total ?? 0) + ' in all';
      case 'config.reloaded': {
        const n = (a) => (Array.isArray(a) ? a.length : 0);
        return 'from ' + String(d.source ?? '') + ': ' + n(d.added) + ' added, ' + n(d.removed) + ' removed, ' + n(d.changed) + ' changed';
      }
      default:
        return '';
    }
  }

  function logEvent(name, text, id) {
    const li = el('li');
    li.dataset.event = name;
    const time = new Date().toLocaleTimeString();
    li.append(el('span', 'ev-time', time), el('span', 'ev-name', name), el('span', 'ev-text', text));
    if (id) li.title = 'event id ' + id;
    const list = $('events');
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  // ---- event stream -----------------------------------------------------------------

  function stopEvents() {
    clearTimeout(st.retryTimer);
    if (st.es) {
      st.es.close();
      st.es = null;
    }
    setLive('offline');
  }

  function onEvent(es, name, ev) {
    if (st.es !== es) return;
    if (ev.lastEventId) st.lastEventId = ev.lastEventId;
    let d = null;
    try { d = JSON.parse(ev.data); } catch (_) { d = null; }
    st.eventSeq++;
    if (name === 'servers.changed' && d && d.server && typeof d.server.name === 'string') {
      if (d.reason === 'removed') {
        removeServer(d.server.name);
        st.removed.set(d.server.name, st.eventSeq);
      } else {
        st.removed.delete(d.server.name);
        const entry = upsertServer(d.server);
        if (entry) entry.seq = st.eventSeq;
      }
    } else if (name === 'config.reloaded') {
      loadServers().catch(() => {});
    } else if (name === 'tools.indexed') {
      scheduleSearch(300);
    }
    logEvent(name, summary(name, d), ev.lastEventId);
    scheduleStatus();
    document.dispatchEvent(new CustomEvent('mcpproxy:event', { detail: { name, data: d } }));
  }

  // connectEvents opens /events. The browser's EventSource reconnects by itself after a
  // dropped connection and sends Last-Event-ID; when it gives up (the daemon answered with
  // an error status while restarting), a new one is made here, with ?lastEventId= so that
  // the daemon still replays what was missed.
  function connectEvents() {
    clearTimeout(st.retryTimer);
    if (st.es) st.es.close();
    let url = '/events?apikey=' + encodeURIComponent(st.key);
    if (st.lastEventId) url += '&lastEventId=' + encodeURIComponent(st.lastEventId);
    const es = new EventSource(url);
    st.es = es;
    setLive(st.lastEventId ? 'reconnecting' : 'connecting');
    es.onopen = () => {
      if (st.es !== es) return;
      const again = st.retryDelay > RETRY_MIN || st.wasLive;
      st.retryDelay = RETRY_MIN;
      st.wasLive = true;
      setLive('live');
      logEvent('stream', again ? 'reconnected' : 'connected', '');
      // Whatever happened while the stream was down, the table and counts start over from
      // the daemon's view; replayed events then apply on top.
      loadServers().catch(() => {});
      loadStatus().catch(() => {});
      scheduleSearch(0);
    };
    es.onerror = () => {
      if (st.es !== es) return;
      if (st.live) logEvent('stream', 'lost; reconnecting', '');
      if (es.readyState === EventSource.CLOSED) {
        setLive('offline');
        st.retryTimer = setTimeout(retryEvents, st.retryDelay);
        st.retryDelay = Math.min(st.retryDelay * 2, RETRY_MAX);
      } else {
        setLive('reconnecting');
      }
    };
    for (const name of EVENT_NAMES) {
      es.addEventListener(name, (ev) => onEvent(es, name, ev));
    }
  }

  // retryEvents checks the key before a new stream: a refused key shows the login form
  // instead of retrying forever.
  async function retryEvents() {
    try {
      await api('GET', '/api/v1/status');
    } catch (err) {
      if (err.message === 'unauthorized') return;
      st.retryTimer = setTimeout(retryEvents, st.retryDelay);
      st.retryDelay = Math.min(st.retryDelay * 2, RETRY_MAX);
      return;
    }
    connectEvents();
  }

  // ---- start ------------------------------------------------------------------------

  async function start() {
    $('login').hidden = true;
    $('main').hidden = false;
    $('forget').hidden = false;
    notice('');
    try {
      await Promise.all([loadServers(), loadStatus()]);
    } catch (err) {
      if (err.message === 'unauthorized') return;
      notice('Could not load: ' + err.message);
    }
    scheduleSearch(0);
    connectEvents();
  }

  function init() {
    takeKeyFromURL();
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const key = $('key-input').value.trim();
      if (!key) return;
      saveKey(key);
      start();
    });
    $('forget').addEventListener('click', () => {
      forgetKey();
      showLogin('');
    });
    for (const b of document.querySelectorAll('button[data-bulk]')) {
      b.addEventListener('click', () => bulk(b.dataset.bulk, b));
    }
    $('tool-q').addEventListener('input', () => scheduleSearch(200, true));
    st.key = storedKey();
    if (st.key) {
      start();
    } else {
      showLogin('');
    }
  }

  // The API helper and the notice line, for the panels in their own files.
  window.mcpproxy = Object.freeze({ api, notice, el });

  // init waits for DOMContentLoaded: the panels' scripts (bulk.js and the rest, deferred
  // after this one) must have registered their listeners before the first rows are built.
  // Between two deferred scripts the browser may already deliver the server list's answer,
  // and a row built then would miss its mcpproxy:rowcreated listener for good.
  document.addEventListener('DOMContentLoaded', init);
})();
