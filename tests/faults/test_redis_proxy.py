#!/usr/bin/env python3
"""Redis behind a TCP proxy (tests/support/tcpproxy.py, else tests/faults/tcpproxy.py) that
turns slow (200 ms per chunk), then black-holes every connection (a silent peer, as in a
network partition), then resets them all, then passes again, under load. Every acked
command answered once, none lost, no re-run."""
import os
import socket
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

PROXY = next(p for p in (os.path.join(fl.SRC, "tests", "support", "tcpproxy.py"),
                         os.path.join(fl.HERE, "tcpproxy.py")) if os.path.exists(p))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test():
    redis_port = int(fl.cqt.stack_file("redis/port"))
    lp, cp = free_port(), free_port()
    proxy = subprocess.Popen([sys.executable, PROXY, "--listen", "127.0.0.1:%d" % lp,
                              "--target", "127.0.0.1:%d" % redis_port,
                              "--control", "127.0.0.1:%d" % cp], stdout=subprocess.DEVNULL)

    def mode(m, ms=0):
        with urllib.request.urlopen("http://127.0.0.1:%d/mode?m=%s&ms=%d" % (cp, m, ms),
                                    timeout=5) as r:
            fl.log("proxy: %s" % r.read().decode().strip())

    def up():
        try:
            socket.create_connection(("127.0.0.1", cp), timeout=1).close()
            return True
        except OSError:
            return False
    fl.wait_for(up, 20)
    st = fl.Stack("redis-proxy", redis_port=lp)
    try:
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "delay_ms": 200,
                           "status": 200, "body": {"name": "x", "state": "on"}}])
        st.standard(workers=2, notifiers=1)
        direct = fl.Load(st, 200, rate=20).start()
        pipes = fl.Load(st, 20, text_of=lambda i: "pipe fx%d" % i, rate=2, first=1000).start()
        step = lambda k: fl.wait_for(lambda: direct.sent_so_far() >= k, 60)  # noqa: E731
        step(30)
        mode("delay", 200)
        step(70)
        mode("blackhole")
        step(110)
        mode("reset")
        step(130)
        mode("pass")
        return fl.finish(st, [direct, pipes], "Redis through a proxy: delay, black hole, reset",
                         settle_timeout=180)
    finally:
        st.close()
        proxy.terminate()
        proxy.wait()


fl.main(test)
