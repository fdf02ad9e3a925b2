// Drives duplex's built-in page in a real headless browser, Chromium or Firefox, with a
// telnet client on the side.
//
//   node tests/browser/page_test.mjs --browser firefox --url http://127.0.0.1:PORT/ \
//        --telnet 127.0.0.1:TCPPORT --screenshot /tmp/duplex-page.png
//
// Over TLS, with the pin duplex printed for its self-signed certificate:
//
//   node tests/browser/page_test.mjs --url https://127.0.0.1:TLSPORT/ --spki PIN ...
//
// Chromium then trusts that one key as a learner's would be told to, with
// --ignore-certificate-errors-spki-list (which Chromium honours only with a
// --user-data-dir of its own). Firefox has no such flag: it is started with WebDriver's
// acceptInsecureCerts, for this run only. Either way the page must connect back with wss://.
//
// The page connects to /chat through its own controls; a raw TCP client (node:net) joins
// the same lobby through the telnet door. Each side must see what the other says. Then the
// page switches to /echo and sends a text and a binary message; the test compares what went
// out with what came back as the browser saw them, not as the page's own script judged
// them: in Chromium, as its network layer reports each frame (DevTools protocol); in
// Firefox, whose WebDriver BiDi reports no WebSocket frames, at the WebSocket API itself,
// recorded by a script the test adds before the page's own runs. Then the chat goes over
// each of its transports in turn (server-sent events, long polling, polling every second,
// and back to WebSocket) through the page's own switch, a line crossing each way every
// time, and the cost panel must show what the server counted. Screenshots are taken after
// that, at desktop size (PATH) and phone size (PATH with "-mobile" before the extension).
//
// Every step is a check, and the script declares how many there are. A check that throws
// is a failure, and the checks after it, which depend on it, do not run; the script exits 0
// only if every declared check ran and passed. It ends with `browser: N passed, M failed`.
//
// The browsers come from Debian: /usr/bin/chromium (or CHROMIUM_PATH) and
// /usr/bin/firefox-esr (or FIREFOX_PATH). puppeteer-core drives both without a driver
// binary: Chromium over the DevTools protocol, Firefox over WebDriver BiDi, which it speaks
// natively. Install them with scripts/install-browser.sh. Every wait is bounded.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Checks, launchBrowser, WAIT_MS } from './harness.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    telnet: { type: 'string' },
    screenshot: { type: 'string' },
    spki: { type: 'string' },
    browser: { type: 'string', default: 'chromium' },
  },
});
if (!['chromium', 'firefox'].includes(args.browser)) {
  console.error(`unknown --browser ${args.browser}: chromium or firefox`);
  process.exit(2);
}
const inFirefox = args.browser === 'firefox';
const browserName = inFirefox ? 'Firefox' : 'Chromium';
const overTls = new URL(args.url).protocol === 'https:';
if (!args.url || !args.telnet || !args.screenshot) {
  console.error('usage: node page_test.mjs [--browser chromium|firefox] --url http://HOST:PORT/ --telnet HOST:PORT --screenshot PATH');
  process.exit(2);
}

const mobileShot = (() => {
  const { dir, name, ext } = path.parse(args.screenshot);
  return path.join(dir, `${name}-mobile${ext || '.png'}`);
})();

// How many checks the script runs when all goes well. A run that ends with fewer has
// skipped some, and fails.
const DECLARED_CHECKS = 23 + (overTls ? 1 : 0);

const checks = new Checks(DECLARED_CHECKS);
const check = (name, fn) => checks.check(name, fn);
checks.failOnStrayErrors();
const pageErrors = [];

