// Runs the classic 1.html checks (classic_checks.mjs) in a real headless browser,
// Chromium or Firefox, driven by puppeteer-core as page_test.mjs drives them:
//
//   node tests/browser/classic_test.mjs --browser firefox --url http://127.0.0.1:PORT/1.html
//
// duplex must be serving tests/browser/classic with --static. The script declares its
// checks, stops at the first failure, and ends with `browser: N passed, M failed`, as
// page_test.mjs does. Every wait is bounded.

import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';
import { classicChecks } from './classic_checks.mjs';

const WAIT_MS = 10_000;

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
const inFirefox = args.browser === 'firefox';

let passed = 0;
let failed = 0;
let browser;
const pageErrors = [];
// Known before the browser starts, so a failed start still counts as a declared check
// that did not pass.
let declared = 1;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${String(e && e.stack ? e.stack : e)}`);
    throw e;
  }
}

try {
  let page;
  await check(`${inFirefox ? 'Firefox' : 'Chromium'} starts headless and opens a page`, async () => {
    // Starting a browser is the slowest step on a busy two-core machine.
    const both = { headless: true, timeout: 6 * WAIT_MS };
    browser = inFirefox
      ? await puppeteer.launch({
        ...both,
        browser: 'firefox',
        executablePath: process.env.FIREFOX_PATH || '/usr/bin/firefox-esr',
      })
      : await puppeteer.launch({
        ...both,
        browser: 'chrome',
        executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
        pipe: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      });
    page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  const checks = classicChecks(page, args.url);
  checks.push(['no JavaScript errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  }]);
  declared += checks.length;
  for (const [name, fn] of checks) await check(name, fn);
} catch {
  // Reported by check(); the checks after a failure depend on it and do not run.
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(`browser: checks declared: ${declared}`);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed === declared ? 0 : 1);
