#!/usr/bin/env python3
"""kill -9 a worker mid direct call and start it again at once with the same --id (as a
supervisor restarting the unit does): its predecessor's claims carry its own owner id. They
must not be taken for its own busy ones and spin (issue 19 item 7): every command ends in one
final, none lost, none run twice."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("restart-worker-same-id")
    try:
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "delay_ms": 800,
                           "status": 200, "body": {"name": "x", "state": "on"}}])
        st.standard(workers=1, notifiers=1)
        w = st.services[1]
        load = fl.Load(st, 120, rate=30).start()
        fl.wait_for(lambda: len(st.api.requests("/api/v4/features/")) >= 30, 60)
        st.kill(w)
        fl.log("starting %s again with the same --id" % w.name)
        w.ended = False
        w.start()
        fl.cqt.check(w.wait_ready(60), "the restarted worker is ready")
        return fl.finish(st, load, "kill -9 a worker and restart it with the same --id",
                         settle_timeout=60)
    finally:
        st.close()


fl.main(test)
