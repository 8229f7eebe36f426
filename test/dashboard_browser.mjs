// dashboard_browser.mjs: what the dashboard specs share: their environment and the
// headless Chromium they drive (a persistent context on DASH_USER_DATA, a fresh profile).

import { chromium } from 'playwright-core';

// env returns the environment variable, or throws naming it.
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

// launch starts headless Chromium (DASH_CHROMIUM) on the profile DASH_USER_DATA.
export function launch() {
  return chromium.launchPersistentContext(env('DASH_USER_DATA'), {
    executablePath: env('DASH_CHROMIUM'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
}
