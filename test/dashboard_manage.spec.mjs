// dashboard_manage.spec.mjs drives the managing panels (http/dashboard/manage.js) in
// headless Chromium, run by TestDashboardManage: add a server with the form and see it
// connect, its detail with tools and a live log (a restart's lines arrive), edit it, a bad
// entry's field error, remove it with the confirmation, import a config, list sessions,
// and load, validate and apply the config.
//
// Protocol on stdio as dashboard.spec.mjs: "STEP <name>" waits for "ok" on stdin.
// Environment: DASH_URL, DASH_KEY, DASH_CHROMIUM, DASH_USER_DATA, DASH_FIXTURE (the fixture
// binary), DASH_IMPORT (a config file of another client to paste).

import fs from 'node:fs';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const T = 30000;
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function step(name) {
  process.stdout.write(`STEP ${name}\n`);
  const { value, done } = await lines.next();
  if (done || value !== 'ok') throw new Error(`step ${name} failed: ${done ? 'stdin closed' : value}`);
}
const row = (name) => `#servers tbody tr[data-server="${name}"]`;
const textHas = (sel, text) => [sel, text];
async function waitText(page, sel, text, what) {
  await page.waitForFunction(([s, t]) => {
    const e = document.querySelector(s);
    return e !== null && e.textContent.includes(t);
  }, textHas(sel, text), { timeout: T }).catch(async (err) => {
    const got = await page.locator(sel).first().textContent().catch(() => '(none)');
    throw new Error(`${what}: ${sel} does not show ${JSON.stringify(text)} (shows ${JSON.stringify(got)}): ${err.message}`);
  });
}

const context = await chromium.launchPersistentContext(env('DASH_USER_DATA'), {
  executablePath: env('DASH_CHROMIUM'),
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
const errors = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${env('DASH_URL')}/?apikey=${encodeURIComponent(env('DASH_KEY'))}`);
  await page.waitForSelector('body[data-stream="live"]', { timeout: T });

  // Add with the form: a stdio server, approved, with env.
  await page.fill('#srv-name', 'added');
  await page.fill('#srv-command', env('DASH_FIXTURE'));
  await page.fill('#srv-args', `--name\n${env('DASH_MARK')}`);
  await page.fill('#srv-env', 'A=1');
  await page.check('#srv-approve');
  await page.click('#srv-submit');
  await waitText(page, '#form-result', 'Added added.', 'add');
  await page.waitForSelector(`${row('added')}[data-state="ready"]`, { timeout: T });
  // The detail opened by itself: tools and the log's connect line.
  await waitText(page, '#detail-name', 'added', 'detail');
  await page.click('#detail-refresh');
  await page.waitForSelector('#detail-tools tr[data-tool="added:echo"]', { timeout: T });
  await waitText(page, '#detail-log', 'connected:', 'log');
  await waitText(page, '#detail-log-state', 'live', 'log stream');
  await step('check-added');

  // The log is live: a restart's lines arrive without a reload.
  await page.click(`${row('added')} button[data-action="restart"]`);
  await waitText(page, '#detail-log', 'restart requested', 'live log');

  // Edit: the form is filled from the config (values redacted; sent back they keep the
  // current value); change env.
  await page.click('#detail-edit');
  await page.waitForFunction(() => document.querySelector('#srv-name').disabled && document.querySelector('#srv-env').value === 'A=********', null, { timeout: T });
  await page.fill('#srv-env', 'A=2\nB=3');
  await page.click('#srv-submit');
  await waitText(page, '#form-result', 'Updated added.', 'edit');
  await step('check-edited');

  // A bad entry: the field is named, nothing is added.
  await page.fill('#srv-name', 'bad');
  await page.fill('#srv-command', '');
  await page.click('#srv-submit');
  await waitText(page, '#form-errors', 'command', 'field error');
  if (await page.locator(row('bad')).count() !== 0) throw new Error('a bad entry was added');

  // Open the detail from the table, remove with the confirmation.
  await page.click(`${row('added')} td.name`);
  await waitText(page, '#detail-name', 'added', 'detail from the table');
  // A list of servers asked for before the removal's event but answered after it (the
  // daemon lists a removed server as stopping until its process is gone, and the removal's
  // config.reloaded makes the page ask) must not bring the row back, stopping for ever. The
  // page's next list is held until the removal has been shown, then answered with one taken
  // now, plus a server "ghost" whose row says when that list has been applied.
  const stale = await page.evaluate(async (key) => {
    const res = await fetch('/api/v1/servers', { headers: { 'X-API-Key': key }, cache: 'no-store' });
    const d = await res.json();
    d.servers.push({ ...d.servers.find((s) => s.name === 'added'), name: 'ghost' });
    return JSON.stringify(d);
  }, env('DASH_KEY'));
  let shown;
  const removalShown = new Promise((resolve) => { shown = resolve; });
  let held = false;
  const serversList = /\/api\/v1\/servers$/;
  await page.route(serversList, async (route) => {
    if (route.request().method() !== 'GET' || held) return route.fallback();
    held = true;
    await removalShown;
    await route.fulfill({ status: 200, contentType: 'application/json', body: stale });
  });
  await page.click('#detail-remove');
  await page.waitForSelector('#detail-confirm:not([hidden])', { timeout: T });
  await page.click('#detail-confirm-yes');
  await page.waitForSelector(row('added'), { state: 'detached', timeout: T });
  shown();
  await page.waitForSelector(row('ghost'), { timeout: T });
  if (await page.locator(row('added')).count() !== 0) throw new Error('a list fetched before the removal brought added back');
  await page.unroute(serversList);
  await waitText(page, '#form-result', 'Removed added.', 'remove');
  if (!(await page.isHidden('#detail'))) throw new Error('the detail of a removed server is still shown');
  await step('check-removed');

  // Import: paste another client's file.
  await page.fill('#import-text', fs.readFileSync(env('DASH_IMPORT'), 'utf8'));
  await page.click('#import-form button[type="submit"]');
  await waitText(page, '#import-result .import-added', 'linear', 'import');
  await page.waitForSelector(row('linear'), { timeout: T });

  // Sessions and config.
  await page.click('#sessions-refresh');
  await page.waitForSelector('#sessions-body tr[data-session]', { timeout: T });
  await page.click('#config-load');
  await page.waitForFunction(() => document.querySelector('#config-text').value.includes('"mcpServers"'), null, { timeout: T });
  await page.click('#config-validate');
  await waitText(page, '#config-result', 'The config is valid.', 'validate');
  await page.fill('#config-text', '{"mcpServers": [{"name": "x", "comand": "y"}]}');
  await page.click('#config-validate');
  await waitText(page, '#config-result', 'comand', 'validate names the field');
  await page.click('#config-load');
  await page.waitForFunction(() => document.querySelector('#config-text').value.includes('"linear"'), null, { timeout: T });
  const cfg = JSON.parse(await page.inputValue('#config-text'));
  cfg.mcpServers = cfg.mcpServers.filter((s) => s.name !== 'linear');
  await page.fill('#config-text', JSON.stringify(cfg, null, 2));
  await page.click('#config-apply');
  await waitText(page, '#config-result', 'removed: linear', 'apply');
  await page.waitForSelector(row('linear'), { state: 'detached', timeout: T });
  await step('check-applied');
  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
  console.log('ok: add, detail with tools and live log, edit, field error, remove, import, sessions, config');
} finally {
  await context.close();
}
process.exit(0);
