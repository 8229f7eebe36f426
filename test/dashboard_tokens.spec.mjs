// dashboard_tokens.spec.mjs drives the dashboard's agent tokens panel in headless Chromium
// (run by TestDashboardTokens): a token is created from the form and shown once, it works
// on /mcp, the list shows its scope, a duplicate name shows the daemon's error, dismissing
// the box (and reloading) leaves the token nowhere in the page, and Revoke (confirmed)
// removes the row and cuts the token off.
//
// Environment: DASH_URL, DASH_KEY, DASH_CHROMIUM, DASH_USER_DATA (see dashboard.spec.mjs), and
// DASH_ARTIFACTS, where a screenshot of the panel goes, if set.
// It prints "TOKEN <token>" so that the Go test can check the token afterwards.

import { env, launch } from './dashboard_browser.mjs';

const T = 30000;
const base = env('DASH_URL');

function expect(cond, what) {
  if (!cond) throw new Error(`expectation failed: ${what}`);
}

// initialize on /mcp with the token: the HTTP status.
async function mcpStatus(token) {
  const resp = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'dash-e2e', version: '1' } } }),
  });
  await resp.body?.cancel();
  return resp.status;
}

const context = await launch();
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(`${base}/?apikey=${encodeURIComponent(env('DASH_KEY'))}`);
  await page.waitForSelector('#tokens-empty:not([hidden])', { timeout: T });

  await page.fill('#token-name', 'dash-agent');
  await page.fill('#token-servers', 'alpha');
  await page.fill('#token-tools', 'alpha:echo, alpha:ad?');
  await page.check('#token-readonly');
  await page.fill('#token-expires', '24');
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#token-created:not([hidden])', { timeout: T });
  const token = (await page.textContent('#token-secret')).trim();
  expect(token.startsWith('mcpa_'), `the created box shows a token (${token.slice(0, 5)}...)`);
  console.log(`TOKEN ${token}`);
  expect(await mcpStatus(token) === 200, 'the new token opens /mcp');

  const row = '#tokens tbody tr[data-token="dash-agent"]';
  await page.waitForSelector(row, { timeout: T });
  expect((await page.textContent(`${row} td.tools`)) === 'alpha:echo, alpha:ad?', 'the row shows the tool globs');
  expect((await page.textContent(`${row} td.readonly`)) === 'yes', 'the row shows read-only');
  expect(!(await page.textContent(`${row} td.expires`)).startsWith('-'), 'the row shows the expiry');

  // The same name again: the daemon's 409 message, no second row.
  await page.fill('#token-name', 'dash-agent');
  await page.fill('#token-servers', 'alpha');
  await page.click('#token-form button[type=submit]');
  await page.waitForFunction(() => /exists/.test(document.getElementById('token-error').textContent), null, { timeout: T });
  expect(await page.locator('#tokens tbody tr').count() === 1, 'one row after the duplicate');

  // Shown once: gone from the page once dismissed, and after a reload.
  await page.click('#token-dismiss');
  expect(!(await page.content()).includes(token), 'the token is gone from the page after Done');
  await page.reload();
  await page.waitForSelector(row, { timeout: T });
  expect(!(await page.content()).includes(token), 'the token is not in the page after a reload');

  await page.click(`${row} button[data-action="revoke"]`);
  await page.waitForSelector('#tokens-empty:not([hidden])', { timeout: T });
  expect(await page.locator(row).count() === 0, 'the revoked row is gone');
  expect(await mcpStatus(token) === 401, 'the revoked token is refused on /mcp');
  if (process.env.DASH_ARTIFACTS) {
    await page.screenshot({ path: `${process.env.DASH_ARTIFACTS}/dashboard-tokens.png`, fullPage: true });
  }
  console.log('ok: created (shown once), listed, refused a duplicate, revoked');
} finally {
  await context.close();
}
