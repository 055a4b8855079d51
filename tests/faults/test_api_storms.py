#!/usr/bin/env python3
"""5xx and 429 storms from the fake API (direct calls) and the fake GitLab (pipelines):
the API answers 500, then 429 (Retry-After 1), to a stretch of the load; GitLab answers 429
and 503 to triggers before creating anything, then 502 AFTER creating the pipeline (a proxy's
answer), and 500 to status polls. A non-idempotent call may never run twice (issue 19 item 2:
an ambiguous trigger answer must not be re-sent); every acked command ends in one final."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("api-storms")
    try:
        st.standard(workers=2, notifiers=1)
        direct = fl.Load(st, 120, rate=40).start()
        pipes = fl.Load(st, 60, text_of=lambda i: "pipe fx%d" % i, rate=20, first=1000).start()
        calls = lambda: len(st.api.requests("/api/v4/features/"))  # noqa: E731
        fl.wait_for(lambda: calls() >= 20, 60)
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "status": 500,
                           "body": {"message": "500 Internal Server Error"}}])
        n = calls()
        fl.wait_for(lambda: calls() >= n + 25, 60)
        st.api.set_rules([{"method": "POST", "prefix": "/api/v4/features/", "status": 429,
                           "body": {"message": "429 Too Many Requests"}}])
        n = calls()
        fl.wait_for(lambda: calls() >= n + 25, 60)
        st.api.set_rules([])
        st.gitlab.fail("/trigger/pipeline", 429, 5, retry_after=1)
        st.gitlab.fail("/trigger/pipeline", 503, 5)
        st.gitlab.fail("/pipelines/", 500, 40)
        fl.wait_for(lambda: len(st.gitlab.triggers()) >= 25, 60)
        with st.gitlab.ac_lock:
            st.gitlab.after_create["count"] = 5
        rc = fl.finish(st, [direct, pipes], "5xx and 429 storms from the fake API and GitLab",
                       settle_timeout=180)
        return rc
    finally:
        st.close()


fl.main(test)
