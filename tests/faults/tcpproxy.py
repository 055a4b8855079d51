#!/usr/bin/env python3
"""tcpproxy: a TCP proxy for fault tests (standard library only) that passes, delays,
black-holes or resets the connections between a service and Kafka or Redis.

  tcpproxy.py --listen [HOST:]PORT --target HOST:PORT --control [HOST:]PORT
      PORT 0 picks a free one; prints "LISTEN <port> CONTROL <port>" once it accepts.
  HTTP control:  GET /mode?m=pass|delay|blackhole|reset&ms=N   -> 200 "mode M ms N"
                 GET /stats                                   -> JSON counters
    pass       bytes flow both ways
    delay      every chunk waits ms before it is forwarded (both ways)
    blackhole  nothing is forwarded or answered; connections stay open (a dead peer)
    reset      every open connection is closed with RST; new ones are reset at accept
Minimal stand-in written by the fault-suite helper; tests/support/tcpproxy.py (same
interface), when present, is the one to keep. Also importable: Proxy(target).start().
"""
import argparse
import json
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _addr(s, default_host="127.0.0.1"):
    host, _, port = s.rpartition(":")
    return (host or default_host, int(port))


class Proxy:
    def __init__(self, target, listen=("127.0.0.1", 0), control=("127.0.0.1", 0)):
        self.target = target
        self.mode, self.ms = "pass", 0
        self.lock = threading.Lock()
        self.conns = []
        self.stats = {"accepted": 0, "reset": 0, "bytes": 0}
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(listen)
        self.lsock.listen(256)
        self.port = self.lsock.getsockname()[1]
        proxy = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                if u.path == "/mode":
                    m = q.get("m", [""])[0]
                    if m not in ("pass", "delay", "blackhole", "reset"):
                        return self._send(400, "m must be pass|delay|blackhole|reset\n")
                    proxy.set_mode(m, int(q.get("ms", ["0"])[0] or 0))
                    return self._send(200, "mode %s ms %d\n" % (m, proxy.ms))
                if u.path == "/stats":
                    with proxy.lock:
                        return self._send(200, json.dumps(dict(proxy.stats, mode=proxy.mode,
                                                               open=len(proxy.conns))))
                return self._send(404, "not found\n")

            def _send(self, st, text):
                data = text.encode()
                self.send_response(st)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.http = ThreadingHTTPServer(control, H)
        self.http.daemon_threads = True
        self.control_port = self.http.server_address[1]

    @staticmethod
    def _rst(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass

    def set_mode(self, m, ms=0):
        with self.lock:
            self.mode, self.ms = m, ms
            conns = list(self.conns) if m == "reset" else []
            if m == "reset":
                self.conns = []
                self.stats["reset"] += len(conns)
        for a, b in conns:
            self._rst(a)
            self._rst(b)

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                mode = self.mode
                self.stats["accepted"] += 1
            if mode == "reset":
                self._rst(c)
                continue
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            u = socket.create_connection(self.target, timeout=5)
            u.settimeout(None)
        except OSError:
            self._rst(c)
            return
        pair = (c, u)
        with self.lock:
            self.conns.append(pair)
        try:
            while True:
                with self.lock:
                    if pair not in self.conns:
                        return
                    mode, ms = self.mode, self.ms
                if mode == "blackhole":
                    time.sleep(0.05)  # hold everything unread: a peer that went silent
                    continue
                r, _, _ = select.select([c, u], [], [], 0.05)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    if mode == "delay" and ms:
                        time.sleep(ms / 1000.0)
                    (u if s is c else c).sendall(data)
                    with self.lock:
                        self.stats["bytes"] += len(data)
        except OSError:
            pass
        finally:
            with self.lock:
                if pair in self.conns:
                    self.conns.remove(pair)
            for s in pair:
                try:
                    s.close()
                except OSError:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--control", required=True)
    a = ap.parse_args()
    p = Proxy(_addr(a.target), _addr(a.listen), _addr(a.control)).start()
    print("LISTEN %d CONTROL %d" % (p.port, p.control_port), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
