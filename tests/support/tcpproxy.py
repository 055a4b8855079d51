#!/usr/bin/env python3
"""tcpproxy: a TCP proxy for fault tests (standard library only) that passes, delays,
black-holes or resets the connections between a service and a server (Kafka, Redis, ...).

    python3 tests/support/tcpproxy.py --listen 127.0.0.1:PORT --target HOST:PORT \
        --control 127.0.0.1:CPORT [--mode pass|delay|blackhole|reset] [--ms N]

PORT / CPORT may be 0 (any free port). Once both sockets listen, one JSON line goes to stdout:
    {"listen": "127.0.0.1:41234", "control": "127.0.0.1:41235", "target": "127.0.0.1:9092"}
so a harness can start it on port 0 and read the ports it got (see start() below).

Control (plain HTTP GET on the control port; every answer is a JSON object):
    GET /mode?m=pass              forward bytes as they come (the default)
    GET /mode?m=delay&ms=N        forward every chunk N ms after it arrived, in each direction
                                  (a round trip gains 2N; latency, not a throughput limit;
                                  order kept)
    GET /mode?m=blackhole         accept connections and read their bytes but forward nothing
                                  (in either direction) and, for a new connection, do not even
                                  connect to the target (its bytes wait in the kernel): a
                                  silent network partition. Held
                                  bytes are forwarded, in order, when the mode returns to
                                  pass/delay (TCP would retransmit them after a partition).
    GET /mode?m=reset             RST every open connection (both sides) and every new one
    GET /target?to=HOST:PORT      connections opened from now on go to HOST:PORT (lets a test
                                  start the proxy first and learn its port, e.g. to make a
                                  Kafka broker advertise it)
    GET /stats                    {"mode","ms","target","accepted","active","resets",
                                   "bytes_up","bytes_down","held_up","held_down"}
A mode applies to new and to existing connections at once. up = client -> target.

From Python tests (tests/support on sys.path):
    import tcpproxy
    p = tcpproxy.start(target="127.0.0.1:9092")   # a subprocess; p.port, p.control
    p.mode("blackhole"); p.mode("delay", ms=3000); p.stats(); p.stop()
"""
import argparse
import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import urllib.parse
import urllib.request

MODES = ("pass", "delay", "blackhole", "reset")
CHUNK = 65536
MAX_HELD = 4 << 20  # per direction: past this much held data, stop reading (back-pressure)


def _split(addr):
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("address must be HOST:PORT: %r" % addr)
    return host.strip("[]"), int(port)


class Proxy:
    def __init__(self, target, mode="pass", ms=0):
        self.target = target
        self.mode = mode
        self.ms = ms
        self.changed = asyncio.Event()  # set and replaced on every mode change
        self.conns = set()
        self.stats = {"accepted": 0, "resets": 0, "bytes_up": 0, "bytes_down": 0}

    def set_mode(self, mode, ms):
        self.mode, self.ms = mode, ms
        ev, self.changed = self.changed, asyncio.Event()
        ev.set()
        if mode == "reset":
            for c in list(self.conns):
                c.reset()

    def snapshot(self):
        s = dict(self.stats)
        s.update(mode=self.mode, ms=self.ms, target=self.target, active=len(self.conns),
                 held_up=sum(c.held[0] for c in self.conns),
                 held_down=sum(c.held[1] for c in self.conns))
        return s

    async def wait_change(self):
        await self.changed.wait()

    async def handle(self, reader, writer):
        self.stats["accepted"] += 1
        conn = Conn(self, reader, writer)
        if self.mode == "reset":
            conn.reset()
            return
        self.conns.add(conn)
        try:
            await conn.run()
        finally:
            self.conns.discard(conn)


