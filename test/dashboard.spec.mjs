// Browser half of TestDashboard (dashboard_test.go): drives the dashboard in headless
// Chromium with playwright-core. The Go test starts the daemon and its fixtures, runs this
// script, and performs the steps a browser cannot (killing an upstream, restarting the
// daemon) when the script asks for them.
//
// Protocol on stdio: the script prints "STEP <name>" and waits for one line on stdin, "ok"
// to go on or anything else to fail; "LOG <text>" lines are progress for the test log. Any
// failed expectation throws, and the script exits non-zero with the reason on stderr.
//
// Environment: DASH_URL (http://127.0.0.1:PORT), DASH_KEY, DASH_CHROMIUM (browser binary),
// DASH_ARTIFACTS (directory for the screenshot), DASH_XSS_TOOL and DASH_XSS_DESC (the
// hostile tool the Go test added), DASH_USER_DATA (a fresh empty profile directory);
// DASH_DEBUG=1 logs every request the page makes (the key masked).

import readline from 'node:readline';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const base = env('DASH_URL');
const key = env('DASH_KEY');
const xssTool = env('DASH_XSS_TOOL');
const xssDesc = env('DASH_XSS_DESC');
const artifacts = env('DASH_ARTIFACTS');
const T = 30000; // per-expectation bound; the Go test bounds the whole run

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function log(text) {
  process.stdout.write(`LOG ${text}\n`);
}

async function step(name) {
  process.stdout.write(`STEP ${name}\n`);
  const { value, done } = await lines.next();
  if (done || value !== 'ok') throw new Error(`step ${name} failed: ${done ? 'stdin closed' : value}`);
}

function expect(cond, what) {
  if (!cond) throw new Error(`expectation failed: ${what}`);
}

const rowSel = (name) => `#servers tr[data-server="${name}"]`;
const stateOf = (page, name) => page.locator(`${rowSel(name)} td.state`).textContent();

async function waitState(page, name, state) {
  await page.waitForFunction(
    ([sel, want]) => {
      const td = document.querySelector(sel + ' td.state');
      return td !== null && td.textContent === want;
    },
    [rowSel(name), state],
    { timeout: T },
  ).catch(async (err) => {
    throw new Error(`${name} did not show ${state} (shows ${await stateOf(page, name).catch(() => 'no row')}): ${err.message}`);
  });
}

async function waitLive(page) {
  await page.waitForSelector('body[data-stream="live"]', { timeout: T }).catch(async (err) => {
    const mode = await page.getAttribute('body', 'data-stream').catch(() => '?');
    throw new Error(`event stream not live (data-stream=${mode}; is GET /events served?): ${err.message}`);
  });
}

async function waitText(page, id, want, what) {
  await page.waitForFunction(([id, want]) => document.getElementById(id).textContent === want, [id, want], { timeout: T })
    .catch(async (err) => {
      throw new Error(`${what}: #${id} shows ${JSON.stringify(await page.textContent('#' + id))}, want ${JSON.stringify(want)}: ${err.message}`);
    });
}

const context = await chromium.launchPersistentContext(env('DASH_USER_DATA'), {
  executablePath: env('DASH_CHROMIUM'),
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 900 },
});

