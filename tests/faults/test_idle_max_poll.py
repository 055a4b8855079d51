#!/usr/bin/env python3
"""An idle stack past a short max.poll.interval.ms (issue 19 item 6): worker and notifier run
with kafka.max_poll_interval_ms: 10000 (the smallest allowed; session.timeout.ms is 10 s) and
get no message for 25 s.
A consumer polled only when its wake-up fd fires exceeds the interval and leaves the group
(librdkafka logs "maximum poll interval ... exceeded", the partitions are revoked). Must hold:
no partition revoked while idle, and commands sent afterwards are answered at once.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

MAX_POLL_MS = 10000
IDLE_S = 25


def test():
    st = fl.Stack("idle-max-poll", kafka_extra="  max_poll_interval_ms: %d" % MAX_POLL_MS)
    try:
        st.add("ingress")
        consumers = [st.add("worker", ready=False), st.add("notifier", ready=False)]
        for s in consumers:
            if not s.wait_ready(60):
                fl.cqt.check(False, "%s starts with kafka.max_poll_interval_ms %d: %s"
                             % (s.name, MAX_POLL_MS, s.logs()[-400:].strip()))
                s.ended = True
                return fl.cqt.summary(st.dir)
        # a first round, so that both consumers have their partitions and have worked
        first = fl.Load(st, 20, rate=20).start()
        fl.wait_for(lambda: fl.Counts(st, first).settled(), 60)
        before = st.log_count("revoked|maximum poll interval", ("worker", "notifier"))
        fl.log("idle for %d s (max.poll.interval.ms %d)" % (IDLE_S, MAX_POLL_MS))
        time.sleep(IDLE_S)  # the fault itself: nothing happens for this long
        after = st.log_count("revoked|maximum poll interval", ("worker", "notifier"))
        fl.cqt.check(after == before, "no partition revoked and no poll interval exceeded while "
                     "idle (%d new log lines)" % (after - before))
        second = fl.Load(st, 20, rate=20, first=100).start()
        t0 = time.time()
        rc = fl.finish(st, [first, second], "idle past max.poll.interval.ms",
                       expect_all_acked=True, settle_timeout=60)
        fl.log("second round answered %.1f s after it started" % (time.time() - t0))
        return rc
    finally:
        st.close()


fl.main(test)
