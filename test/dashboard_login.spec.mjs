// dashboard_login.spec.mjs drives the dashboard's "Log in" button in headless Chromium
// (run by TestDashboardOAuthLogin): a needs_auth row shows the button, a click opens the
// authorization URL in a new tab (the test's authorization server redirects at once to the
// daemon's callback), and the row turns ready live, from the event stream.
//
// Environment: DASH_URL, DASH_KEY, DASH_CHROMIUM, DASH_USER_DATA (see dashboard.spec.mjs).

import { env, launch } from './dashboard_browser.mjs';

const T = 30000;
const row = (name) => `#servers tbody tr[data-server="${name}"]`;

const context = await launch();
try {
  const page = context.pages()[0] ?? await context.newPage();
  await page.goto(`${env('DASH_URL')}/?apikey=${encodeURIComponent(env('DASH_KEY'))}`);
  await page.waitForSelector(`${row('remote')}[data-state="needs_auth"]`, { timeout: T });
  await page.waitForSelector('body[data-stream="live"]', { timeout: T });
  const button = `${row('remote')} button[data-action="login"]`;
  if (await page.isHidden(button)) throw new Error('no Log in button on a needs_auth row');
  const [tab] = await Promise.all([context.waitForEvent('page', { timeout: T }), page.click(button)]);
  await tab.waitForFunction(() => /Logged in to remote/.test(document.body ? document.body.textContent : ''), null, { timeout: T });
  await page.waitForSelector(`${row('remote')}[data-state="ready"]`, { timeout: T });
  if (!(await page.isHidden(button))) throw new Error('the Log in button is still shown on a ready row');
  console.log('ok: Log in opened the authorization URL in a new tab and the row turned ready');
} finally {
  await context.close();
}
