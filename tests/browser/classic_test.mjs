// Runs the classic 1.html checks (classic_checks.mjs) in headless Chromium:
//
//   node tests/browser/classic_test.mjs --url http://127.0.0.1:PORT/1.html
//
// duplex must be serving tests/browser/classic with --static. The script
// declares its checks, stops at the first failure, and ends with
// `browser: N passed, M failed`, as page_test.mjs does.

import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { classicChecks } from './classic_checks.mjs';

const { values: args } = parseArgs({ options: { url: { type: 'string' } } });
if (!args.url) {
  console.error('usage: node classic_test.mjs --url http://HOST:PORT/1.html');
  process.exit(2);
}

let passed = 0;
let failed = 0;
let browser;
const pageErrors = [];
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    // Starting Chromium is the slowest step: on a busy two-core machine the
    // first launch has taken more than 30 s.
    timeout: 60_000,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const checks = classicChecks(page, args.url);
  checks.push(['no JavaScript errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  }]);
  console.log(`browser: checks declared: ${checks.length}`);
  for (const [name, fn] of checks) {
    try {
      await fn();
      passed++;
      console.log(`ok   ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}\n     ${String(e && e.stack ? e.stack : e)}`);
      break;
    }
  }
} catch (e) {
  failed++;
  console.log(`FAIL Chromium starts headless\n     ${e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
