#!/usr/bin/env python3
"""Redis behind a TCP proxy (tests/support/tcpproxy.py) that
turns slow (200 ms per chunk), then black-holes every connection (a silent peer, as in a
network partition), then resets them all, then passes again, under load. Every acked
command answered once, none lost, no re-run."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

import tcpproxy  # noqa: E402  (tests/support/tcpproxy.py, on the path faultlib set)


def test():
    redis_port = int(fl.cqt.stack_file("redis/port"))
    proxy = tcpproxy.start(target="127.0.0.1:%d" % redis_port)

    def mode(m, ms=0):
        fl.log("proxy: %s" % json.dumps(proxy.mode(m, ms)))

    st = fl.Stack("redis-proxy", redis_port=proxy.port)
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
        proxy.stop()


fl.main(test)