// Rejects with `what` if `promise` has not settled within WAIT_MS.
function bounded(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS / 1000} s: ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves once `cond()` (which may be async) is true, checking every 20 ms; rejects with
// `what()` after WAIT_MS.
async function waitUntil(cond, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS / 1000} s: ${await what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// A line-oriented telnet client: waitFor(regex) resolves with the first line, received
// so far or later, that matches; lines that have already matched are consumed.
class LineClient {
  constructor(hostPort) {
    const i = hostPort.lastIndexOf(':');
    this.host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(hostPort.slice(i + 1));
    this.lines = [];
    this.waiters = [];
    this.buffer = '';
  }

  connect() {
    return bounded(new Promise((resolve, reject) => {
      this.socket = net.connect({ host: this.host, port: this.port }, resolve);
      this.socket.setEncoding('utf8');
      this.socket.on('error', reject);
      this.socket.on('data', (chunk) => this.onData(chunk));
    }), `TCP connect to ${this.host}:${this.port}`);
  }

  onData(chunk) {
    this.buffer += chunk;
    let m;
    while ((m = this.buffer.match(/\r\n|\n|\r/))) {
      this.lines.push(this.buffer.slice(0, m.index));
      this.buffer = this.buffer.slice(m.index + m[0].length);
    }
    this.waiters = this.waiters.filter((w) => !this.tryResolve(w));
  }

  tryResolve(w) {
    const i = this.lines.findIndex((l) => w.re.test(l));
    if (i < 0) return false;
    const [line] = this.lines.splice(i, 1);
    w.resolve(line);
    return true;
  }

  waitFor(re, what) {
    return bounded(new Promise((resolve) => {
      const w = { re, resolve };
      if (!this.tryResolve(w)) this.waiters.push(w);
    }), `${what} (telnet got: ${JSON.stringify(this.lines.slice(-5))})`);
  }

  send(line) {
    this.socket.write(`${line}\r\n`);
  }

  close() {
    if (this.socket) this.socket.destroy();
  }
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let browser = null;
let page = null;
// Chromium's own profile for a pinned run; removed at the end.
let profile = null;
// The test's own record of every WebSocket the page opens, independent of the page's
// script: `await wire.sockets()` gives each one's url and the payloads that went out and
// came in (a string for a text message, a Buffer for a binary one). Set up at launch.
let wire = null;

// The few page calls the checks make, in Playwright's shapes (the harness drove Playwright
// before; Playwright cannot drive Debian's Firefox), over a puppeteer page. Filling a field
// sets its value and fires `input` and `change` as typing would, rather than typing each
// key: the texts have characters (✓, 🚀) that keyboard emulation handles differently in
// each browser, and what is under test is the page, not the emulation.
function adapt(p) {
  return {
    raw: p,
    goto: (url, options) => p.goto(url, options),
    $: (selector) => p.$(selector),
    $eval: (...a) => p.$eval(...a),
    $$eval: (...a) => p.$$eval(...a),
    click: (selector) => p.click(selector),
    waitForSelector: (selector, options) => p.waitForSelector(selector, { timeout: WAIT_MS, ...options }),
    waitForFunction: (fn, arg, options) => p.waitForFunction(fn, { timeout: WAIT_MS, ...options }, arg),
    textContent: (selector) => p.$eval(selector, (n) => n.textContent),
    inputValue: (selector) => p.$eval(selector, (n) => n.value),
    async selectOption(selector, value) {
      const chosen = await p.select(selector, value);
      if (!chosen.includes(value)) throw new Error(`${selector} has no option ${value}`);
    },
    fill: (selector, text) => p.$eval(selector, (n, v) => {
      n.focus();
      n.value = v;
      n.dispatchEvent(new Event('input', { bubbles: true }));
      n.dispatchEvent(new Event('change', { bubbles: true }));
    }, text),
    async press(selector, key) {
      await p.focus(selector);
      await p.keyboard.press(key);
    },
    screenshot: (options) => p.screenshot(options),
    setViewportSize: ({ width, height }) => p.setViewport({ width, height }),
    // Chromium emulates the media feature; Firefox over BiDi cannot, and keeps the scheme
    // it was started with (dark, by preference).
    async emulateMedia({ colorScheme }) {
      if (!inFirefox) await p.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: colorScheme }]);
    },
  };
}

