// Runs the socket.io checks (socketio_checks.mjs) in a real headless browser,
// Chromium or Firefox, started as every browser script starts them (harness.mjs):
//
//   node tests/browser/socketio_test.mjs [--browser firefox] --url http://127.0.0.1:PORT/ \
//        --telnet 127.0.0.1:PORT --page http://127.0.0.1:OTHER/
//
// --url: a duplex serving a folder laid out by scripts/socketio-chat.sh with
// --static; --page: one serving its built-in page (no --static), whose frame
// log is checked on socket.io. The tutorial page's jQuery URL is answered
// from npm's copy (tests/socketio/node_modules/jquery), so the test runs
// offline. The checks and their verdict line work as in every browser script.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Checks, launchBrowser, WAIT_MS } from './harness.mjs';
import { JQUERY_URL, frameLogChecks, socketioChecks } from './socketio_checks.mjs';

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
const jquery = readFileSync(fileURLToPath(new URL('../socketio/node_modules/jquery/dist/jquery.min.js', import.meta.url)));

let browser;
let page;
const pageErrors = [];
// The checks use only `goto` and `evaluate`, so they can be declared before
// the browser starts, against the page it will open.
const later = {
  goto: (...a) => page.goto(...a),
  evaluate: (...a) => page.evaluate(...a),
};
const pageChecks = [
  ...socketioChecks(later, args.url, args.telnet, args.page),
  ...frameLogChecks(later, args.page),
];
// The browser's start, the pages' checks, and no JavaScript errors.
const checks = new Checks(1 + pageChecks.length + 1);
checks.failOnStrayErrors();
try {
  await checks.check(`${args.browser} starts headless and opens a page`, async () => {
    browser = await launchBrowser(args.browser);
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
  });
  for (const [name, fn] of pageChecks) await checks.check(name, fn);
  await checks.check('no JavaScript errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
} catch {
  // Reported by the check that failed.
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(checks.summary() ? 0 : 1);
