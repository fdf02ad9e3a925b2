// The classic `1.html` (classic/1.html), served by duplex from a folder with
// --static, checked in a real browser. The checks use only what every
// driver's page object has (`goto`, `evaluate`), so any harness can run them
// against any browser:
//
//   import { classicChecks } from './classic_checks.mjs';
//   for (const [name, fn] of classicChecks(page, 'http://127.0.0.1:PORT/1.html')) await check(name, fn);
//
// Each check throws on failure; every wait is bounded (WAIT_MS).

const WAIT_MS = 10_000;

// Resolves with the page's `events` once `want` finds what it needs in
// them, polling inside the page; rejects after WAIT_MS.
async function waitForEvents(page, want, what) {
  const found = await page.evaluate(async ({ want, waitMs }) => {
    const test = new Function('events', `return (${want})(events);`);
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      if (test(window.events || [])) return window.events;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return null;
  }, { want: want.toString(), waitMs: WAIT_MS });
  if (!found) {
    const events = await page.evaluate(() => JSON.stringify(window.events || []));
    throw new Error(`timed out after ${WAIT_MS / 1000} s: ${what}; the page saw ${events}`);
  }
  return found;
}

export function classicChecks(page, url) {
  return [
    ['the classic 1.html loads from the static folder', async () => {
      const response = await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
      const status = response && response.status();
      if (status !== 200) throw new Error(`GET ${url} answered ${status}`);
      const type = response.headers()['content-type'];
      if (type !== 'text/html; charset=utf-8') throw new Error(`served as ${type}`);
      const title = await page.evaluate(() => document.title);
      if (!title.includes('echo-protocol')) throw new Error(`the page's title is "${title}"`);
    }],
    ['it connects back with the echo-protocol subprotocol', async () => {
      const events = await waitForEvents(page, (e) => e.some((x) => x.type === 'open' || x.type === 'error'),
        'the WebSocket never opened');
      const open = events.find((x) => x.type === 'open');
      if (!open) throw new Error(`the WebSocket failed: ${JSON.stringify(events)}`);
      if (open.protocol !== 'echo-protocol') throw new Error(`negotiated "${open.protocol}"`);
      const expected = url.replace(/^http/, 'ws').replace(/\/1\.html$/, '/');
      if (open.url !== expected) throw new Error(`connected to ${open.url}, not ${expected}`);
    }],
    ['its text message comes back unchanged', async () => {
      await waitForEvents(page, (e) => e.some((x) => x.type === 'text' && x.data === 'hello from 1.html'),
        'no text echo');
    }],
    ['its binary message comes back byte for byte', async () => {
      await waitForEvents(page, (e) => e.some((x) => x.type === 'binary'
        && JSON.stringify(x.data) === JSON.stringify([0, 1, 2, 253, 254, 255])), 'no binary echo');
    }],
  ];
}
