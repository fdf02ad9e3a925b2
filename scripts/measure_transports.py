#!/usr/bin/env python3
"""Measures what one chat message costs on each of duplex's transports.

Starts duplex on free ports, opens one receiver per transport in the lobby
(a WebSocket on /chat, a server-sent event stream on /events, a long poller
on /longpoll, a short poller on /poll every 100 ms), and sends N messages
from a telnet client. Then it reads the server's own per-transport counters
(GET /stats, "transports") and prints, per delivered message: HTTP requests,
bytes the server read and bytes it wrote (HTTP heads included), and the
delivery delay each receiver saw (median and worst).

Runs twice: 10-byte messages, then 1 KiB messages, one every 200 ms on
average.

    scripts/measure_transports.py [N]         (default N = 20, at most 999)

DUPLEX_BIN names the server binary (default target/release/duplex). Short
polling runs every 100 ms here, not every second as a page would, so the
script finishes quickly; its delay and request counts scale with the period.
Python 3 standard library only.
"""

import base64
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
POLL_PERIOD = 0.1
# One message every 100 to 300 ms (200 on average, from a fixed seed):
# sparse, as chat is, so each transport pays for the quiet between messages
# too (empty short polls, for one), and never in step with the poller.
SEND_GAPS = random.Random(6455)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DUPLEX_BIN", os.path.join(ROOT, "target", "release", "duplex"))
TRANSPORTS = ["websocket", "sse", "longpoll", "poll"]


def start_server():
    proc = subprocess.Popen(
        [BIN, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, RUST_LOG="duplex=warn"),
    )
    line = proc.stdout.readline()  # duplex listening tcp=A http=B
    fields = dict(part.split("=", 1) for part in line.split()[2:])
    tcp = fields["tcp"].rsplit(":", 1)
    web = fields["http"].rsplit(":", 1)
    return proc, (tcp[0], int(tcp[1])), (web[0], int(web[1]))


class Arrivals:
    """Which message ids each receiver has seen, and when."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {name: {} for name in TRANSPORTS}

    def note(self, transport, text):
        # Chat lines look like "[lobby] guest-1: m0007-xxxx".
        marker = text.find(": m")
        tag = text[marker + 3:marker + 7]
        if marker < 0 or len(tag) != 4 or not tag[1:].isdigit():
            return
        with self.lock:
            self.seen[transport].setdefault(tag, time.monotonic())

    def count(self, transport, run):
        with self.lock:
            return sum(1 for tag in self.seen[transport] if tag.startswith(run))


def websocket_receiver(web, arrivals, stop):
    sock = socket.create_connection(web)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    buf = buf.split(b"\r\n\r\n", 1)[1]
    sock.settimeout(0.2)
    while not stop.is_set():
        # Server frames are never masked: 2 bytes, maybe an extended length.
        while True:
            if len(buf) >= 2:
                length, head = buf[1] & 0x7F, 2
                if length == 126 and len(buf) >= 4:
                    length, head = int.from_bytes(buf[2:4], "big"), 4
                elif length == 127 and len(buf) >= 10:
                    length, head = int.from_bytes(buf[2:10], "big"), 10
                elif length >= 126:
                    break
                if len(buf) >= head + length:
                    if buf[0] & 0x0F == 1:
                        arrivals.note("websocket", buf[head:head + length].decode())
                    buf = buf[head + length:]
                    continue
            break
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            return
        buf += data
    sock.close()


def sse_receiver(web, arrivals, stop):
    sock = socket.create_connection(web)
    sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(0.2)
    buf = b""
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            return
        buf += data
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.decode().split("\n"):
                if line.startswith("data: "):
                    arrivals.note("sse", line[6:])
    sock.close()


def poller(web, arrivals, stop, long):
    """GET /poll (every 100 ms) or GET /longpoll (again at once), on one
    keep-alive connection, following `next` so nothing is read twice."""
    name = "longpoll" if long else "poll"
    conn = http.client.HTTPConnection(*web, timeout=30)
    token, since = None, None
    while not stop.is_set():
        try:
            token, since = poll_once(conn, arrivals, name, long, token, since)
        except (OSError, ValueError, http.client.HTTPException):
            if stop.is_set():
                break
            raise
        if not long:
            stop.wait(POLL_PERIOD)
    conn.close()


def poll_once(conn, arrivals, name, long, token, since):
    """One request; returns the member token and where to read from next."""
    path = "/longpoll" if long else "/poll"
    query = []
    if token:
        query.append(f"token={token}")
    if since is not None:
        query.append(f"since={since}")
    if query:
        path += "?" + "&".join(query)
    conn.request("GET", path)
    body = json.loads(conn.getresponse().read())
    token, since = body["token"], body["next"]
    for message in body["messages"]:
        arrivals.note(name, message["text"])
    return token, since


def drain(sock, stop):
    """Reads what the server sends the telnet sender (its own lines come
    back: a chat line goes to the whole room), so nothing piles up."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            if not sock.recv(65536):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def stats(web):
    conn = http.client.HTTPConnection(*web, timeout=5)
    conn.request("GET", "/stats")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body["transports"]


