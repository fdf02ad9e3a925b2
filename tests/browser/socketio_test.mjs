// Runs the socket.io tutorial page checks (socketio_checks.mjs) in headless
// Chromium:
//
//   node tests/browser/socketio_test.mjs --url http://127.0.0.1:PORT/ --telnet 127.0.0.1:PORT \
//        --page http://127.0.0.1:OTHER/
//
// --url: a duplex serving a folder laid out by scripts/socketio-chat.sh with
// --static; --page: one serving its built-in page (no --static), whose frame
// log is checked on socket.io. The page's jQuery URL is answered from npm's copy
// (tests/socketio/node_modules/jquery), so the test runs offline. Ends with
// `browser: N passed, M failed`, as page_test.mjs does.

import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { JQUERY_URL, frameLogChecks, runChecks, socketioChecks } from './socketio_checks.mjs';

const { values: args } = parseArgs({ options: { url: { type: 'string' }, telnet: { type: 'string' }, page: { type: 'string' } } });
if (!args.url || !args.telnet || !args.page) {
  console.error('usage: node socketio_test.mjs --url http://HOST:PORT/ --telnet HOST:PORT --page http://HOST:PORT/');
  process.exit(2);
}
const jquery = fileURLToPath(new URL('../socketio/node_modules/jquery/dist/jquery.min.js', import.meta.url));

let passed = 0;
let failed = 0;
let browser;
const pageErrors = [];
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    timeout: 60_000,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.route(JQUERY_URL, (route) => route.fulfill({ path: jquery, contentType: 'application/javascript' }));
  const checks = [...socketioChecks(page, args.url, args.telnet), ...frameLogChecks(page, args.page)];
  checks.push(['no JavaScript errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  }]);
  ({ passed, failed } = await runChecks(checks, 'browser'));
} catch (e) {
  failed++;
  console.log(`FAIL Chromium starts headless\n     ${e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
