// endpoints.js: the MCP endpoints panel. It shows the URLs agents connect to, built from the
// address the dashboard was opened at, and what /mcp offers now (the config's mcp_mode).
(function () {
  'use strict';

  const KEY_STORE = 'mcpproxy.apikey';

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  function storedKey() {
    try { return window.localStorage.getItem(KEY_STORE) || ''; } catch (_) { return ''; }
  }

  // showMode asks the config for mcp_mode; without a key (or on an error) the panel keeps
  // saying what the default is.
  function showMode() {
    const headers = {};
    const key = storedKey();
    if (key) headers['X-API-Key'] = key;
    fetch('/api/v1/config', { headers: headers }).then(function (res) {
      return res.ok ? res.json() : null;
    }).then(function (body) {
      if (!body || !body.config) return;
      const mode = body.config.mcp_mode || 'search';
      setText('mcp-mode', mode === 'direct'
        ? 'direct: every tool listed as itself, as on /mcp/all'
        : 'search: retrieve_tools, call_tool and upstream_servers');
    }).catch(function () { /* keep the default text */ });
  }

  function init() {
    const origin = window.location.origin;
    setText('mcp-url', origin + '/mcp');
    setText('mcp-all-url', origin + '/mcp/all');
    setText('mcp-server-url', origin + '/mcp/server/{name}');
    showMode();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
