// A /loop observer without a browser: what the page's loop panel costs the
// server, without Chromium's own load beside it. It opens the WebSocket
// (RFC 6455 §4.1, by hand: Node has no client built in), reads every update
// and throws it away, and on SIGTERM says how many bytes it read.
//
//   node bench/loop-observer.mjs 127.0.0.1:8080
import net from 'node:net';

const [host, port] = (process.argv[2] || '127.0.0.1:8080').split(':');
let bytes = 0;
const socket = net.connect(Number(port), host, () => {
  socket.write(
    `GET /loop HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
});
socket.on('data', (chunk) => { bytes += chunk.length; });
socket.on('error', (e) => { console.error(`loop-observer: ${e.message}`); process.exit(1); });
socket.on('close', () => { console.error('loop-observer: the server closed /loop'); process.exit(1); });
process.on('SIGTERM', () => { console.log(`loop-observer: ${bytes} bytes read`); process.exit(0); });
