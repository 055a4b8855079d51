#!/usr/bin/env python3
"""kill -9 Redis (AOF appendfsync everysec, as scripts/redis.sh runs it) under load and start
it again on the same port from its AOF: up to a second of claims may be gone. No acknowledged
command may be lost, none may run twice (a lost claim must not turn into a re-run).
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
        fl.wait_for(lambda: len(st.api.requests("/api/v4/features/")) >= 60, 60)
        fl.log("kill -9 redis")
        st.redis.kill9()
        # down while the load goes on (40 more commands sent)
        n = load.sent_so_far()
        fl.wait_for(lambda: load.sent_so_far() >= n + 40, 30)
        fl.log("resuming redis from its AOF")
        st.redis.resume()
        return fl.finish(st, load, "kill -9 Redis and restart it under load", settle_timeout=180)
    finally:
        st.close()


fl.main(test)
