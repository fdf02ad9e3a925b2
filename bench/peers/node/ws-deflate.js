'use strict';
// `ws` with permessage-deflate on, as its README shows it: /echo echoes,
// /chat sends every message to every /chat client (the sender too), as
// duplex's chat does. Every send is compressed for its own connection:
// ws keeps one zlib context per connection and direction.
// usage: node ws-deflate.js HOST:PORT
const { WebSocketServer } = require('ws');

const [host, port] = process.argv[2].split(':');
const server = new WebSocketServer({
  host,
  port: Number(port),
  // ws's defaults, spelled out: the 1 KiB threshold, zlib's default level,
  // and both sides keeping their context.
  perMessageDeflate: { threshold: 1024 },
  maxPayload: 64 * 1024 * 1024,
});
const chat = new Set();
server.on('connection', (ws, request) => {
  ws.on('error', () => {});
  if (request.url === '/chat') {
    chat.add(ws);
    ws.on('close', () => chat.delete(ws));
    ws.on('message', (data, isBinary) => {
      for (const member of chat) member.send(data, { binary: isBinary });
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});
server.on('listening', () => console.error(`ws-deflate listening on ${host}:${port}`));
