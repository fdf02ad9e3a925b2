'use strict';
// Line echo over raw TCP on Node's `net`: every complete line that arrives
// is sent back, all the lines of one read in one write.
// usage: node net-lines.js HOST:PORT
const net = require('net');

const [host, port] = process.argv[2].split(':');
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let pending = Buffer.alloc(0);
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    const data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const end = data.lastIndexOf(10) + 1; // just after the last '\n'
    if (end > 0) socket.write(data.subarray(0, end));
    pending = data.subarray(end);
  });
});
server.listen(Number(port), host, () => console.error(`net-lines listening on ${host}:${port}`));
