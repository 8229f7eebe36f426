// mcpproxy dashboard, activity panel: the newest tool calls agents made through the MCP
// endpoints (GET /api/v1/activity), kept live by activity.recorded on /events, with filters
// (server, tool, outcome), older pages by cursor, and a record's detail (its arguments
// included) on click.
//
// It uses the key app.js keeps (localStorage) and starts when app.js shows the dashboard.
// Every string from the daemon goes into the page through textContent (CSP script-src
// 'self'; an agent's arguments and an upstream's error text are data, not markup).
'use strict';

(() => {
  const KEY_STORE = 'mcpproxy.apikey';
  const PAGE = 50;
  const MAX_ROWS = 500;

  const $ = (id) => document.getElementById(id);
  const st = { key: '', es: null, next: '', rows: new Map(), started: false, filterTimer: 0, seq: 0, selected: 0 };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  async function api(path) {
    const resp = await fetch(path, { headers: { 'X-API-Key': st.key }, cache: 'no-store' });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) throw new Error((data && data.error) || ('HTTP ' + resp.status));
    return data;
  }

  function filters() {
    return { server: $('activity-server').value.trim(), tool: $('activity-tool').value.trim(), status: $('activity-status').value };
  }

  // matches applies the filters to a live record as the API does to stored ones.
  function matches(r) {
    const f = filters();
    if (f.server && r.server !== f.server) return false;
    if (f.tool && r.tool !== f.tool && !(r.tool === undefined && r.name === f.tool)) return false;
    if (f.status && r.outcome !== f.status) return false;
    return true;
  }

  function query(cursor) {
    const q = new URLSearchParams();
    const f = filters();
    for (const k of ['server', 'tool', 'status']) if (f[k]) q.set(k, f[k]);
    q.set('limit', String(PAGE));
    if (cursor) q.set('cursor', cursor);
    return '/api/v1/activity?' + q.toString();
  }

  function what(r) {
    return r.tool || ((r.method || '') + ' ' + (r.name || '')).trim();
  }

  function row(r) {
    const tr = el('tr');
    tr.dataset.id = String(r.id);
    const outcome = r.reason ? r.outcome + ' (' + r.reason + ')' : r.outcome;
    const client = r.client && r.client.name ? r.client.name + (r.client.version ? ' ' + r.client.version : '') : '-';
    const cells = [String(r.id), new Date(r.started_at).toLocaleString(), r.server || '-', what(r), outcome,
      (Number(r.duration_ms) || 0).toFixed(1) + ' ms', client, r.credential || '-'];
    cells.forEach((text, i) => {
      const td = el('td', '', text);
      if (i === 4) td.className = 'outcome outcome-' + r.outcome;
      if (i === 3) td.className = 'tool';
      if (i === 2) td.className = 'server';
      if (r.error && i === 4) td.title = r.error;
      tr.appendChild(td);
    });
    tr.addEventListener('click', () => showDetail(r.id));
    return tr;
  }

  // add puts a record in the table in id order (newest first), once.
  function add(r, atTop) {
    if (st.rows.has(r.id)) return;
    const tr = row(r);
    st.rows.set(r.id, tr);
    const body = $('activity').tBodies[0];
    if (atTop) {
      let before = body.firstChild;
      while (before && Number(before.dataset.id) > r.id) before = before.nextSibling;
      body.insertBefore(tr, before);
      while (body.rows.length > MAX_ROWS) {
        const last = body.lastChild;
        st.rows.delete(Number(last.dataset.id));
        body.removeChild(last);
        st.next = last.dataset.id; // older ones come back through "Load older"
        $('activity-more').hidden = false;
      }
    } else {
      body.appendChild(tr);
    }
    counts();
  }

  function counts() {
    const n = st.rows.size;
    $('activity-count').textContent = n ? n + ' shown' : '';
    $('activity-empty').hidden = n > 0;
  }

  async function load(reset) {
    const seq = ++st.seq;
    const page = await api(query(reset ? '' : st.next));
    if (seq !== st.seq) return; // a newer filter won
    if (reset) {
      $('activity').tBodies[0].replaceChildren();
      st.rows.clear();
    }
    for (const r of page.records) add(r, false);
    st.next = page.next || '';
    $('activity-more').hidden = !st.next;
    counts();
  }

  async function showDetail(id) {
    st.selected = id;
    for (const [rid, tr] of st.rows) tr.classList.toggle('selected', rid === id);
    $('activity-detail').hidden = false;
    $('activity-detail-title').textContent = 'Record ' + id;
    $('activity-detail-json').textContent = 'loading...';
    try {
      const data = await api('/api/v1/activity/' + id);
      if (st.selected === id) $('activity-detail-json').textContent = JSON.stringify(data.record, null, 2);
    } catch (err) {
      if (st.selected === id) $('activity-detail-json').textContent = 'Could not load: ' + err.message;
    }
  }

  // connect follows activity.recorded on the page's one /events stream (app.js's, which
  // resumes with the last event id after a reconnect and hands each event on as
  // mcpproxy:event); add ignores repeats. The panel is live while that stream is.
  function connect() {
    if (st.following) return;
    st.following = true;
    document.addEventListener('mcpproxy:event', (ev) => {
      if (!st.started || ev.detail.name !== 'activity.recorded') return;
      const r = ev.detail.data;
      if (r && typeof r.id === 'number' && matches(r)) add(r, true);
    });
    const mark = () => { $('activity-panel').dataset.live = String(document.body.dataset.stream === 'live'); };
    new MutationObserver(mark).observe(document.body, { attributes: true, attributeFilter: ['data-stream'] });
    mark();
  }

  function refilter() {
    clearTimeout(st.filterTimer);
    st.filterTimer = setTimeout(() => load(true).catch(() => {}), 200);
  }

  function start() {
    st.key = localStorage.getItem(KEY_STORE) || '';
    if (!st.key || st.started) return;
    st.started = true;
    load(true).catch((err) => { $('activity-count').textContent = 'Could not load: ' + err.message; });
    connect();
  }

  function init() {
    $('activity-server').addEventListener('input', refilter);
    $('activity-tool').addEventListener('input', refilter);
    $('activity-status').addEventListener('change', refilter);
    $('activity-more').addEventListener('click', () => load(false).catch(() => {}));
    $('activity-detail-close').addEventListener('click', () => {
      st.selected = 0;
      $('activity-detail').hidden = true;
      for (const tr of st.rows.values()) tr.classList.remove('selected');
    });
    // app.js shows #main once it has a key; a forgotten key hides it (and app.js closes the stream).
    const main = $('main');
    new MutationObserver(() => {
      if (!main.hidden) {
        start();
      } else {
        st.started = false;
      }
    }).observe(main, { attributes: true, attributeFilter: ['hidden'] });
    if (!main.hidden) start();
  }

  init();
})();