def diff(after, before):
    return {
        name: {k: after[name][k] - before[name][k] for k in after[name]}
        for name in after
    }


def run(telnet, web, arrivals, run_tag, size):
    """Sends N messages of `size` bytes from the telnet client and waits
    until every receiver has them all. Returns the counters and the delays."""
    before = stats(web)
    sent = {}
    for i in range(N):
        tag = f"{run_tag}{i:03d}"
        text = ("m" + tag + "-").ljust(size, "x")[:size]
        sent[tag] = time.monotonic()
        telnet.sendall(text.encode() + b"\r\n")
        time.sleep(SEND_GAPS.uniform(0.1, 0.3))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(arrivals.count(t, run_tag) >= N for t in TRANSPORTS):
            break
        time.sleep(0.05)
    # Let the pollers' next requests land, so every transport's counters
    # cover the same stretch.
    time.sleep(0.3)
    counted = diff(stats(web), before)
    delays = {}
    for t in TRANSPORTS:
        with arrivals.lock:
            got = [
                (arrivals.seen[t][tag] - sent[tag]) * 1000
                for tag in arrivals.seen[t]
                if tag.startswith(run_tag) and tag in sent
            ]
        delays[t] = got
    return counted, delays


def table(size, counted, delays):
    rows = [
        "| transport | delivered | requests/msg | bytes in/msg | bytes out/msg | delay median | delay max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in TRANSPORTS:
        c = counted[t]
        d = delays[t]
        got = max(c["delivered"], 1)
        rows.append(
            f"| {t} | {c['delivered']} | {c['requests'] / got:.2f} | {c['bytes_in'] / got:.0f} "
            f"| {c['bytes_out'] / got:.0f} | {statistics.median(d) if d else float('nan'):.1f} ms "
            f"| {max(d) if d else float('nan'):.1f} ms |"
        )
    c = counted["telnet"]
    rows.append(
        f"| telnet (sender) | {N} sent | 0 | {c['bytes_in'] / N:.0f} | {c['bytes_out'] / N:.0f} | | |"
    )
    return f"{size}-byte messages, N = {N}:\n\n" + "\n".join(rows)


def main():
    proc, tcp, web = start_server()
    arrivals = Arrivals()
    stop = threading.Event()
    threads = [
        threading.Thread(target=websocket_receiver, args=(web, arrivals, stop), daemon=True),
        threading.Thread(target=sse_receiver, args=(web, arrivals, stop), daemon=True),
        threading.Thread(target=poller, args=(web, arrivals, stop, True), daemon=True),
        threading.Thread(target=poller, args=(web, arrivals, stop, False), daemon=True),
    ]
    try:
        for t in threads:
            t.start()
        # The sender joins before counting starts, so its own "joined"
        # notice is not counted as a delivered message.
        telnet = socket.create_connection(tcp)
        # Send each line at once rather than let Nagle's algorithm hold it
        # back for the server's delayed ACK.
        telnet.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=drain, args=(telnet, stop), daemon=True).start()
        time.sleep(0.5)  # every receiver has joined the lobby
        for run_tag, size in (("a", 10), ("b", 1024)):
            counted, delays = run(telnet, web, arrivals, run_tag, size)
            print(table(size, counted, delays))
            print()
        print(
            f"Short polling every {POLL_PERIOD * 1000:.0f} ms; long polls answered as soon as a line "
            "arrives; bytes are the server's own counts (GET /stats), HTTP heads included."
        )
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
