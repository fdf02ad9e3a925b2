'use strict';
// WebSocket echo on `ws`, as its README shows it, without permessage-deflate
// and client tracking. bufferutil (installed beside it) does the masking.
// usage: node ws-echo.js HOST:PORT
const { WebSocketServer } = require('ws');

const [host, port] = process.argv[2].split(':');
const server = new WebSocketServer({
  host,
  port: Number(port),
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 64 * 1024 * 1024,
});
server.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on('listening', () => console.error(`ws-echo listening on ${host}:${port}`));