try {
  const page = context.pages()[0] ?? await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') log(`console error: ${msg.text()}`);
  });
  const eventRequests = [];
  page.on('request', (req) => {
    if (new URL(req.url()).pathname === '/events') eventRequests.push(req);
    if (process.env.DASH_DEBUG) log(`request ${req.method()} ${req.url().replace(/apikey=[^&]*/, 'apikey=...')}`);
  });

  // 0. Without a key the page asks for one; a wrong key is refused and not kept.
  await page.goto(`${base}/`);
  await page.waitForSelector('#login', { state: 'visible', timeout: T });
  expect(await page.isHidden('#main'), 'no dashboard without a key');
  await page.fill('#key-input', 'not-the-key');
  await page.click('#login-form button[type="submit"]');
  await page.waitForFunction(() => /refused/.test(document.getElementById('login-error').textContent), null, { timeout: T });
  expect(await page.isVisible('#login'), 'login form shown again after a wrong key');
  expect(await page.evaluate(() => localStorage.getItem('mcpproxy.apikey')) === null, 'a refused key is not kept');
  log('login form refuses a wrong key');

  // 1. The page takes the key from the URL, removes it from the address bar and keeps it.
  await page.goto(`${base}/?apikey=${encodeURIComponent(key)}`);
  await page.waitForSelector(rowSel('alpha'), { timeout: T });
  expect(!page.url().includes('apikey'), `address bar still holds the key: ${page.url()}`);
  expect(await page.evaluate(() => localStorage.getItem('mcpproxy.apikey')) === key, 'key kept in localStorage');
  expect(await page.isHidden('#login'), 'login form hidden with a key');

  // A reload without ?apikey= uses the stored key.
  await page.reload();
  for (const name of ['alpha', 'beta', 'gamma']) {
    await waitState(page, name, 'ready');
  }
  await waitLive(page);
  // The MCP endpoints panel names the URLs agents connect to, and /mcp's mode.
  expect(await page.textContent('#mcp-url') === `${base}/mcp`, 'the /mcp URL shown');
  expect(await page.textContent('#mcp-all-url') === `${base}/mcp/all`, 'the /mcp/all URL shown');
  await page.waitForFunction(() => document.querySelector('#mcp-mode').textContent.startsWith('search'), null, { timeout: T });
  const names = await page.$$eval('#servers tbody tr', (rows) => rows.map((r) => r.dataset.server));
  expect(JSON.stringify(names) === JSON.stringify(['alpha', 'beta', 'gamma']), `servers listed in order: ${names}`);
  const alphaRow = await page.$$eval(`${rowSel('alpha')} td:not(.select)`, (tds) => tds.map((td) => td.textContent));
  expect(alphaRow[1] === 'stdio', `protocol cell: ${alphaRow}`);
  expect(Number(alphaRow[3]) >= 5, `tools count cell: ${alphaRow}`);
  expect(alphaRow[4] === 'no', `quarantined cell: ${alphaRow}`);
  await page.waitForFunction(() => document.getElementById('c-total').textContent === '3', null, { timeout: T });
  log('page loaded with the key; three servers ready; stream live');

  // 2. A hostile tool description is shown as text, not parsed as HTML.
  await page.fill('#tool-q', xssTool);
  const toolRow = `#tools tr[data-tool="alpha:${xssTool}"]`;
  // The search must have run: the hostile tool is the only hit.
  await page.waitForFunction(
    (want) => {
      const rows = document.querySelectorAll('#tools tbody tr');
      return rows.length === 1 && rows[0].dataset.tool === want;
    },
    `alpha:${xssTool}`,
    { timeout: T },
  ).catch(async (err) => {
    const got = await page.$$eval('#tools tbody tr', (rows) => rows.map((r) => r.dataset.tool));
    throw new Error(`search for ${xssTool} shows ${JSON.stringify(got)}: ${err.message}`);
  });
  const matched = await page.locator(`${toolRow} td.tool-matched`).textContent();
  expect(matched.split(', ').includes('name'), `the hit says the query matched its name: got ${JSON.stringify(matched)}`);
  const desc = await page.locator(`${toolRow} td.tool-desc`).textContent();
  expect(desc === xssDesc, `description shown verbatim: got ${JSON.stringify(desc)}`);
  expect(await page.locator('#tools img').count() === 0, 'no <img> element made from the description');
  expect(await page.locator('body img').count() === 0, 'no <img> anywhere in the page');
  expect(await page.evaluate(() => window.__xss === undefined), 'the onerror handler did not run');
  log('hostile tool description shown as text');

  // 3. Disable through the row's button: the row changes through the servers.changed event,
  //    with no navigation or reload (a marker on window survives).
  let navigations = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations++;
  });
  await page.evaluate(() => { window.__marker = 'kept'; });
  await page.click(`${rowSel('gamma')} button[data-action="disable"]`);
  await waitState(page, 'gamma', 'disabled');
  expect(await page.evaluate(() => window.__marker) === 'kept', 'page was not reloaded');
  expect(navigations === 0, `no navigation happened (saw ${navigations})`);
  expect(await page.locator(`${rowSel('gamma')} button[data-action="enable"]`).count() === 1, 'toggle now offers enable');
  const gammaEvent = page.locator('#events li[data-event="servers.changed"]', { hasText: 'gamma: disabled' });
  expect(await gammaEvent.count() >= 1, 'event log shows gamma disabled');
  await waitText(page, 'c-disabled', '1', 'status strip counts gamma as disabled');
  await step('check-gamma-disabled');
  log('disable went through the event stream');

  // 4. Killing beta's process shows error/backoff, then ready again. A MutationObserver
  //    records every state the row shows, since backoff may last only a moment.
  await page.evaluate((sel) => {
    window.__betaStates = [];
    const td = document.querySelector(sel + ' td.state');
    let last = td.textContent;
    new MutationObserver(() => {
      if (td.textContent !== last) {
        last = td.textContent;
        window.__betaStates.push(last);
      }
    }).observe(td, { childList: true, subtree: true, characterData: true });
  }, rowSel('beta'));
  await step('kill-beta');
  await page.waitForFunction(() => {
    const s = window.__betaStates;
    const bad = s.findIndex((x) => x === 'error' || x === 'backoff');
    return bad >= 0 && s.indexOf('ready', bad) > bad;
  }, null, { timeout: T }).catch(async (err) => {
    throw new Error(`beta states after kill: ${JSON.stringify(await page.evaluate(() => window.__betaStates))}: ${err.message}`);
  });
  const betaStates = await page.evaluate(() => window.__betaStates);
  log(`beta showed ${betaStates.join(' -> ')}`);
  expect(navigations === 0, 'still no navigation');

  await waitText(page, 'c-connected', '2', 'status strip counts alpha and beta connected again');
  await waitText(page, 'live', 'live', 'stream indicator');
  await page.screenshot({ path: `${artifacts}/dashboard.png`, fullPage: true });
  log('screenshot saved');

  // 5. The daemon restarts on the same address, twice: the page reconnects by itself,
  //    resumes with the last event id, and is live again (a bulk action's events arrive).
  //    First the browser's EventSource reconnects on its own with Last-Event-ID. The second
  //    time its reconnect is answered 503, as a daemon that is not up yet may: EventSource
  //    then gives up, and the page must make a new one with ?lastEventId=.
  await page.evaluate(() => {
    window.__streamModes = [];
    new MutationObserver(() => window.__streamModes.push(document.body.dataset.stream))
      .observe(document.body, { attributes: true, attributeFilter: ['data-stream'] });
  });
  for (const refuseOnce of [false, true]) {
    let refused = null;
    if (refuseOnce) {
      await page.route((url) => url.pathname === '/events', async (route) => {
        refused = route.request();
        await route.fulfill({
          status: 503, contentType: 'application/json', body: '{"error":"shutting down","code":"UNAVAILABLE"}',
        });
      }, { times: 1 });
    }
    await page.evaluate(() => { window.__streamModes = []; });
    const requestsBefore = eventRequests.length;
    await step('restart-daemon');
    await page.waitForFunction(() => window.__streamModes.some((m) => m !== 'live') && document.body.dataset.stream === 'live', null, { timeout: T })
      .catch(async (err) => {
        throw new Error(`stream modes after restart: ${JSON.stringify(await page.evaluate(() => window.__streamModes))}: ${err.message}`);
      });
    const resumed = [];
    for (const req of eventRequests.slice(requestsBefore)) {
      // An intercepted request never reaches the network layer that adds Last-Event-ID, and
      // one refused while the daemon was down reports no headers sent: only the requests
      // the daemon answered show what was sent.
      if (req === refused || (await req.response()) === null) continue;
      const query = new URL(req.url()).searchParams.get('lastEventId');
      const header = (await req.allHeaders())['last-event-id'];
      resumed.push(query ? `?lastEventId=${query}` : `Last-Event-ID: ${header ?? 'none'}`);
    }
    expect(resumed.length >= 1, 'the page reconnected');
    expect(resumed.every((r) => /\d+$/.test(r)), `every reconnect carried the last event id: ${JSON.stringify(resumed)}`);
    if (refuseOnce) {
      expect(refused !== null, 'the browser reconnected by itself and got the 503');
      expect(resumed.some((r) => r.startsWith('?lastEventId=')), `a new stream resumed with ?lastEventId=: ${JSON.stringify(resumed)}`);
    } else {
      expect(resumed.some((r) => r.startsWith('Last-Event-ID: ')), `the browser resumed with Last-Event-ID: ${JSON.stringify(resumed)}`);
    }
    log(`reconnected after a restart: ${resumed.join(', ')}`);
  }

  await page.click('button[data-bulk="enable_all"]');
  await page.waitForFunction(() => /^enable_all: 3 total/.test(document.getElementById('bulk-result').textContent), null, { timeout: T });
  await waitState(page, 'gamma', 'ready');
  expect(navigations === 0, 'no navigation across the restart');
  expect(await page.evaluate(() => window.__marker) === 'kept', 'page was not reloaded across the restart');

  // 6. Quarantine and approve from the row.
  await page.click(`${rowSel('alpha')} button[data-action="quarantine"]`);
  await page.waitForFunction((sel) => document.querySelector(sel + ' td.quarantined').textContent === 'yes', rowSel('alpha'), { timeout: T });
  await step('check-alpha-quarantined');
  await page.click(`${rowSel('alpha')} button[data-action="approve"]`);
  await page.waitForFunction((sel) => document.querySelector(sel + ' td.quarantined').textContent === 'no', rowSel('alpha'), { timeout: T });
  log('quarantine and approve went through');

  expect(pageErrors.length === 0, `no uncaught page errors: ${pageErrors.join('; ')}`);
  await step('done');
} finally {
  await context.close();
}
process.exit(0);
