#!/usr/bin/env python3
"""Stop the Kafka broker (SIGTERM) under load and start it again on the same port with its
data: while it is down the ingress must answer "was NOT run" (and those must not run); every
command it acknowledged is answered once, after the broker is back.
# ctest-fixtures: redis
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("broker-restart", private=("kafka",))
    try:
        st.standard(workers=2, notifiers=1)
        load = fl.Load(st, 200, rate=20).start()
        fl.wait_for(lambda: load.sent_so_far() >= 60, 60)
        fl.log("stopping the broker")
        st.kafka.stop()
        # down until the ingress has refused a few commands (or the load has moved on 3 s)
        fl.wait_for(lambda: len(fl.Counts(st, load).refused) >= 5 or
                    load.sent_so_far() >= 120, 30)
        fl.log("resuming the broker")
        st.kafka.resume()
        return fl.finish(st, load, "stop and restart the broker under load", settle_timeout=240)
    finally:
        st.close()


fl.main(test)
