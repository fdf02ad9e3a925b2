// The official socket.io client (npm, pinned in package.json) against
// duplex's /socket.io/, beside a telnet user on the line door:
//
//   node tests/socketio/client_test.mjs --url http://127.0.0.1:PORT --telnet 127.0.0.1:PORT
//
// Each check throws on failure and every wait is bounded (WAIT_MS). The
// script stops at the first failure and ends with `socketio: N passed, M
// failed`; the Rust test (tests/socketio.rs) reads that line.

import { parseArgs } from 'node:util';
import { io } from 'socket.io-client';
import { runChecks, telnet as telnetTo, until } from '../browser/socketio_checks.mjs';

const WAIT_MS = 10_000;
const { values: args } = parseArgs({ options: { url: { type: 'string' }, telnet: { type: 'string' } } });
if (!args.url || !args.telnet) {
  console.error('usage: node client_test.mjs --url http://HOST:PORT --telnet HOST:PORT');
  process.exit(2);
}

// Everything a socket hears, in order, so a check can wait for what it needs.
function listen(socket) {
  const heard = [];
  socket.on('servermessage', (text) => heard.push(text));
  return heard;
}

function connect(options) {
  const socket = io(args.url, { reconnection: false, timeout: WAIT_MS, ...options });
  const heard = listen(socket);
  const failed = [];
  socket.on('connect_error', (e) => failed.push(e.message));
  return { socket, heard, failed };
}

const state = {};
const checks = [
  ['polling connects first, then upgrades to WebSocket', async () => {
    state.a = connect({});
    const { socket } = state.a;
    // The transport the session opened on, and the one it upgraded to,
    // as the client's own events tell them.
    let first;
    let upgraded;
    socket.io.on('open', () => {
      first = socket.io.engine.transport.name;
      socket.io.engine.on('upgrade', (transport) => { upgraded = transport.name; });
    });
    await until(() => socket.connected || state.a.failed.length, 'no connect');
    if (!socket.connected) throw new Error(`connect_error: ${state.a.failed}`);
    if (first !== 'polling') throw new Error(`began on ${first}`);
    await until(() => upgraded === 'websocket', 'no upgrade to websocket');
    if (socket.io.engine.transport.name !== 'websocket') throw new Error(socket.io.engine.transport.name);
  }],
  ['the welcome comes as a servermessage event', async () => {
    await until(() => state.a.heard.some((t) => t.startsWith('* welcome to duplex') && t.includes('socket.io (polling)')),
      `no welcome: ${JSON.stringify(state.a.heard)}`);
  }],
  ['{name, msg} is a chat line under that name, seen by its sender (io.emit)', async () => {
    state.a.socket.emit('message', { name: 'polly', msg: 'hello from polling' });
    await until(() => state.a.heard.includes('[lobby] polly: hello from polling'),
      `no line back: ${JSON.stringify(state.a.heard)}`);
  }],
  ['an event that asks for an ack gets one', async () => {
    const ack = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ack')), WAIT_MS);
      state.a.socket.emit('message', 'with an ack', (reply) => { clearTimeout(timer); resolve(reply); });
    });
    if (!ack || ack.name !== 'polly' || ack.room !== 'lobby') throw new Error(`ack was ${JSON.stringify(ack)}`);
  }],
  ['WebSocket only: no polling at all', async () => {
    state.b = connect({ transports: ['websocket'] });
    const { socket } = state.b;
    await until(() => socket.connected || state.b.failed.length, 'no connect');
    if (!socket.connected) throw new Error(`connect_error: ${state.b.failed}`);
    if (socket.io.engine.transport.name !== 'websocket') throw new Error(socket.io.engine.transport.name);
    socket.emit('message', { name: 'wendy', msg: 'hello from websocket' });
    await until(() => state.b.heard.includes('[lobby] wendy: hello from websocket'),
      `no line back: ${JSON.stringify(state.b.heard)}`);
    await until(() => state.a.heard.includes('[lobby] wendy: hello from websocket'),
      'the polling-born client did not see it');
  }],
  ['a telnet user and both socket.io clients meet in one room', async () => {
    state.t = telnetTo(args.telnet);
    const t = state.t;
    const welcome = await until(() => t.lines.find((l) => l.startsWith('* welcome')), 'no telnet welcome');
    const guest = /your name is ([^,]+)/.exec(welcome)[1];
    t.say('hi from telnet');
    for (const s of [state.a, state.b]) {
      await until(() => s.heard.includes(`[lobby] ${guest}: hi from telnet`), 'telnet line not seen over socket.io');
    }
    state.b.socket.emit('message', 'hi, telnet');
    await until(() => t.lines.includes('[lobby] wendy: hi, telnet'), `telnet saw ${JSON.stringify(t.lines)}`);
  }],
  ['a command answers its sender alone (socket.emit)', async () => {
    state.a.socket.emit('message', '/echo only for polly');
    await until(() => state.a.heard.includes('only for polly'), 'no /echo reply');
    // A room line after it: when wendy sees that, she would have seen the
    // reply before it had it been broadcast.
    state.a.socket.emit('message', 'after the echo');
    await until(() => state.b.heard.includes('[lobby] polly: after the echo'), 'no room line');
    if (state.b.heard.includes('only for polly')) throw new Error('the reply went to the room');
    if (state.t.lines.includes('only for polly')) throw new Error('the reply reached telnet');
  }],
  ['a name already taken is refused to its asker', async () => {
    state.b.socket.emit('message', { name: 'polly', msg: 'am I polly?' });
    await until(() => state.b.heard.includes('! name taken: polly'), `heard ${JSON.stringify(state.b.heard)}`);
    await until(() => state.b.heard.includes('[lobby] wendy: am I polly?'), 'the line itself');
  }],
  ['another namespace gets CONNECT_ERROR', async () => {
    const other = io(`${args.url}/admin`, { reconnection: false, transports: ['websocket'] });
    const message = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connect_error')), WAIT_MS);
      other.on('connect_error', (e) => { clearTimeout(timer); resolve(e.message); });
      other.on('connect', () => { clearTimeout(timer); reject(new Error('connected to /admin')); });
    });
    other.close();
    if (message !== 'Invalid namespace') throw new Error(`said ${message}`);
  }],
  ['a client that disconnects leaves the room', async () => {
    state.b.socket.disconnect();
    await until(() => state.a.heard.includes('* wendy disconnected'), `heard ${JSON.stringify(state.a.heard)}`);
    await until(() => state.t.lines.includes('* wendy disconnected'), 'telnet not told');
  }],
];

const { passed, failed } = await runChecks(checks, 'socketio');
for (const s of [state.a, state.b]) s?.socket.close();
state.t?.conn.destroy();
console.log(`socketio: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed === checks.length ? 0 : 1);
