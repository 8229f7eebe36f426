// dashboard_bulk.spec.mjs drives the dashboard's bulk actions in headless Chromium (run by
// TestDashboardBulk): every server row has a checkbox; "Select failed" checks exactly the
// server that cannot start; adding one ready server and "Restart selected" runs the
// operation over those two, shows its progress and ends with a summary naming the failed
// server.
//
// Environment: DASH_URL, DASH_KEY, DASH_CHROMIUM, DASH_USER_DATA (see dashboard.spec.mjs).

import { env, launch } from './dashboard_browser.mjs';

const T = 30000;
const base = env('DASH_URL');

function expect(cond, what) {
  if (!cond) throw new Error(`expectation failed: ${what}`);
}

const context = await launch();
try {
  const page = context.pages()[0] ?? await context.newPage();
  // bulk.js is held back until the server list has been answered (or 2 s have passed, when
  // the page asks for the list only once every script is in): rows built before bulk.js
  // runs must still get their checkboxes. CI once lost that race by chance.
  let listed;
  const listAnswered = new Promise((resolve) => { listed = resolve; });
  page.on('response', (r) => { if (new URL(r.url()).pathname === '/api/v1/servers') listed(); });
  await context.route('**/dashboard/bulk.js', async (route) => {
    await Promise.race([listAnswered, new Promise((r) => setTimeout(r, 2000))]);
    await route.continue();
  });
  await page.goto(`${base}/?apikey=${encodeURIComponent(env('DASH_KEY'))}`);
  for (const n of ['alpha', 'beta', 'broken']) {
    await page.waitForSelector(`#servers tbody tr[data-server="${n}"] input.bulk-select`, { timeout: T });
  }
  await page.waitForSelector('#servers tbody tr[data-server="broken"][data-state="backoff"], #servers tbody tr[data-server="broken"][data-state="error"]', { timeout: T });
  await page.waitForSelector('#servers tbody tr[data-server="alpha"][data-state="ready"]', { timeout: T });
  expect(await page.isDisabled('button[data-sel-op="restart_all"]'), 'no selection: the actions are disabled');

  await page.click('#bulk-select-failed');
  const checked = await page.$$eval('#servers tbody input.bulk-select:checked', (bs) => bs.map((b) => b.dataset.server));
  expect(JSON.stringify(checked) === '["broken"]', `select failed checks broken only (${checked})`);
  await page.check('#servers tbody tr[data-server="alpha"] input.bulk-select');
  expect((await page.textContent('#bulk-count')) === '2 selected', 'two selected');

  await page.click('button[data-sel-op="restart_all"]');
  await page.waitForFunction(() => /done/.test(document.getElementById('bulk-summary').textContent), null, { timeout: T });
  const summary = await page.textContent('#bulk-summary');
  expect(/restart_all done: 1 failed: broken/.test(summary), `the summary names broken (${summary})`);
  const progress = await page.textContent('#bulk-progress');
  expect(progress === 'restart_all: 1/2 ready, 1 failed, 0 skipped', `progress counts (${progress})`);
  console.log('BULK OK');
} finally {
  await context.close();
}
