// Browser half of TestDashboardActivity (activity_test.go): the dashboard's activity panel in
// headless Chromium with playwright-core. The Go test starts the daemon, makes calls, and
// makes one more when the script asks (STEP call), to see it arrive live.
//
// Protocol on stdio as in dashboard.spec.mjs: "STEP <name>" waits for "ok"; "LOG <text>" is
// progress. Environment: DASH_URL, DASH_KEY, DASH_CHROMIUM, DASH_USER_DATA.

import readline from 'node:readline';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('DASH_URL');
const key = env('DASH_KEY');
const T = 30000;
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const log = (text) => process.stdout.write(`LOG ${text}\n`);
async function step(name) {
  process.stdout.write(`STEP ${name}\n`);
  const { value, done } = await lines.next();
  if (done || value !== 'ok') throw new Error(`step ${name} failed: ${done ? 'stdin closed' : value}`);
}
function expect(cond, what) {
  if (!cond) throw new Error(`expectation failed: ${what}`);
}
const rows = (page) => page.$$eval('#activity tbody tr', (trs) => trs.map((tr) => ({
  id: Number(tr.dataset.id),
  cells: [...tr.cells].map((td) => td.textContent),
})));

const context = await chromium.launchPersistentContext(env('DASH_USER_DATA'), {
  executablePath: env('DASH_CHROMIUM'),
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));

  // 1. The recorded calls are listed, newest first.
  await page.goto(`${base}/?apikey=${encodeURIComponent(key)}`);
  await page.waitForFunction(() => document.querySelectorAll('#activity tbody tr').length >= 3, null, { timeout: T });
  let list = await rows(page);
  expect(list.length === 3, `3 rows: ${JSON.stringify(list)}`);
  expect(list[0].id > list[1].id && list[1].id > list[2].id, `newest first: ${list.map((r) => r.id)}`);
  expect(list.some((r) => r.cells[2] === 'alpha' && r.cells[3] === 'echo' && r.cells[4] === 'ok'), `an ok echo row: ${JSON.stringify(list)}`);
  expect(list.some((r) => r.cells[4] === 'tool_error'), 'a tool_error row');
  expect(list.some((r) => r.cells[4] === 'refused (quarantined)'), 'a refused row with its reason');
  log('records listed');

  // 2. Filters: outcome, then server.
  await page.selectOption('#activity-status', 'tool_error');
  await page.waitForFunction(() => {
    const trs = [...document.querySelectorAll('#activity tbody tr')];
    return trs.length === 1 && trs[0].cells[4].textContent === 'tool_error';
  }, null, { timeout: T });
  await page.selectOption('#activity-status', '');
  await page.fill('#activity-server', 'beta');
  await page.waitForFunction(() => {
    const trs = [...document.querySelectorAll('#activity tbody tr')];
    return trs.length === 1 && trs[0].cells[2].textContent === 'beta';
  }, null, { timeout: T });
  await page.fill('#activity-server', '');
  await page.waitForFunction(() => document.querySelectorAll('#activity tbody tr').length === 3, null, { timeout: T });
  log('filters work');

  // 3. A record's detail, with its arguments, shown as text (the hostile one too).
  list = await rows(page);
  const echo = list.find((r) => r.cells[3] === 'echo' && r.cells[4] === 'ok');
  await page.click(`#activity tbody tr[data-id="${echo.id}"]`);
  await page.waitForFunction(() => document.getElementById('activity-detail-json').textContent.includes('"arguments"'), null, { timeout: T });
  const detail = await page.textContent('#activity-detail-json');
  expect(detail.includes('<img src=x onerror=window.__xss=1>'), `detail shows the argument as text: ${detail}`);
  expect(await page.evaluate(() => window.__xss === undefined), 'no script ran from an argument');
  expect(await page.$('#activity-detail img') === null, 'no element made from an argument');
  log('detail shown');

  // 4. A new call appears live, at the top.
  const before = list[0].id;
  await page.waitForSelector('#activity-panel[data-live="true"]', { timeout: T });
  await step('call');
  await page.waitForFunction((id) => {
    const tr = document.querySelector('#activity tbody tr');
    return tr && Number(tr.dataset.id) > id && tr.cells[3].textContent === 'add';
  }, before, { timeout: T });
  log('live record arrived');
  expect(pageErrors.length === 0, `page errors: ${pageErrors}`);
  await step('done');
} finally {
  await context.close();
}
process.exit(0);
