// Runs the socket.io checks (socketio_checks.mjs) in a real headless browser,
// Chromium or Firefox, driven by puppeteer-core as page_test.mjs drives them:
//
//   node tests/browser/socketio_test.mjs [--browser firefox] --url http://127.0.0.1:PORT/ \
//        --telnet 127.0.0.1:PORT --page http://127.0.0.1:OTHER/
//
// --url: a duplex serving a folder laid out by scripts/socketio-chat.sh with
// --static; --page: one serving its built-in page (no --static), whose frame
// log is checked on socket.io. The tutorial page's jQuery URL is answered
// from npm's copy (tests/socketio/node_modules/jquery), so the test runs
// offline. Ends with `browser: N passed, M failed`, as page_test.mjs does.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';
import { JQUERY_URL, frameLogChecks, runChecks, socketioChecks } from './socketio_checks.mjs';

const WAIT_MS = 10_000;

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    telnet: { type: 'string' },
    page: { type: 'string' },
    browser: { type: 'string', default: 'chromium' },
  },
});
if (!args.url || !args.telnet || !args.page || !['chromium', 'firefox'].includes(args.browser)) {
  console.error('usage: node socketio_test.mjs [--browser chromium|firefox] --url http://HOST:PORT/ '
    + '--telnet HOST:PORT --page http://HOST:PORT/');
  process.exit(2);
}
const inFirefox = args.browser === 'firefox';
const jquery = readFileSync(fileURLToPath(new URL('../socketio/node_modules/jquery/dist/jquery.min.js', import.meta.url)));

let passed = 0;
let failed = 0;
let browser;
const pageErrors = [];
let page;
const start = [[`${inFirefox ? 'Firefox' : 'Chromium'} starts headless and opens a page`, async () => {
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
  // The tutorial's jQuery comes from a CDN: answered here, that one URL.
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    if (request.url() === JQUERY_URL) {
      request.respond({ status: 200, contentType: 'application/javascript', body: jquery });
    } else {
      request.continue();
    }
  });
}]];
// The checks use only `goto` and `evaluate`, so they can be declared before
// the browser starts, against the page it will open.
const later = {
  goto: (...a) => page.goto(...a),
  evaluate: (...a) => page.evaluate(...a),
};
const checks = [
  ...start,
  ...socketioChecks(later, args.url, args.telnet),
  ...frameLogChecks(later, args.page),
  ['no JavaScript errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  }],
];
try {
  ({ passed, failed } = await runChecks(checks, 'browser'));
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
