// Runs the classic 1.html checks (classic_checks.mjs) in a real headless browser,
// Chromium or Firefox, started as page_test.mjs starts them (harness.mjs):
//
//   node tests/browser/classic_test.mjs --browser firefox --url http://127.0.0.1:PORT/1.html
//
// duplex must be serving tests/browser/classic with --static. The checks and their verdict
// line work as in every browser script (harness.mjs). Every wait is bounded.

import { parseArgs } from 'node:util';
import { classicChecks } from './classic_checks.mjs';
import { Checks, launchBrowser, WAIT_MS } from './harness.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    browser: { type: 'string', default: 'chromium' },
  },
});
if (!args.url || !['chromium', 'firefox'].includes(args.browser)) {
  console.error('usage: node classic_test.mjs [--browser chromium|firefox] --url http://HOST:PORT/1.html');
  process.exit(2);
}

// The browser's start, the page's checks, and no JavaScript errors.
const checks = new Checks(1 + classicChecks(null, args.url).length + 1);
checks.failOnStrayErrors();
let browser;
const pageErrors = [];
try {
  let page;
  await checks.check(`${args.browser} starts headless and opens a page`, async () => {
    browser = await launchBrowser(args.browser);
    page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  for (const [name, fn] of classicChecks(page, args.url)) await checks.check(name, fn);
  await checks.check('no JavaScript errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
} catch {
  // Reported by the check that failed.
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(checks.summary() ? 0 : 1);
