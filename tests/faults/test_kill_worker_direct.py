#!/usr/bin/env python3
"""kill -9 a worker while it is in the middle of direct calls: the fake API holds every call
for 800 ms, so when the first worker is killed it owns calls in flight; the other worker takes
its partitions over. Each command must end in exactly one final (the killed worker's in-flight
calls as "outcome unknown", never called a second time), none lost."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("kill-worker-direct")
    try:
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "delay_ms": 800,
                           "status": 200, "body": {"name": "x", "state": "on"}}])
        st.standard(workers=2, notifiers=1)
        load = fl.Load(st, 150, rate=30).start()
        # kill once calls are in flight: the API has seen a third of the load; the victim is
        # the worker that has started more calls (the group may still be settling)
        fl.wait_for(lambda: len(st.api.requests("/api/v4/features/")) >= 50, 60)
        victim = max(st.services[1:3], key=lambda w: w.logs().count("allowed flag set"))
        st.kill(victim)
        rc = fl.finish(st, load, "kill -9 a worker mid direct call")
        # the fault hit: the survivor found calls the dead worker had in flight
        n = st.log_count("previous owner died during the call")
        fl.log("requests found mid-call after the kill: %d" % n)
        return rc | (0 if fl.cqt.check(n > 0, "the killed worker had calls in flight") else 1)
    finally:
        st.close()


fl.main(test)
