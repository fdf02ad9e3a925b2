// The tutorials' socket.io chat page (socketio/index.html), served by duplex
// from a --static folder with npm's socket.io-client bundle at
// /socket.io/socket.io.js, checked in a real browser beside a telnet user.
// The checks use only what every driver's page object has (`goto`,
// `evaluate`), so any harness can run them against any browser:
//
//   import { socketioChecks } from './socketio_checks.mjs';
//   for (const [name, fn] of socketioChecks(page, 'http://127.0.0.1:PORT/', '127.0.0.1:TELNET', 'http://127.0.0.1:OTHER/')) await check(name, fn);
//
// The page loads jQuery from its CDN, as the tutorial wrote it: the harness
// answers that one URL (JQUERY_URL) with npm's copy (tests/socketio). Each
// check throws on failure; every wait is bounded (WAIT_MS).

import net from 'node:net';

const WAIT_MS = 10_000;
export const JQUERY_URL = 'https://code.jquery.com/jquery-3.4.1.min.js';

// Waits inside the page until `want(document, window)` returns something
// truthy, and returns it; throws after WAIT_MS saying `what`.
async function waitInPage(page, want, what) {
  const found = await page.evaluate(async ({ want, waitMs }) => {
    const test = new Function('document', 'window', `return (${want})(document, window);`);
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      const value = test(document, window);
      if (value) return value;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return null;
  }, { want: want.toString(), waitMs: WAIT_MS });
  if (!found) {
    const items = await page.evaluate(() => [...document.querySelectorAll('#messages li')].map((li) => li.textContent));
    throw new Error(`timed out after ${WAIT_MS / 1000} s: ${what}; the list shows ${JSON.stringify(items)}`);
  }
  return found;
}

// Runs `checks` ([name, fn] pairs) in order, stopping at the first failure,
// and prints `LABEL: checks declared: N`, `ok`/`FAIL` per check. Returns
// how many passed and failed.
export async function runChecks(checks, label) {
  let passed = 0;
  let failed = 0;
  console.log(`${label}: checks declared: ${checks.length}`);
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
  return { passed, failed };
}

// The line door, as a telnet user: lines in (`lines`), lines out (`say`).
export function telnet(address) {
  const [host, port] = address.split(':');
  const conn = net.connect(Number(port), host);
  const lines = [];
  let partial = '';
  conn.setEncoding('utf8');
  conn.on('data', (data) => {
    partial += data;
    const parts = partial.split('\r\n');
    partial = parts.pop();
    lines.push(...parts);
  });
  return { conn, lines, say: (line) => conn.write(`${line}\r\n`) };
}

