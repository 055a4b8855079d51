#!/usr/bin/env python3
"""fast_sink: a Slack stand-in for the notifier benchmark that is not the bottleneck.

tests/fakes/fake_slack.py (ThreadingHTTPServer: a thread per connection, one GIL shared with
the bench's own producer loop) tops out below what the notifier can send. This sink runs
--procs pre-forked processes, each an asyncio server on one shared listening socket, with a
minimal HTTP/1.1 keep-alive parser (curl sends no Expect: 100-continue). It accepts every
POST: /response/<id> -> 200 "ok", /api/chat.* -> {"ok":true,"channel","ts"}; it checks
nothing (correctness is the integration test's job). Each process records (time, path) of
every request; requests()/count() gather them. Standard library only.
"""
import asyncio
import multiprocessing as mp
import os
import signal
import socket
import time

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_API = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")


def _serve(sock, counts, idx, conn):
    """One worker process: serve sock until told to stop over conn."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    records = []
    loop = asyncio.new_event_loop()
    ts = [0]

    class Proto(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr
            self.buf = b""
            s = tr.get_extra_info("socket")
            if s is not None:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data):
            self.buf += data
            out = []
            while True:
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    break
                head = self.buf[:i]
                low = head.lower()
                cl = 0
                j = low.find(b"\r\ncontent-length:")
                if j >= 0:
                    k = low.find(b"\r\n", j + 2)
                    cl = int(head[j + 17:k if k >= 0 else len(head)])
                end = i + 4 + cl
                if len(self.buf) < end:
                    break
                path = head[:head.find(b"\r\n")].split(b" ")[1].decode("latin-1")
                self.buf = self.buf[end:]
                records.append((time.time(), path))
                if path.startswith("/response/"):
                    counts[idx] += 1
                    out.append(_OK)
                else:
                    ts[0] += 1
                    body = b'{"ok":true,"channel":"C","ts":"1700000000.%06d%02d"}' % (ts[0], idx)
                    out.append(_API % (len(body), body))
            if out:
                self.tr.write(b"".join(out))

    def on_cmd():
        cmd = conn.recv()
        if cmd == "dump":
            conn.send(records)
        elif cmd == "reset":
            records.clear()
            counts[idx] = 0
            conn.send(True)
        elif cmd == "stop":
            loop.stop()

    loop.add_reader(conn.fileno(), on_cmd)
    loop.run_until_complete(loop.create_server(Proto, sock=sock, backlog=1024))
    loop.run_forever()


class FastSink:
    def __init__(self, procs=2):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        ctx = mp.get_context("fork")
        self.counts = ctx.RawArray("q", procs)
        self.conns, self.procs = [], []
        for i in range(procs):
            a, b = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(self.sock, self.counts, i, b), daemon=True)
            self.conns.append(a)
            self.procs.append(p)

    def start(self):
        for p in self.procs:
            p.start()
        return self

    def response_url(self, rid):
        return "%s/response/%s" % (self.url, rid)

    def count(self):
        """Requests to /response/ so far (cheap: shared counters)."""
        return sum(self.counts)

    def requests(self, path_prefix=""):
        out = []
        for c in self.conns:
            c.send("dump")
        for c in self.conns:
            out += [{"t": t, "path": p} for t, p in c.recv() if p.startswith(path_prefix)]
        return out

    def reset(self):
        for c in self.conns:
            c.send("reset")
        for c in self.conns:
            c.recv()

    def stop(self):
        for c in self.conns:
            c.send("stop")
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
        self.sock.close()
