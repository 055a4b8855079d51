#!/usr/bin/env python3
"""Workers and notifiers added and removed under load (rebalances while calls, pipelines and
posts are in flight): start with one of each, add a second worker and notifier, then stop
(SIGTERM) the first ones, then add a third worker. Every command once, none lost."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("scale-in-out")
    try:
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "delay_ms": 200,
                           "status": 200, "body": {"name": "x", "state": "on"}}])
        st.standard(workers=1, notifiers=1)
        w1, n1 = st.services[1], st.services[2]
        direct = fl.Load(st, 240, rate=20).start()
        pipes = fl.Load(st, 30, text_of=lambda i: "pipe fx%d" % i, rate=3, first=1000).start()
        step = lambda k: fl.wait_for(lambda: direct.sent_so_far() >= k, 60)  # noqa: E731
        step(40)
        st.add("worker", ready=False)
        st.add("notifier", ready=False)
        step(100)
        st.stop_service(w1)
        st.stop_service(n1)
        step(160)
        st.add("worker", ready=False)
        return fl.finish(st, [direct, pipes], "add and remove workers and notifiers under load",
                         settle_timeout=180, expect_all_acked=True)
    finally:
        st.close()


fl.main(test)
