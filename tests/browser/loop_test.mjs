// Drives the page's loop panels in a real headless browser, Chromium or Firefox (driven by
// puppeteer-core, as page_test.mjs drives them), with a telnet client on the side.
//
//   node tests/browser/loop_test.mjs [--browser chromium|firefox] --url http://127.0.0.1:PORT/ \
//        --telnet 127.0.0.1:TCPPORT --shots DIR
//
// The page opens its loop panel (a WebSocket to /loop of its own). A raw TCP client joins
// through the telnet door and says a line. Checks: the line shows as a turn in the timeline,
// with the telnet connection's token and its bytes; the connection's row draws its state
// machine with the current state lit and the kernel's TCP state beside it; when the client
// closes its socket, the row leaves the table and the departure is listed with the kernel's
// view at each step of the server's close. Screenshots of each panel go to DIR
// (loop-panel.png, conns-panel.png).
//
// Every step is a check; the script declares how many there are and ends with
// `browser: N passed, M failed`. Every wait is bounded. Only the parts of the browser API
// that every driver shares are used (launch, goto, click, evaluate, element screenshot).

import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Checks, launchBrowser, WAIT_MS } from './harness.mjs';

const DECLARED_CHECKS = 8;

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    telnet: { type: 'string' },
    shots: { type: 'string' },
    browser: { type: 'string', default: 'chromium' },
  },
});
if (!args.url || !args.telnet || !args.shots || !['chromium', 'firefox'].includes(args.browser)) {
  console.error('usage: node loop_test.mjs [--browser chromium|firefox] --url http://HOST:PORT/ --telnet HOST:PORT --shots DIR');
  process.exit(2);
}

const checks = new Checks(DECLARED_CHECKS);
const check = (name, fn) => checks.check(name, fn);
checks.failOnStrayErrors();

// Polls `fn(arg)` in the page every 50 ms until it returns a truthy value; fails with
// `what` and the last value after WAIT_MS.
async function until(page, what, fn, arg) {
  const deadline = Date.now() + WAIT_MS;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function telnetConnect(hostPort) {
  const i = hostPort.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)) }, () => resolve(socket));
    socket.on('error', reject);
    setTimeout(() => reject(new Error('telnet connect timed out')), WAIT_MS);
  });
}

let browser = null;
let telnet = null;
try {
  let page;
  const errors = [];
  await check(`${args.browser} starts headless and opens a page`, async () => {
    browser = await launchBrowser(args.browser, { viewport: { width: 1280, height: 1000 } });
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
  });

  await check('the page opens the loop panel, fed by /loop', async () => {
    await page.goto(args.url, { timeout: WAIT_MS });
    await page.click('#loop-watch');
    await until(page, 'the panel says it is watching', () => document.querySelector('#loop-state').textContent === 'watching');
    await until(page, 'its own connection in the table, marked', () => document.querySelector('#conns-rows tr.observer') !== null);
  });

  let token = null;
  await check('a telnet client appears in the connection table', async () => {
    telnet = await telnetConnect(args.telnet);
    token = await until(page, 'a line-door row', () => {
      const row = Array.from(document.querySelectorAll('#conns-rows tr')).find((r) => r.cells[1].textContent.startsWith('line'));
      return row && row.dataset.token;
    });
  });

  await check('a telnet line shows as a turn with that token and its bytes', async () => {
    telnet.write('/echo hello loop\r\n');
    // "/echo hello loop\r\n" is 18 bytes in; "hello loop\r\n" 12 out.
    await until(page, `a turn with token ${token} reading 18 bytes`, (t) =>
      Array.from(document.querySelectorAll('#loop-timeline .turn .tok')).some((c) => c.dataset.token === t && c.dataset.in === '18' && c.dataset.out === '12'), token);
  });

  await check("the connection's state machine is drawn with its state lit, and the kernel's view", async () => {
    const row = await page.evaluate((t) => {
      const tr = document.querySelector(`#conns-rows tr[data-token="${t}"]`);
      return tr && {
        kind: tr.querySelector('.sm .kind').textContent,
        steps: Array.from(tr.querySelectorAll('.sm .steps i')).map((i) => i.dataset.state),
        lit: Array.from(tr.querySelectorAll('.sm .steps i.on')).map((i) => i.dataset.state),
        tcp: tr.querySelector('.tcp').dataset.state,
      };
    }, token);
    const want = { kind: 'Line', steps: ['Open', 'Flushing', 'FinSent', 'Done'], lit: ['Open'], tcp: 'ESTABLISHED' };
    if (JSON.stringify(row) !== JSON.stringify(want)) throw new Error(`row ${JSON.stringify(row)}, want ${JSON.stringify(want)}`);
  });

  await check('screenshots of both panels', async () => {
    await (await page.$('#loop-card')).screenshot({ path: path.join(args.shots, 'loop-panel.png') });
    await (await page.$('#conns-card')).screenshot({ path: path.join(args.shots, 'conns-panel.png') });
  });

  await check('a socket closed by the peer leaves the table, its close told', async () => {
    telnet.end();
    await until(page, `row ${token} gone`, (t) => !document.querySelector(`#conns-rows tr[data-token="${t}"]`), token);
    const gone = await until(page, 'its departure listed', (t) => {
      const li = document.querySelector(`#conns-gone li[data-token="${t}"]`);
      return li && li.textContent;
    }, token);
    for (const want of ['peer closed the connection', 'Flushing (CLOSE_WAIT)']) {
      if (!gone.includes(want)) throw new Error(`departure ${JSON.stringify(gone)} lacks ${want}`);
    }
    await (await page.$('#conns-card')).screenshot({ path: path.join(args.shots, 'conns-panel-closed.png') });
  });

  await check('no script error on the page', async () => {
    if (errors.length) throw new Error(errors.join('\n'));
  });
} catch {
  // Reported by the check that failed.
} finally {
  if (telnet) telnet.destroy();
  if (browser) await browser.close().catch(() => {});
}
process.exit(checks.summary() ? 0 : 1);
