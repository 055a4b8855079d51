#!/usr/bin/env python3
"""5xx and 429 storms from the fake Slack while results are being posted: first 150 answers
of 500/502/503, then 100 answers of 429 (Retry-After: 1). The notifier must ride them out:
every acknowledged command answered once, none lost (nothing dead-lettered for a storm)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("slack-storms")
    try:
        st.standard(workers=2, notifiers=1)
        load = fl.Load(st, 200, rate=40).start()
        fl.wait_for(lambda: len(fl.Counts(st, load).answered) >= 20, 60)
        for status in (500, 502, 503):
            st.slack.control({"storm": {"count": 50, "status": status}})
            fl.wait_for(lambda: st.slack.storm["count"] == 0, 120)
        st.slack.control({"rate_limit": {"count": 100, "retry_after": 1}})
        fl.wait_for(lambda: st.slack.rate_limit["count"] == 0, 120)
        rc = fl.finish(st, load, "5xx and 429 storms from the fake Slack", settle_timeout=180)
        bad = [e for e in st.slack.requests() if e["status"] in (429, 500, 502, 503)]
        ok = fl.cqt.check(len(bad) >= 250, "the storms hit the notifier (%d refused posts)"
                          % len(bad))
        return rc | (0 if ok else 1)
    finally:
        st.close()


fl.main(test)
