'use strict';
// socket.io echo on Node's `socket.io` server, the tutorials' way: each
// 'message' event is answered to its sender alone with 'servermessage'
// (socket.emit). A line `/echo TEXT` is answered with TEXT, as duplex's
// /echo command does, so both servers put the same bytes on the wire.
// WebSocket and polling allowed, no compression (socket.io's default).
// usage: node sio-echo.js HOST:PORT
const http = require('http');
const { Server } = require('socket.io');

const [host, port] = process.argv[2].split(':');
const server = http.createServer();
const io = new Server(server, { serveClient: false, perMessageDeflate: false });
io.on('connection', (socket) => {
  socket.on('message', (line) => {
    const text = typeof line === 'string' && line.startsWith('/echo ') ? line.slice(6) : line;
    socket.emit('servermessage', text);
  });
});
server.listen(Number(port), host, () => console.error(`sio-echo listening on ${host}:${port}`));
