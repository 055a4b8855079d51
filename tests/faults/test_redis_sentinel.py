#!/usr/bin/env python3
"""kill -9 the master of a Sentinel-managed Redis under load (issue 14): a master, a replica
and three real redis-sentinel processes (scripts/redis-sentinel.sh, quorum 2, down-after 1 s);
the services only know the sentinels (redis.sentinels + redis.master_name). Direct calls
(300 ms each) and trigger_and_wait pipelines (4 s each) run while the master dies; the
sentinels promote the replica, every service asks them again and reconnects to it. Commands
in flight on the dead connection fail and go through the usual retry / lost-claim path; the
new master has a different run_id, so the worker's Redis epoch moves and a claim missing
after the promotion (async replication may lose the last writes) is answered "outcome
unknown", never run twice. Every acked command is answered once, waiting pipelines resume.
# ctest-fixtures: kafka
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

SH = os.path.join(fl.SCRIPTS, "redis-sentinel.sh")


def sentinel_sh(what, d):
    p = subprocess.run([SH, what, d], capture_output=True, text=True, timeout=90)
    if p.returncode != 0:
        raise RuntimeError("redis-sentinel.sh %s failed:\n%s" % (what, p.stderr[-2000:]))
    return p.stdout.strip()


def test():
    sdir = tempfile.mkdtemp(prefix="cqf-sentinel-data-")
    sentinel_sh("start", sdir)
    st = None
    try:
        with open(os.path.join(sdir, "sentinels")) as f:
            sentinels = f.read().split()
        with open(os.path.join(sdir, "master_port")) as f:
            old_master = int(f.read())
        where = "sentinels: [%s], master_name: cq" % ", ".join('"%s"' % s for s in sentinels)
        st = fl.Stack("redis-sentinel", redis_port=old_master, redis_where=where)
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "delay_ms": 300,
                           "status": 200, "body": {"name": "x", "state": "on"}}])
        st.standard(workers=2, notifiers=1)
        connected = st.log_count(r"master of 'cq' is 127\.0\.0\.1:%d" % old_master)
        fl.cqt.check(connected >= 3, "every worker and notifier found the master through the "
                     "sentinels (%d log lines)" % connected)
        # every 4th command a pipeline (4 s), the others a direct call (300 ms)
        text_of = lambda i: ("pipe fx%d" if i % 4 == 0 else "flag set fx%d") % i  # noqa: E731
        load = fl.Load(st, 200, text_of=text_of, rate=20).start()
        calls = lambda: len(st.api.requests("/api/v4/features/"))  # noqa: E731
        fl.wait_for(lambda: calls() >= 40 and len(st.gitlab.pipelines()) >= 12, 60)
        c = fl.Counts(st, load)
        waiting = [p for p in st.gitlab.pipelines()
                   if not c.answered.get(int(dict(p["variables"])["TAG"][2:]))]
        fl.log("kill -9 the Redis master :%d (%d pipelines waiting, %d calls made)"
               % (old_master, len(waiting), calls()))
        with open(os.path.join(sdir, "master", "redis.pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        t0 = time.time()
        new = fl.wait_for(lambda: sentinel_sh("master", sdir) != str(old_master), 30, 0.1)
        promoted_s = time.time() - t0
        fl.log("sentinels promoted the replica in %.1f s" % promoted_s)
        rc = fl.finish(st, load, "kill -9 the Sentinel-managed Redis master under load",
                       settle_timeout=120)
        new_port = int(sentinel_sh("master", sdir))
        moved = st.log_count(r"master of 'cq' is 127\.0\.0\.1:%d" % new_port)
        ok = fl.cqt.check(new and new_port != old_master, "the replica :%d was promoted" % new_port)
        ok &= fl.cqt.check(len(waiting) > 0, "pipelines were waiting when the master died (%d)"
                           % len(waiting))
        ok &= fl.cqt.check(moved >= 3, "every worker and notifier followed the failover to "
                           ":%d (%d log lines)" % (new_port, moved))
        c = fl.Counts(st, load)
        resumed = [p for p in waiting if c.answered.get(int(dict(p["variables"])["TAG"][2:]))]
        ok &= fl.cqt.check(len(resumed) == len(waiting), "every waiting pipeline was answered "
                           "after the promotion (%d of %d)" % (len(resumed), len(waiting)))
        ctl = subprocess.run([os.path.join(fl.BUILD, "tools", "chatopsctl"), "--config", st.cfg,
                              "pipelines"], capture_output=True, text=True, timeout=30)
        ok &= fl.cqt.check(ctl.returncode == 0 and "no pipelines in flight" in ctl.stdout,
                           "chatopsctl pipelines finds the new master through the sentinels "
                           "(rc %d: %s)" % (ctl.returncode, (ctl.stdout + ctl.stderr)[:200]))
        return rc | (0 if ok else 1)
    finally:
        if st:
            st.close()
        sentinel_sh("stop", sdir)


fl.main(test)
