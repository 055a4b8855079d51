#!/usr/bin/env python3
"""Kafka behind a TCP proxy (a private broker that advertises the proxy's port, so every
client connection goes through it): under load the proxy delays every chunk by 1.5 s (a
produce and its acknowledgement then take longer than kafka.produce_timeout_ms), then
black-holes, then resets every connection, then passes again. A command the ingress answered
"was NOT run" must not run (issue 19 item 3: a timed-out message may be persisted; then the
answer must say the outcome is unknown); every acked command answered once.
# ctest-fixtures: redis
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402
import tcpproxy  # noqa: E402  (tests/support/tcpproxy.py, on the path faultlib set)


def test():
    proxy = tcpproxy.start(target="127.0.0.1:1")  # retargeted once kafka.sh chose its port
    st = fl.Stack("kafka-proxy", private=("kafka",), kafka_proxy=proxy)
    try:
        st.standard(workers=1, notifiers=1)
        load = fl.Load(st, 150, rate=15).start()
        step = lambda k: fl.wait_for(lambda: load.sent_so_far() >= k, 60)  # noqa: E731
        step(30)
        fl.log("proxy: delay 1500 ms")
        proxy.mode("delay", 1500)
        step(75)
        fl.log("proxy: black hole")
        proxy.mode("blackhole")
        step(95)
        fl.log("proxy: reset")
        proxy.mode("reset")
        step(105)
        fl.log("proxy: pass")
        proxy.mode("pass")
        return fl.finish(st, load, "Kafka through a proxy: delay, black hole, reset",
                         settle_timeout=240)
    finally:
        st.close()
        proxy.stop()


fl.main(test)
