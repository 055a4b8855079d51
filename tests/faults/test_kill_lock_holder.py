#!/usr/bin/env python3
"""kill -9 the worker holding an environment lock (issue 16): `flag set` takes the lock
"flags:all" and the fake API holds its call for 30 s; the holder is killed mid-call. While the
lease lasts, commands on the surviving worker are refused naming the holder (not run); once
worker.lock_lease_ms passed without a renewal the lock is gone by itself (never kept forever)
and the next command runs. The killed call ends as "outcome unknown", never called twice."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

LEASE_MS = 4000


def redis(st, *args):
    return subprocess.run(["redis-cli", "-p", str(st.redis_port)] + list(args),
                          capture_output=True, text=True).stdout.strip()


def test():
    st = fl.Stack("kill-lock-holder")
    try:
        st.cfg = st.variant("locked", drop=(
            'reply_template: "{{response.name}} is {{response.state}}"', "worker: {lease_ms"),
            replace={'reply_template: "{{response.name}} is {{response.state}}"':
                     'reply_template: "{{response.name}} is {{response.state}}"\n'
                     '    lock: "flags:all"',
                     "worker: {lease_ms": "worker: {lease_ms: 1500, poll_min_ms: 300, "
                     "poll_max_ms: 1000, lock_lease_ms: %d}" % LEASE_MS})
        key = "fq%s:lock:flags:all" % st.run
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/fx0", "delay_ms": 30000,
                           "status": 200, "body": {"name": "fx0", "state": "on"}}])
        st.standard(workers=2, notifiers=1)
        first = fl.Load(st, 1).start()
        fl.wait_for(lambda: len(st.api.requests("/api/v4/features/fx0")) >= 1, 30)
        holder = [w for w in st.services if w.kind == "worker" and "lock fq" in w.logs()]
        fl.cqt.check(len(holder) == 1, "one worker took the lock (%d)" % len(holder))
        fl.cqt.check(redis(st, "EXISTS", key) == "1", "the lock is held during the call")
        st.kill(holder[0])
        t_kill = time.time()
        during = fl.Load(st, 6, first=1, rate=50).start()
        during.join()
        gone = fl.wait_for(lambda: redis(st, "EXISTS", key) == "0", LEASE_MS / 1000.0 + 5)
        lapse = time.time() - t_kill
        fl.log("the dead holder's lock lapsed %.1f s after the kill (lease %d ms)" %
               (lapse, LEASE_MS))
        fl.cqt.check(gone and lapse <= LEASE_MS / 1000.0 + 3,
                     "the lock lapsed with its lease, not kept (%.1f s)" % lapse)
        # the commands sent during the lease all end first (those on the dead worker's
        # partitions run once it lapsed and hold the lock briefly themselves)
        fl.wait_for(lambda: all(fl.Counts(st, [during]).answered.get(i) for i in range(1, 7)),
                    60, 0.3)
        after = fl.Load(st, 1, first=7).start()
        after.join()
        rc = fl.finish(st, [first, during, after], "kill -9 the lock holder mid call")
        c = fl.Counts(st, [first, during, after])
        held = sum(1 for e in st.slack.requests()
                   if "is held by alice" in str(e.get("body", "")) and "flags:all" in
                   str(e.get("body", "")))
        fl.log("refused naming the dead holder: %d of 6; executed %r" % (held, c.executed))
        ok = fl.cqt.check(held >= 1, "commands during the lease were refused naming the holder")
        ok &= fl.cqt.check(c.executed.get(0) == 1, "the killed call was made once")
        ok &= fl.cqt.check(c.executed.get(7) == 1, "the command after the lapse ran")
        ok &= fl.cqt.check(sum(c.executed.get(i, 0) for i in range(1, 7)) + held <= 7,
                           "a refused command did not run")
        return rc | (0 if ok else 1)
    finally:
        st.close()


fl.main(test)