// Resolves once `test` holds, polling; throws after WAIT_MS saying `what`.
export async function until(test, what) {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const value = test();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out after ${WAIT_MS / 1000} s: ${what}`);
}

// `otherOrigin`: a second duplex (another port, so another origin), which
// the page reaches over polling through CORS.
export function socketioChecks(page, url, telnetAddress, otherOrigin) {
  const state = {};
  return [
    ['the tutorial page loads from the static folder, with the npm bundle', async () => {
      const response = await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
      const status = response && response.status();
      if (status !== 200) throw new Error(`GET ${url} answered ${status}`);
      const ready = await page.evaluate(() => typeof window.io === 'function' && typeof window.jQuery === 'function');
      if (!ready) throw new Error('io() or jQuery did not load');
    }],
    ['io() connects back, and is welcomed', async () => {
      await waitInPage(page, (d) => [...d.querySelectorAll('#messages li')]
        .some((li) => li.textContent.startsWith('* welcome to duplex')), 'no welcome in the list');
    }],
    ['it upgrades from polling to WebSocket', async () => {
      await waitInPage(page, (d, w) => w.socket.io.engine.transport.name === 'websocket', 'still polling');
    }],
    ['Send puts the line in the room, under the name the page gives', async () => {
      await page.evaluate(() => { document.querySelector('#msg').value = 'hello from the tutorial'; document.querySelector('#send').click(); });
      await waitInPage(page, (d) => [...d.querySelectorAll('#messages li')]
        .some((li) => li.textContent === '[lobby] laney: hello from the tutorial'), 'the line never came back');
    }],
    ['a telnet user in the same room reads it, and is read', async () => {
      state.t = telnet(telnetAddress);
      const t = state.t;
      const welcome = await until(() => t.lines.find((l) => l.startsWith('* welcome')), 'no telnet welcome');
      const guest = /your name is ([^,]+)/.exec(welcome)[1];
      t.say('hello from telnet');
      await waitInPage(page, (d) => [...d.querySelectorAll('#messages li')]
        .some((li) => li.textContent.endsWith(': hello from telnet')), 'the telnet line never arrived');
      await page.evaluate(() => { document.querySelector('#msg').value = 'hi telnet'; document.querySelector('#send').click(); });
      await until(() => t.lines.includes('[lobby] laney: hi telnet'), `telnet saw ${JSON.stringify(t.lines)}`);
      if (!guest) throw new Error('no guest name');
    }],
    ['a command is answered to the page alone (socket.emit)', async () => {
      await page.evaluate(() => { document.querySelector('#msg').value = '/echo robot says hi'; document.querySelector('#send').click(); });
      await waitInPage(page, (d) => [...d.querySelectorAll('#messages li')]
        .some((li) => li.textContent === 'robot says hi'), 'no reply');
      state.t.say('/echo done');
      await until(() => state.t.lines.includes('done'), 'telnet did not answer');
      if (state.t.lines.includes('robot says hi')) throw new Error('the reply reached telnet');
      state.t.conn.destroy();
    }],
    ['the page polls a server on another origin through CORS', async () => {
      // Polling is XMLHttpRequest: without Access-Control-Allow-Origin the
      // browser hides every answer from the page, and io() never connects.
      const got = await page.evaluate(async ({ other, waitMs }) => {
        const s = window.io(other, { transports: ['polling'], reconnection: false, forceNew: true });
        const within = (what) => new Promise((_, reject) => setTimeout(() => reject(new Error(what)), waitMs));
        try {
          await Promise.race([new Promise((resolve, reject) => {
            s.on('connect', resolve);
            s.on('connect_error', (e) => reject(new Error(`connect_error: ${e.message}`)));
          }), within('no connect')]);
          const echoed = new Promise((resolve) => s.on('servermessage', (m) => { if (m === 'across origins') resolve(m); }));
          s.emit('message', '/echo across origins');
          return await Promise.race([echoed, within('no echo')]);
        } finally {
          s.disconnect();
        }
      }, { other: otherOrigin, waitMs: WAIT_MS });
      if (got !== 'across origins') throw new Error(`got ${got}`);
    }],
    ['the page reads the HTTP transports of a server on another origin', async () => {
      const got = await page.evaluate(async ({ other, waitMs }) => {
        const within = (what) => new Promise((_, reject) => setTimeout(() => reject(new Error(what)), waitMs));
        // fetch() rejects with a TypeError when CORS hides the answer.
        const poll = await (await fetch(`${other}poll`)).json();
        const sent = await fetch(`${other}send?token=${poll.token}`, { method: 'POST', body: 'across origins too' });
        const stream = new EventSource(`${other}events`);
        try {
          const member = await Promise.race([new Promise((resolve, reject) => {
            stream.addEventListener('member', (e) => resolve(JSON.parse(e.data)));
            stream.onerror = () => reject(new Error('the event stream failed'));
          }), within('no member event')]);
          return { token: Boolean(poll.token), sent: sent.status, room: member.room };
        } finally {
          stream.close();
        }
      }, { other: otherOrigin, waitMs: WAIT_MS });
      if (!got.token || got.sent !== 200 || got.room !== 'lobby') throw new Error(JSON.stringify(got));
    }],
  ];
}

// The built-in page (served without --static), connected to socket.io's
// WebSocket transport: its frame log decodes each Engine.IO and Socket.IO
// packet beside the raw frame, and the page's chat works over it.
export function frameLogChecks(page, url) {
  const decoded = () => [...document.querySelectorAll('#frame-log .frame')]
    .map((row) => `${row.dataset.dir} ${row.querySelector('.f-preview')?.firstChild?.textContent ?? ''} | ${row.querySelector('.f-decoded')?.textContent ?? ''}`);
  const seen = async (test, what) => {
    try {
      return await waitInPage(page, test, what);
    } catch (e) {
      const rows = await page.evaluate(`(${decoded})()`);
      throw new Error(`${e.message}; the frame log: ${JSON.stringify(rows.slice(-12))}`);
    }
  };
  return [
    ['the built-in page connects to /socket.io/ and decodes the open and CONNECT', async () => {
      const response = await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
      if (!response || response.status() !== 200) throw new Error(`GET ${url} failed`);
      await page.evaluate(() => connectTo('/socket.io/?EIO=4&transport=websocket'));
      await seen((d) => [...d.querySelectorAll('#frame-log .frame.in .f-decoded')]
        .some((x) => x.textContent.startsWith('engine.io open "{"sid"')), 'no decoded open packet');
      await seen((d) => [...d.querySelectorAll('#frame-log .frame.out .f-decoded')]
        .some((x) => x.textContent === 'engine.io message · socket.io CONNECT'), 'no decoded CONNECT sent');
      await seen((d) => [...d.querySelectorAll('#frame-log .frame.in .f-decoded')]
        .some((x) => x.textContent.startsWith('engine.io message · socket.io CONNECT {"sid"')), 'no CONNECT answer');
    }],
    ['a chat line goes out as an EVENT and comes back as one, each decoded', async () => {
      await seen(() => chatLink() && chat.name, 'no welcome read by the page');
      await page.evaluate(() => chatSend(chatLink(), 'hello frames'));
      await seen((d) => [...d.querySelectorAll('#frame-log .frame.out')].some((row) =>
        row.querySelector('.f-preview').firstChild.textContent === '42["message","hello frames"]'
        && row.querySelector('.f-decoded')?.textContent === 'engine.io message · socket.io EVENT "message" ["hello frames"]'),
      'the line did not go out as 42["message",…]');
      await seen((d) => [...d.querySelectorAll('#frame-log .frame.in .f-decoded')].some((x) =>
        /^engine\.io message · socket\.io EVENT "servermessage" \["\[lobby\] guest-\d+: hello frames"\]$/.test(x.textContent)),
      'the line did not come back as a servermessage EVENT');
      await seen((d) => [...d.querySelectorAll('#chat-log *, #chat *')].some((x) => x.textContent.includes('hello frames')),
        'the chat panel does not show it');
    }],
  ];
}