// Chromium: the network layer's own report of each WebSocket message (DevTools protocol).
async function recordFromNetwork(p) {
  const list = [];
  const byId = new Map();
  const cdp = await p.createCDPSession();
  await cdp.send('Network.enable');
  // Opcode 1 is text, 2 binary (RFC 6455 §5.2); control frames are not the page's messages.
  const payload = ({ opcode, payloadData }) => {
    if (opcode === 1) return payloadData;
    if (opcode === 2) return Buffer.from(payloadData, 'base64');
    return undefined;
  };
  cdp.on('Network.webSocketCreated', ({ requestId, url }) => {
    const socket = { url, sent: [], received: [] };
    byId.set(requestId, socket);
    list.push(socket);
  });
  for (const [event, dir] of [['Network.webSocketFrameSent', 'sent'], ['Network.webSocketFrameReceived', 'received']]) {
    cdp.on(event, ({ requestId, response }) => {
      const data = payload(response);
      const socket = byId.get(requestId);
      if (socket && data !== undefined) socket[dir].push(data);
    });
  }
  return { sockets: async () => list };
}

// Firefox: WebDriver BiDi reports no WebSocket frames, so the record is taken at the
// WebSocket API, by a script that runs in the page before the page's own: every socket
// constructed, every message passed to send() and every message event, before the page's
// handlers see it.
async function recordAtTheApi(p) {
  await p.evaluateOnNewDocument(() => {
    const Native = window.WebSocket;
    const record = [];
    Object.defineProperty(window, '__duplexWire', { value: record });
    const bytes = (data) => {
      const view = data instanceof ArrayBuffer ? new Uint8Array(data)
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      let binary = '';
      for (const b of view) binary += String.fromCharCode(b);
      return { binary: btoa(binary) };
    };
    const encode = (data) => (typeof data === 'string' ? { text: data } : bytes(data));
    window.WebSocket = class extends Native {
      #socket;
      constructor(...a) {
        super(...a);
        this.#socket = { url: this.url, sent: [], received: [] };
        record.push(this.#socket);
        this.addEventListener('message', (e) => this.#socket.received.push(encode(e.data)));
      }
      send(data) {
        super.send(data);
        this.#socket.sent.push(encode(data));
      }
    };
  });
  const decode = (m) => ('text' in m ? m.text : Buffer.from(m.binary, 'base64'));
  return {
    async sockets() {
      const list = await p.evaluate(() => window.__duplexWire || []);
      return list.map((s) => ({ url: s.url, sent: s.sent.map(decode), received: s.received.map(decode) }));
    },
  };
}

const telnet = new LineClient(args.telnet);
const token = Math.random().toString(36).slice(2, 8);

// Waits until the page's chat transcript has a line equal to `line`.
async function waitForChatLine(line, what) {
  await page.waitForFunction(
    (want) => Array.from(document.querySelectorAll('#chat-log [data-line]')).some((n) => n.dataset.line === want),
    line, { timeout: WAIT_MS },
  ).catch(async () => {
    const seen = await page.$$eval('#chat-log [data-line]', (ns) => ns.slice(-5).map((n) => n.dataset.line));
    throw new Error(`timed out after ${WAIT_MS / 1000} s: ${what} (page transcript ends with ${JSON.stringify(seen)})`);
  });
}

async function waitForState(name) {
  await page.waitForFunction((n) => document.querySelector('#ready-state').textContent.includes(n), name, { timeout: WAIT_MS })
    .catch(async () => {
      const s = await page.textContent('#ready-state');
      const banner = await page.textContent('#banner').catch(() => '');
      throw new Error(`readyState never showed ${name} (shows "${s.trim()}"; banner: ${banner.trim().replace(/\s+/g, ' ')})`);
    });
}

// The page's WebSocket to /echo, the last one it opened, as recorded so far.
async function echoSocket() {
  const sockets = await wire.sockets();
  const socket = sockets.filter((s) => new URL(s.url).pathname === '/echo').pop();
  if (!socket) throw new Error(`the page opened no WebSocket to /echo (it opened ${JSON.stringify(sockets.map((s) => s.url))})`);
  return socket;
}

function describe(payload) {
  if (payload === undefined) return 'nothing';
  if (typeof payload === 'string') return `text ${JSON.stringify(payload.slice(0, 40))}`;
  return `${payload.length} binary bytes beginning ${payload.subarray(0, 8).toString('hex')}`;
}

async function waitForEcho(kind, count) {
  await page.waitForFunction(([k, n]) => {
    const r = document.querySelector('#echo-result');
    return Number(r.dataset.count) >= n && r.dataset.kind === k;
  }, [kind, count], { timeout: WAIT_MS }).catch(() => {
    throw new Error(`timed out after ${WAIT_MS / 1000} s: no ${kind} echo result`);
  });
  const result = await page.$eval('#echo-result', (r) => ({ match: r.dataset.match, text: r.textContent }));
  if (result.match !== 'true') throw new Error(`${kind} echo did not match: ${result.text}`);
}

let pageName = null;

try {
  await check(`${browserName} starts headless and opens a page`, async () => {
    if (inFirefox) {
      browser = await launchBrowser('firefox', {
        // The self-signed certificate, for this run's profile only.
        acceptInsecureCerts: Boolean(args.spki),
        // 0: pages see prefers-color-scheme: dark, as Chromium's emulation gives them.
        firefoxPrefs: { 'layout.css.prefers-color-scheme.content-override': 0 },
      });
    } else {
      const chromiumArgs = [];
      if (args.spki) {
        // A profile of its own, so the pin is trusted here and nowhere else.
        profile = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-chromium-'));
        chromiumArgs.push(`--ignore-certificate-errors-spki-list=${args.spki}`);
      }
      browser = await launchBrowser('chromium', { chromiumArgs, userDataDir: profile ?? undefined });
    }
    const raw = await browser.newPage();
    raw.setDefaultTimeout(WAIT_MS);
    raw.on('pageerror', (e) => pageErrors.push(e.message));
    wire = inFirefox ? await recordAtTheApi(raw) : await recordFromNetwork(raw);
    if (!inFirefox) await raw.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    page = adapt(raw);
  });

  await check('page loads with its controls', async () => {
    const res = await page.goto(args.url, { waitUntil: 'load', timeout: WAIT_MS });
    if (!res || !res.ok()) throw new Error(`GET ${args.url} answered ${res && res.status()}`);
    for (const id of ['endpoint', 'subprotocol', 'connect', 'disconnect', 'ready-state', 'chat-input', 'chat-send',
      'chat-log', 'rooms', 'members', 'echo-input', 'echo-send-text', 'echo-send-binary', 'echo-result',
      'close-code', 'close-reason', 'close', 'close-info', 'frame-log', 'clock']) {
      if (!(await page.$(`#${id}`))) throw new Error(`missing #${id}`);
    }
    const state = await page.textContent('#ready-state');
    if (!state.includes('CLOSED')) throw new Error(`readyState before connecting shows "${state}"`);
  });

  await check('page connects to /chat and negotiates the chat subprotocol', async () => {
    await page.selectOption('#endpoint', '/chat');
    await page.selectOption('#subprotocol', 'chat');
    await page.click('#connect');
    await waitForState('OPEN');
    const protocol = await page.textContent('#protocol');
    if (!protocol.includes('chat')) throw new Error(`negotiated protocol shows "${protocol}"`);
    await page.waitForFunction(() => !['', '—'].includes(document.querySelector('#my-name').textContent.trim()),
      null, { timeout: WAIT_MS }).catch(() => { throw new Error('the greeting never named the page\'s member'); });
    pageName = (await page.textContent('#my-name')).trim();
    await page.waitForSelector(`#members [data-name="${pageName}"]`, { timeout: WAIT_MS })
      .catch(() => { throw new Error(`the member list never showed ${pageName} (automatic /who)`); });
    await page.waitForSelector('#rooms [data-room="lobby"]', { timeout: WAIT_MS })
      .catch(() => { throw new Error('the room list never showed lobby (automatic /rooms)'); });
  });

  if (overTls) {
    await check('a page served over https connects back with wss://', async () => {
      const urls = (await wire.sockets()).map((s) => s.url);
      if (!urls.length || !urls.every((u) => u.startsWith('wss://'))) {
        throw new Error(`the page opened ${JSON.stringify(urls)}`);
      }
    });
  }

  await check('telnet client joins, renames, and the page sees it', async () => {
    await telnet.connect();
    const greeting = await telnet.waitFor(/^\* welcome to duplex\b/, 'telnet greeting');
    const old = greeting.match(/your name is ([^\s,]+)/);
    if (!old) throw new Error(`greeting does not name the client: ${greeting}`);
    const nick = 'telnetuser';
    telnet.send(`/nick ${nick}`);
    await waitForChatLine(`* ${old[1]} is now known as ${nick}`, 'rename announcement on the page');
    await page.waitForSelector(`#members [data-name="${nick}"]`, { timeout: WAIT_MS })
      .catch(() => { throw new Error(`member list never showed ${nick}`); });
  });

  await check('a line from telnet appears in the page transcript', async () => {
    const text = `hello from telnet ${token}`;
    telnet.send(text);
    await waitForChatLine(`[lobby] telnetuser: ${text}`, 'telnet line on the page');
  });

  await check('a line typed on the page (Enter) reaches the telnet client', async () => {
    const text = `hello from the browser ${token} ✓`;
    await page.fill('#chat-input', text);
    await page.press('#chat-input', 'Enter');
    await telnet.waitFor(new RegExp(`^\\[lobby\\] ${escapeRe(pageName)}: ${escapeRe(text)}$`), 'page line on telnet');
    await waitForChatLine(`[lobby] ${pageName}: ${text}`, 'page line echoed back to the page');
    const value = await page.inputValue('#chat-input');
    if (value !== '') throw new Error(`chat input not cleared after sending: "${value}"`);
  });

  await check('the frame log shows frames in both directions', async () => {
    const dirs = await page.$$eval('#frame-log .frame', (rows) => rows.map((r) => r.dataset.dir));
    if (!dirs.includes('in') || !dirs.includes('out')) throw new Error(`frame log directions: ${[...new Set(dirs)]}`);
  });

  await check('page switches to /echo with echo-protocol', async () => {
    await page.selectOption('#endpoint', '/echo');
    const offered = await page.inputValue('#subprotocol');
    if (offered !== 'echo-protocol') throw new Error(`subprotocol picker shows "${offered}" for /echo`);
    await page.click('#connect');
    await page.waitForFunction(() => document.querySelector('#echo-where').textContent.trim() === 'on /echo', null, { timeout: WAIT_MS })
      .catch(async () => { throw new Error(`the echo tester never became ready on /echo (it says "${await page.textContent('#echo-where')}")`); });
    await waitForState('OPEN');
    const protocol = await page.textContent('#protocol');
    if (!protocol.includes('echo-protocol')) throw new Error(`negotiated protocol shows "${protocol}"`);
  });

  await check('the page saw its chat member leave (telnet got the disconnect)', async () => {
    await telnet.waitFor(new RegExp(`^\\* ${escapeRe(pageName)} (disconnected|left lobby)$`), 'disconnect announcement on telnet');
  });

  await check('text echo matches byte for byte', async () => {
    let socket = await echoSocket();
    const [sentBefore, receivedBefore] = [socket.sent.length, socket.received.length];
    const text = `echo ${token} ✓ ünïcödé 🚀`;
    await page.fill('#echo-input', text);
    await page.click('#echo-send-text');
    // What the test typed is what went out, and what came back, as the browser saw them.
    await waitUntil(async () => (socket = await echoSocket()).received.length > receivedBefore,
      () => `no frame came back on ${socket.url} (sent ${JSON.stringify(socket.sent.slice(sentBefore))})`);
    const sent = socket.sent.slice(sentBefore);
    const received = socket.received.slice(receivedBefore);
    if (sent.length !== 1 || sent[0] !== text) throw new Error(`sent ${JSON.stringify(sent)}, typed ${JSON.stringify(text)}`);
    if (received[0] !== text) throw new Error(`sent ${JSON.stringify(text)}, the echo was ${JSON.stringify(received[0])}`);
    // The page agrees, and its frame log shows the text that came in.
    await waitForEcho('text', 1);
    const shown = await page.$eval('#frame-log .frame.in.text:last-child .f-preview', (n) => n.textContent);
    if (!shown.includes(text)) throw new Error(`the frame log shows ${JSON.stringify(shown)} for the echo`);
  });

  await check('binary echo (random bytes) matches byte for byte', async () => {
    let socket = await echoSocket();
    const [sentBefore, receivedBefore] = [socket.sent.length, socket.received.length];
    await page.fill('#echo-size', '1000');
    await page.selectOption('#echo-binary-kind', 'random');
    await page.click('#echo-send-binary');
    // The page chose the bytes; the test reads them off the wire in both directions.
    await waitUntil(async () => (socket = await echoSocket()).received.length > receivedBefore,
      () => `no frame came back on ${socket.url}`);
    const [sent] = socket.sent.slice(sentBefore);
    const [received] = socket.received.slice(receivedBefore);
    if (!Buffer.isBuffer(sent) || sent.length !== 1000) throw new Error(`sent ${describe(sent)}, not 1000 binary bytes`);
    if (!Buffer.isBuffer(received) || !received.equals(sent)) {
      throw new Error(`sent ${describe(sent)}, the echo was ${describe(received)}`);
    }
    await waitForEcho('binary', 2);
    const rows = await page.$$eval('#frame-log .frame.binary', (rs) => rs.slice(-2).map((r) => ({
      dir: r.dataset.dir, len: r.dataset.len, preview: r.querySelector('.f-preview').textContent,
    })));
    const [out, back] = rows;
    if (!out || out.dir !== 'out' || back.dir !== 'in' || out.len !== '1000' || back.len !== '1000') {
      throw new Error(`frame log's last binary rows: ${JSON.stringify(rows)}`);
    }
    // The browser's permessage-deflate offer was accepted: the page shows the
    // answer, and the log marks both frames (the browser compresses what it
    // sends; 1000 random bytes come back plain, under the threshold).
    // Chromium shows the server's whole answer in `WebSocket.extensions`;
    // Firefox shows the extension's name alone.
    const extensions = await page.$eval('#extensions', (n) => n.textContent);
    const agreed = inFirefox
      ? extensions === 'permessage-deflate'
      : extensions.startsWith('permessage-deflate; server_no_context_takeover');
    if (!agreed) {
      throw new Error(`extensions shown: ${JSON.stringify(extensions)}`);
    }
    await page.waitForFunction(() => [...document.querySelectorAll('#frame-log .frame.binary')].slice(-2)
      .map((r) => r.dataset.rsv1).join() === '1,0', null, { timeout: WAIT_MS });
    // The log's hex preview starts with the bytes the wire carried.
    const hexStart = [...received.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    if (!back.preview.replace(/\s+/g, ' ').toLowerCase().startsWith(hexStart)) {
      throw new Error(`frame log shows ${JSON.stringify(back.preview.slice(0, 40))}, the wire began ${hexStart}`);
    }
  });

  await check('close with code and reason is reported', async () => {
    await page.fill('#close-code', '4000');
    await page.fill('#close-reason', 'done testing');
    await page.click('#close');
    await waitForState('CLOSED');
    await page.waitForFunction(() => /4000/.test(document.querySelector('#close-info').textContent), null, { timeout: WAIT_MS })
      .catch(() => { throw new Error('close info never showed code 4000'); });
    const info = await page.textContent('#close-info');
    if (!info.includes('done testing') || !info.includes('true')) throw new Error(`close info: ${info}`);
  });

  // Back to the chat so the screenshots show a live room next to the echo results.
  await check('page reconnects to /chat and sees the telnet user', async () => {
    await page.selectOption('#endpoint', '/chat');
    await page.click('#connect');
    await waitForState('OPEN');
    await page.waitForSelector('#members [data-name="telnetuser"]', { timeout: WAIT_MS })
      .catch(() => { throw new Error('the member list never showed telnetuser after reconnecting'); });
  });

  await check('the page has a transport switch and a cost panel', async () => {
    for (const id of ['transport', 'transport-websocket', 'transport-sse', 'transport-longpoll', 'transport-poll',
      'transport-name', 'cost-panel']) {
      if (!(await page.$(`#${id}`))) throw new Error(`missing #${id}`);
    }
    const shown = await page.textContent('#transport-name');
    if (!shown.includes('WebSocket')) throw new Error(`the transport in use shows "${shown}"`);
  });

  // The chat over one transport: switch with the page's control, then a line each way.
  const chatOver = async (kind, label) => {
    await page.click(`label[for="transport-${kind}"]`);
    await page.waitForFunction(([k, l]) => {
      const pill = document.querySelector('#transport-name');
      return pill.dataset.transport === k && pill.dataset.health === 'ok' && pill.textContent.includes(l)
        && !document.querySelector('#chat-input').disabled
        && !['', '—'].includes(document.querySelector('#my-name').textContent.trim());
    }, [kind, label], { timeout: WAIT_MS }).catch(async () => {
      const pill = await page.textContent('#transport-name');
      const state = await page.textContent('#transport-state');
      throw new Error(`the chat never came up over ${label} (shows "${pill.trim()}", "${state.trim()}")`);
    });
    const name = (await page.textContent('#my-name')).trim();
    await page.waitForSelector(`#members [data-name="${name}"]`, { timeout: WAIT_MS })
      .catch(() => { throw new Error(`the member list never showed ${name} over ${label} (automatic /who)`); });

    const fromTelnet = `over ${kind} from telnet ${token}`;
    telnet.send(fromTelnet);
    await waitForChatLine(`[lobby] telnetuser: ${fromTelnet}`, `telnet line on the page over ${label}`);

    const fromPage = `over ${kind} from the page ${token} ✓`;
    await page.fill('#chat-input', fromPage);
    await page.press('#chat-input', 'Enter');
    await telnet.waitFor(new RegExp(`^\\[lobby\\] ${escapeRe(name)}: ${escapeRe(fromPage)}$`), `page line over ${label} on telnet`);
    await waitForChatLine(`[lobby] ${name}: ${fromPage}`, `page line back on the page over ${label}`);
    await page.waitForFunction((k) => {
      const cell = document.querySelector(`#cost-panel tr[data-transport="${k}"] td[data-col="delay_last"]`);
      return cell && Number(cell.dataset.n) > 0;
    }, kind, { timeout: WAIT_MS }).catch(() => { throw new Error(`no delay measured for ${label}`); });
    return name;
  };

  const httpNames = [];
  for (const [kind, label] of [['sse', 'Server-sent events'], ['longpoll', 'Long poll'], ['poll', 'Poll every 1 s']]) {
    await check(`chat over ${label}: a line each way with telnet`, async () => {
      httpNames.push(await chatOver(kind, label));
    });
  }

  await check('switching away from an HTTP transport leaves at once (/quit)', async () => {
    await page.click('label[for="transport-websocket"]');
    const last = httpNames[httpNames.length - 1];
    await telnet.waitFor(new RegExp(`^\\* ${escapeRe(last)} (disconnected|left lobby)$`), `${last} leaving, on telnet`);
  });

  await check('chat back over WebSocket: a line each way with telnet', async () => {
    await waitForState('OPEN');
    pageName = await chatOver('websocket', 'WebSocket');
  });

  await check('the cost panel shows what the server counted for every transport used', async () => {
    await page.waitForFunction(() => ['websocket', 'sse', 'longpoll', 'poll'].every((k) => {
      const row = document.querySelector(`#cost-panel tr[data-transport="${k}"]`);
      const delivered = row && row.querySelector('td[data-col="delivered"]');
      const perLine = row && row.querySelector('td[data-col="bytes_per_line"]');
      return delivered && Number(delivered.dataset.value) > 0 && Number(perLine.dataset.value) > 0;
    }) && Number(document.querySelector('#cost-panel tr[data-transport="send"] td[data-col="requests"]').dataset.value) > 0,
    null, { timeout: WAIT_MS }).catch(async () => {
      const rows = await page.$$eval('#cost-panel tbody tr', (trs) => trs.map((tr) => tr.textContent.replace(/\s+/g, ' ')));
      throw new Error(`cost panel: ${JSON.stringify(rows)}`);
    });
    const current = await page.$$eval('#cost-panel tr.current', (trs) => trs.map((tr) => tr.dataset.transport));
    if (current.join() !== 'websocket') throw new Error(`highlighted rows: ${current}`);
    const table = await page.$$eval('#cost-panel tbody tr', (trs) => trs.map((tr) => {
      const v = (c) => tr.querySelector(`td[data-col="${c}"]`).firstChild.textContent.trim();
      return `  ${tr.dataset.transport.padEnd(9)} requests ${v('requests').padStart(5)}  in ${v('bytes_in').padStart(7)}  out ${v('bytes_out').padStart(7)}`
        + `  delivered ${v('delivered').padStart(4)}  B/line ${v('bytes_per_line').padStart(7)}  req/line ${v('requests_per_line').padStart(5)}`
        + `  delay median ${v('delay_median').padStart(8)}  last ${v('delay_last').padStart(8)}`;
    }));
    console.log(table.join('\n'));
  });
  await check('/time on the chat pushes ticks to the clock panel', async () => {
    await page.click('#clock-toggle');
    await page.waitForFunction(() => /^\d\d:\d\d:\d\d$/.test(document.querySelector('#clock-time').textContent),
      null, { timeout: WAIT_MS }).catch(async () => {
      throw new Error(`no "* time ..." tick reached #clock (it shows "${await page.textContent('#clock')}")`);
    });
    const ticks = await page.$$eval('#chat-log [data-line^="* time 2"]', (ns) => ns.length);
    if (ticks) throw new Error('clock ticks should go to the clock panel, not the transcript');
  });

  await check('screenshots at desktop and phone size', async () => {
    await page.screenshot({ path: args.screenshot, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.screenshot({ path: mobileShot, fullPage: true });
    for (const shot of [args.screenshot, mobileShot]) {
      const size = fs.statSync(shot).size;
      if (size < 1000) throw new Error(`${shot} is only ${size} bytes`);
    }
  });
} catch (_) {
  // The failing check has been counted and printed; the rest depend on it and do not run.
  // A screenshot of the moment helps to see why.
  if (page) {
    try { await page.screenshot({ path: args.screenshot, fullPage: true }); } catch (_) { /* best effort */ }
  }
} finally {
  // Whatever happened before, JavaScript errors on the page are worth knowing about.
  await check('no JavaScript errors on the page', async () => {
    if (!page) throw new Error('no page was opened');
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  }).catch(() => {});
  telnet.close();
  if (browser) await bounded(browser.close(), `closing ${browserName}`).catch((e) => console.log(`closing ${browserName}: ${e.message}`));
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
}

console.log(`screenshots: ${args.screenshot} ${mobileShot}`);
process.exit(checks.summary() ? 0 : 1);
