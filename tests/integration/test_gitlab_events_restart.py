#!/usr/bin/env python3
"""GitLab events survive a killed worker (issue 15): the router marks an event's offset done
only after every result it produced was acknowledged by Kafka and the event's uuid was marked
seen, so a SIGKILL in the middle of a stream of hooks loses none of them, and what the next
worker routes again is posted once (the notifier's once-claim per request id: a one-off
event's request id is fixed by its uuid and channel). Real ingress, worker (killed and
restarted), notifier, Kafka and Redis; the hooks as GitLab sends them (gitlab_hooks.py).
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

SRC = os.environ.get("CQ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cqt  # noqa: E402
from cqt import check, wait_for  # noqa: E402
import test_gitlab_events as base  # noqa: E402  (its config, fakes and helpers)

N = 40


def main():
    slack = base.FakeSlack().start()
    feishu = base.FakeFeishu().start()
    cfg, env = base.write_config(slack, feishu)
    p = base.subprocess.run([os.path.join(base.BUILD, "tools", "chatopsctl"), "--config", cfg,
                             "topics", "ensure"], env=dict(os.environ, **env),
                            capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "topics ensured (%s)" % p.stderr.strip())
    ing = cqt.Service("ingress", cfg, "ingress", base.TMP, env=env)
    worker = cqt.Service("worker", cfg, "worker", base.TMP, env=env)
    notifier = cqt.Service("notifier", cfg, "notifier", base.TMP, env=env)
    services = [ing, worker, notifier]
    try:
        for s in services:
            s.wait_ready(60)
        hook = "http://127.0.0.1:%d/gitlab/webhook" % ing.port

        def tags():
            out = []
            for m in base.posts(slack, "CREL"):
                t = base.text_of(m)
                for i in range(N):
                    if "Release v9.%d.0 " % i in t:
                        out.append(i)
            return out
        accepted = []

        def one(i):
            st, _ = base.gitlab_hooks.send(hook, base.HOOK_TOKEN, "release", project="ops/web",
                                           ref="v9.%d.0" % i, object_id=i + 1,
                                           action="create")
            return i if st == 200 else None
        # half at once (the router takes them one by one), then SIGKILL with events in flight
        with ThreadPoolExecutor(max_workers=N // 2) as pool:
            accepted += [i for i in pool.map(one, range(N // 2)) if i is not None]
        wait_for(lambda: len(set(tags())) >= 2, 15)  # routing under way: kill it now
        worker.kill(9)
        routed_before = len(set(tags()))
        accepted += [i for i in map(one, range(N // 2, N)) if i is not None]
        check(len(accepted) == N, "every hook is acknowledged by the ingress while the worker "
              "is down (%d of %d)" % (len(accepted), N))
        time.sleep(1)
        worker.start()
        worker.wait_ready(60)

        check(wait_for(lambda: len(set(tags())) == N, 45),
              "after the restart every release is posted (%d of %d)" % (len(set(tags())), N))
        time.sleep(2)
        got = tags()
        dups = sorted(i for i in set(got) if got.count(i) > 1)
        print("posted before the kill: %d of %d; re-read after the restart and dropped as "
              "seen: %d" % (routed_before, N // 2, len(worker.grep("already posted"))))
        check(len(got) == N and not dups, "each release posted exactly once (%d posts, "
              "duplicates %s)" % (len(got), dups))
    finally:
        for s in services:
            s.stop()
        slack.stop()
        feishu.stop()
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
