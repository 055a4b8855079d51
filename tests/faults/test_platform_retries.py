#!/usr/bin/env python3
"""The platform re-sends a tenth of the commands (same trigger_id, X-Slack-Retry-Num: 1)
right after the first answer, direct calls and pipelines alike: each runs once and is
answered once."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402


def test():
    st = fl.Stack("platform-retries")
    try:
        st.standard(workers=2, notifiers=1)
        direct = fl.Load(st, 200, rate=50, resend=0.1).start()
        pipes = fl.Load(st, 30, text_of=lambda i: "pipe fx%d" % i, rate=15, resend=0.1,
                        first=1000).start()
        return fl.finish(st, [direct, pipes], "platform re-sends a tenth of the commands",
                         expect_all_acked=True)
    finally:
        st.close()


fl.main(test)
