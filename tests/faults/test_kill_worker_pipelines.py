#!/usr/bin/env python3
"""kill -9 a worker that owns waiting trigger_and_wait pipelines: 60 pipelines (4 s each) are
triggered across two workers, the first worker is killed while they run; the other takes them
over when their leases lapse. Each command: one pipeline, one final, none lost."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def req_ids(svc, pattern):
    out = set()
    for line in svc.logs().splitlines():
        if pattern in line:
            try:
                out.add(json.loads(line).get("req_id"))
            except ValueError:
                pass
    return out


def test():
    st = fl.Stack("kill-worker-pipelines")
    try:
        st.standard(workers=2, notifiers=1)
        load = fl.Load(st, 60, text_of=lambda i: "pipe fx%d" % i, rate=30).start()
        # kill when every pipeline is triggered and none has ended (they last 4 s): the
        # worker that triggered more of them (the group may still be settling its partitions)
        fl.wait_for(lambda: len(st.gitlab.pipelines()) >= 60, 60)
        workers = sorted(st.services[1:3], key=lambda w: -len(req_ids(w, "triggered in")))
        victim, survivor = workers
        owned = req_ids(victim, "triggered in")
        st.kill(victim)
        rc = fl.finish(st, load, "kill -9 a worker owning waiting pipelines", settle_timeout=180)
        taken = owned & req_ids(survivor, "final delivered")
        fl.log("pipelines the victim triggered: %d, finished by the survivor: %d"
               % (len(owned), len(taken)))
        ok = fl.cqt.check(len(owned) > 0 and len(taken) > 0,
                          "the killed worker owned waiting pipelines that the other finished")
        return rc | (0 if ok else 1)
    finally:
        st.close()


fl.main(test)
