#!/usr/bin/env python3
"""One chat line, received four ways, measured on the wire (docs/10-socketio.md).

A telnet user says `hello` in room `bytes`; four members of that room receive
it: a raw WebSocket on /chat, a server-sent event stream, and socket.io over
its WebSocket transport and over HTTP long polling. For each, this prints the
bytes that carried that one line to the receiver, as read from its socket.

    python3 scripts/measure_socketio.py [HOST] [WEB_PORT] [TELNET_PORT]

Standard library only; every read has a timeout.
"""

import base64
import json
import os
import socket
import sys

HOST = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
WEB = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
TELNET = int(sys.argv[3]) if len(sys.argv) > 3 else 18001
ROOM = "bytes"
LINE = "hello"
WAIT = 10


def connect(port):
    s = socket.create_connection((HOST, port), timeout=WAIT)
    s.settimeout(WAIT)
    return s


class Reader:
    """A socket with a buffer, read only as far as asked."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the connection")
            self.buf += chunk

    def take(self, n):
        self.need(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until(self, marker):
        while marker not in self.buf:
            self.need(len(self.buf) + 1)
        end = self.buf.index(marker) + len(marker)
        return self.take(end)

    def frame(self):
        """One unmasked server frame: (its bytes on the wire, its payload)."""
        head = self.take(2)
        n = head[1] & 0x7F
        ext = b""
        if n == 126:
            ext = self.take(2)
            n = int.from_bytes(ext, "big")
        elif n == 127:
            ext = self.take(8)
            n = int.from_bytes(ext, "big")
        payload = self.take(n)
        return len(head) + len(ext) + n, payload.decode()

    def response(self):
        """One HTTP response with Content-Length: (bytes on the wire, body)."""
        head = self.until(b"\r\n\r\n").decode()
        length = next(int(l.split(":")[1]) for l in head.split("\r\n") if l.lower().startswith("content-length:"))
        body = self.take(length).decode()
        return len(head) + length, body


def send_frame(sock, text):
    """A masked client frame (RFC 6455 §5.3)."""
    data = text.encode()
    mask = os.urandom(4)
    assert len(data) < 126
    sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def websocket(path):
    sock = connect(WEB)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{WEB}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    r = Reader(sock)
    head = r.until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, r


def frame_with(r, text):
    while True:
        size, payload = r.frame()
        if text in payload:
            return size, payload


def http(sock, r, method, target, body=b""):
    sock.sendall(
        f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{WEB}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    return r.response()


# The sender, in the room first.
telnet = connect(TELNET)
tr = Reader(telnet)
tr.until(b"/help for commands.\r\n")
telnet.sendall(f"/nick ann\r\n/join {ROOM}\r\n".encode())
tr.until(f"you joined {ROOM}".encode())

# A raw WebSocket on /chat.
ws, wr = websocket("/chat")
send_frame(ws, f"/join {ROOM}")
frame_with(wr, f"you joined {ROOM}")

# Server-sent events: one stream, one event per line.
sse = connect(WEB)
sse.sendall(f"GET /events?room={ROOM} HTTP/1.1\r\nHost: {HOST}:{WEB}\r\n\r\n".encode())
ser = Reader(sse)
ser.until(b"\r\n\r\n")

# socket.io over WebSocket: open, CONNECT, then the chat.
sio, sr = websocket("/socket.io/?EIO=4&transport=websocket")
sr.frame()
send_frame(sio, "40")
frame_with(sr, '40{"sid"')
send_frame(sio, "42" + json.dumps(["message", f"/join {ROOM}"]))
frame_with(sr, f"you joined {ROOM}")

# socket.io over long polling, the last to join, so nothing else waits for it.
poll = connect(WEB)
pr = Reader(poll)
_, open_packet = http(poll, pr, "GET", "/socket.io/?EIO=4&transport=polling")
sid = json.loads(open_packet[1:])["sid"]
target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
http(poll, pr, "POST", target, b"40")
http(poll, pr, "POST", target, ("42" + json.dumps(["message", f"/join {ROOM}"])).encode())
while f"you joined {ROOM}" not in http(poll, pr, "GET", target)[1]:
    pass

# The line, and what each member receives for it.
poll.sendall(f"GET {target} HTTP/1.1\r\nHost: {HOST}:{WEB}\r\n\r\n".encode())
telnet.sendall(f"{LINE}\r\n".encode())
said = f"[{ROOM}] ann: {LINE}"
rows = []
size, payload = frame_with(wr, said)
rows.append(("WebSocket /chat", size, payload))
event = ser.until(f"{said}\n\n".encode())
event = event[event.rindex(b"id:") :] if b"id:" in event else event
rows.append(("server-sent events", len(event), event.decode().strip().replace("\n", "\\n")))
size, payload = frame_with(sr, said)
rows.append(("socket.io, WebSocket", size, payload))
size, body = pr.response()
rows.append(("socket.io, long polling", size, body))

print(f"the line {said!r} ({len(said)} bytes), as each receiver got it:")
print("| transport | bytes on the wire | what carried it |")
print("| --- | --- | --- |")
for name, size, what in rows:
    print(f"| {name} | {size} | `{what}` |")
for s in (telnet, ws, sse, sio, poll):
    s.close()
