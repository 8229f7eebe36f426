// dashboard_tools.spec.mjs drives the dashboard's tool review panel in headless Chromium
// (run by TestDashboardToolReview): the fx row says one tool awaits review; its panel shows
// echo as changed with the pinned and the current description; the switch turns calls off;
// approving echo clears the row's count live; the quarantined server q opens its panel too,
// with its tools listed, and "Approve server" approves it.
//
// Environment: DASH_URL, DASH_KEY, DASH_CHROMIUM, DASH_USER_DATA (see dashboard.spec.mjs),
// DASH_OLD_DESC and DASH_NEW_DESC (echo's pinned and current descriptions).

import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const T = 30000;
const row = (name) => `#servers tbody tr[data-server="${name}"]`;
const tool = (name) => `#review-tools tbody tr[data-tool="${name}"]`;

const context = await chromium.launchPersistentContext(env('DASH_USER_DATA'), {
  executablePath: env('DASH_CHROMIUM'),
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  await page.goto(`${env('DASH_URL')}/?apikey=${encodeURIComponent(env('DASH_KEY'))}`);
  await page.waitForSelector('body[data-stream="live"]', { timeout: T });
  await page.waitForSelector(`${row('fx')}[data-awaiting="1"]`, { timeout: T });
  const fxButton = `${row('fx')} button[data-action="tools"]`;
  if (!/1 to review/.test(await page.textContent(fxButton))) throw new Error('the fx row does not say a tool awaits review');
  await page.waitForFunction(() => document.getElementById('c-review').textContent === '1', null, { timeout: T });

  await page.click(fxButton);
  await page.waitForSelector(`${tool('echo')}[data-approval="changed"]`, { timeout: T });
  await page.waitForSelector(`${tool('calls')}[data-approval="approved"]`, { timeout: T });
  const diff = await page.textContent('#review-tools tr[data-diff-of="echo"]');
  if (!diff.includes('description') || !diff.includes(env('DASH_OLD_DESC')) || !diff.includes(env('DASH_NEW_DESC'))) {
    throw new Error(`the diff of echo does not show both descriptions: ${diff}`);
  }
  if (await page.evaluate(() => window.__xss === 1)) throw new Error('a description ran script');
  console.log('step: changed tool shown with its difference');

  await page.uncheck(`${tool('calls')} input[data-action="switch"]`);
  await page.waitForSelector(`${tool('calls')}[data-disabled="true"]`, { timeout: T });
  console.log('step: calls switched off');

  await page.click(`${tool('echo')} button[data-action="approve-tool"]`);
  await page.waitForSelector(`${tool('echo')}[data-approval="approved"]`, { timeout: T });
  await page.waitForSelector(`${row('fx')}[data-awaiting="0"]`, { timeout: T });
  if (await page.$('#review-tools tr[data-diff-of="echo"]')) throw new Error('the diff stays after the approval');
  console.log('step: echo approved, the row updated live');

  await page.click(`${row('q')} button[data-action="tools"]`);
  await page.waitForSelector('#tool-review[data-server="q"][data-quarantined="true"]', { timeout: T });
  await page.waitForSelector(`${tool('echo')}[data-approval="pending"]`, { timeout: T });
  if (await page.isHidden('#review-approve-server')) throw new Error('no Approve server button for a quarantined server');
  await page.click('#review-approve-server');
  await page.waitForSelector('#tool-review[data-server="q"][data-quarantined="false"]', { timeout: T });
  await page.waitForSelector(`${tool('echo')}[data-approval="approved"]`, { timeout: T });
  await page.waitForFunction(() => {
    const td = document.querySelector('#servers tbody tr[data-server="q"] td.quarantined');
    return td && td.textContent === 'no';
  }, null, { timeout: T });
  console.log('step: quarantined server reviewed and approved');
  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
  console.log('ok');
} finally {
  await context.close();
}
