// dashboard_login.spec.mjs drives the dashboard's "Log in" button in headless Chromium
// (run by TestDashboardOAuthLogin): a needs_auth row shows the button, a click opens the
// authorization URL in a new tab (the test's authorization server redirects at once to the
// daemon's callback), and the row turns ready live, from the event stream. The needs_auth row
// of a self-granting server (auth.grant client_credentials) shows no button but the text
// "logs in by itself".
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
  // A self-granting server's needs_auth row: no Log in (it would be refused), a status text.
  await page.waitForSelector(`${row('machine')}[data-state="needs_auth"]`, { timeout: T });
  if (!(await page.isHidden(`${row('machine')} button[data-action="login"]`))) throw new Error('a Log in button on a client_credentials row');
  const note = await page.textContent(`${row('machine')} .self-grant`);
  if (await page.isHidden(`${row('machine')} .self-grant`) || !/logs in by itself \(client_credentials\)/.test(note || '')) {
    throw new Error(`the client_credentials row does not say it logs in by itself: ${JSON.stringify(note)}`);
  }
  if (!(await page.isHidden(`${row('remote')} .self-grant`))) throw new Error('the self-grant text on a row a user logs in to');
  const button = `${row('remote')} button[data-action="login"]`;
  if (await page.isHidden(button)) throw new Error('no Log in button on a needs_auth row');
  const [tab] = await Promise.all([context.waitForEvent('page', { timeout: T }), page.click(button)]);
  await tab.waitForFunction(() => /Logged in to remote/.test(document.body ? document.body.textContent : ''), null, { timeout: T });
  await page.waitForSelector(`${row('remote')}[data-state="ready"]`, { timeout: T });
  if (!(await page.isHidden(button))) throw new Error('the Log in button is still shown on a ready row');
  console.log('ok: Log in opened the authorization URL in a new tab and the row turned ready; the client_credentials row logs in by itself');
} finally {
  await context.close();
}
