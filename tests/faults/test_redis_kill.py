#!/usr/bin/env python3
"""kill -9 Redis (AOF appendfsync everysec, as scripts/redis.sh runs it) under load, together
with one of the two workers (a host failing), and start Redis again on the same port from its
AOF minus its last second of writes (what everysec may lose when the host goes down: the AOF
is copied, the load goes on for 25 more calls, and after the kill the copy is put back).
Claims made in that second are gone, and the dead worker's requests are redelivered to the
other one. No acknowledged command may be lost, none may run twice: a missing claim must not
be taken for a fresh one, a claim vanishing mid-call must not end in silence (issue 19
item 4).
# ctest-fixtures: kafka
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("redis-kill", private=("redis",))
    try:
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "delay_ms": 300,
                           "status": 200, "body": {"name": "x", "state": "on"}}])
        st.standard(workers=2, notifiers=1)
        load = fl.Load(st, 200, rate=25).start()
        calls = lambda: len(st.api.requests("/api/v4/features/"))  # noqa: E731
        fl.wait_for(lambda: calls() >= 60, 60)
        st.redis.snapshot()
        n = calls()
        fl.wait_for(lambda: calls() >= n + 25, 30)
        fl.log("kill -9 redis and worker1")
        st.redis.kill9()
        st.kill(st.services[1])
        st.redis.rollback()
        # down while the load goes on (30 more commands sent)
        n = load.sent_so_far()
        fl.wait_for(lambda: load.sent_so_far() >= n + 30, 30)
        fl.log("resuming redis from its AOF (the last second of writes lost)")
        st.redis.resume()
        return fl.finish(st, load, "kill -9 Redis (and a worker), restart it with a second lost",
                         settle_timeout=180)
    finally:
        st.close()


fl.main(test)