def _rst(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Conn:
    def __init__(self, proxy, reader, writer):
        self.p = proxy
        self.cr, self.cw = reader, writer
        self.ur = self.uw = None
        self.held = [0, 0]  # bytes read but not yet forwarded, up / down
        self.tasks = []
        self.dead = False

    def reset(self):
        if self.dead:
            return
        self.dead = True
        self.p.stats["resets"] += 1
        for w in (self.cw, self.uw):
            if w is not None:
                _rst(w)
        for t in self.tasks:
            t.cancel()

    async def _until_forwarding(self):
        while self.p.mode == "blackhole" and not self.dead:
            await self.p.wait_change()

    async def run(self):
        loop = asyncio.get_running_loop()
        # a new connection in blackhole mode is held before the target is even dialled
        await self._until_forwarding()
        if self.dead:
            return
        try:
            self.ur, self.uw = await asyncio.open_connection(*_split(self.p.target))
        except OSError:
            _rst(self.cw)
            self.dead = True
            return
        if self.dead:  # reset while dialling
            _rst(self.uw)
            return
        qs = (asyncio.Queue(), asyncio.Queue())
        self.tasks = [loop.create_task(self._read(self.cr, qs[0], 0)),
                      loop.create_task(self._write(self.uw, qs[0], 0)),
                      loop.create_task(self._read(self.ur, qs[1], 1)),
                      loop.create_task(self._write(self.cw, qs[1], 1))]
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if not self.dead:
            self.dead = True
            self.cw.close()
            self.uw.close()

    async def _read(self, r, q, d):
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self.held[d] > MAX_HELD:
                    await asyncio.sleep(0.01)
                data = await r.read(CHUNK)
                self.held[d] += len(data)
                await q.put((loop.time(), data))
                if not data:
                    return
        except (OSError, asyncio.IncompleteReadError):
            await q.put((loop.time(), b""))

    async def _write(self, w, q, d):
        loop = asyncio.get_running_loop()
        try:
            while True:
                t, data = await q.get()
                while True:
                    await self._until_forwarding()
                    if self.p.mode != "delay":
                        break
                    wait = t + self.p.ms / 1000.0 - loop.time()
                    if wait <= 0:
                        break
                    # a mode change cuts the wait short and is re-evaluated
                    try:
                        await asyncio.wait_for(self.p.wait_change(), wait)
                    except asyncio.TimeoutError:
                        pass
                if self.dead:
                    return
                if not data:
                    if w.can_write_eof():
                        w.write_eof()
                    return
                w.write(data)
                await w.drain()
                self.held[d] -= len(data)
                self.p.stats["bytes_up" if d == 0 else "bytes_down"] += len(data)
        except OSError:
            self.reset()


async def control(proxy, reader, writer):
    try:
        line = (await reader.readline()).decode("latin-1").split()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        status, body = 200, {}
        url = urllib.parse.urlsplit(line[1] if len(line) > 1 else "/")
        qs = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/mode":
            m = qs.get("m", "")
            try:
                ms = int(qs.get("ms", "0"))
            except ValueError:
                ms = -1
            if m not in MODES or ms < 0:
                status, body = 400, {"error": "m must be one of %s; ms >= 0" % "|".join(MODES)}
            else:
                proxy.set_mode(m, ms)
                body = proxy.snapshot()
        elif url.path == "/target":
            try:
                _split(qs.get("to", ""))
                proxy.target = qs["to"]
                body = proxy.snapshot()
            except (ValueError, KeyError) as e:
                status, body = 400, {"error": str(e)}
        elif url.path == "/stats":
            body = proxy.snapshot()
        else:
            status, body = 404, {"error": "unknown path"}
        data = json.dumps(body).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % (status, len(data)) + data)
        await writer.drain()
    except (OSError, IndexError):
        pass
    finally:
        writer.close()


async def main(args):
    proxy = Proxy(args.target, args.mode, args.ms)
    lh, lp = _split(args.listen)
    ch, cp = _split(args.control)
    srv = await asyncio.start_server(proxy.handle, lh, lp)
    ctl = await asyncio.start_server(lambda r, w: control(proxy, r, w), ch, cp)
    la = srv.sockets[0].getsockname()
    ca = ctl.sockets[0].getsockname()
    print(json.dumps({"listen": "%s:%d" % (la[0], la[1]), "control": "%s:%d" % (ca[0], ca[1]),
                      "target": args.target}), flush=True)
    async with srv, ctl:
        await asyncio.gather(srv.serve_forever(), ctl.serve_forever())


class Handle:
    """A running tcpproxy subprocess (see start)."""

    def __init__(self, proc, info):
        self.proc = proc
        self.listen = info["listen"]
        self.port = int(self.listen.rpartition(":")[2])
        self.control = info["control"]

    def _get(self, path):
        with urllib.request.urlopen("http://%s%s" % (self.control, path), timeout=5) as r:
            return json.loads(r.read())

    def mode(self, m, ms=0):
        return self._get("/mode?m=%s&ms=%d" % (m, ms))

    def target(self, to):
        return self._get("/target?to=%s" % urllib.parse.quote(to))

    def stats(self):
        return self._get("/stats")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(target, listen="127.0.0.1:0", ctl="127.0.0.1:0", mode="pass", ms=0):
    """Starts a proxy subprocess and returns a Handle once it listens."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--listen", listen,
                             "--target", target, "--control", ctl, "--mode", mode,
                             "--ms", str(ms)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError("tcpproxy did not start (exit %s)" % proc.returncode)
    return Handle(proc, json.loads(line))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--mode", default="pass", choices=MODES)
    ap.add_argument("--ms", type=int, default=0)
    a = ap.parse_args()
    try:
        asyncio.run(main(a))
    except KeyboardInterrupt:
        pass
