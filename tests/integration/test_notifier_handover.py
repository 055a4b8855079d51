#!/usr/bin/env python3
"""A result is posted once when notifier copies hand results over (issue 19 items 11, 12),
through the real chatops-notifier with the real Kafka + Redis fixtures and the fake Slack:
- drain: SIGTERM while posts are in flight to a slow Slack (slower than the old fixed 10 s
  drain, within http_timeout_ms), then a new copy starts: every result posted exactly once.
- lease: results held behind a 429 Retry-After longer than the once-claim lease
  (notifier.claim_lease_ms), then a second copy joins and the group rebalances: every result
  posted exactly once (the holder renews its claims; the newcomer waits for its verdict).
- and one formatting promise checked through the binary while a stage is up: a Feishu reply
  carrying `<at user_id="all">` typed by a user arrives escaped (entities), never a mention.
Posts are counted per request id from the fake Slack's log; a copy is stopped (drained) before
counting, so nothing it still holds can post after the count.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
import cqt  # noqa: E402
from cqt import check, report, stack_file, wait_for  # noqa: E402
from fake_feishu import FakeFeishu  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

BUILD = os.environ.get("CQ_BUILD_DIR") or sys.exit("CQ_BUILD_DIR not set (run under ctest)")
TOOL = os.path.join(BUILD, "bin", "cqt-produce_result")
BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
TMP = tempfile.mkdtemp(prefix="cqt-handover-")
LEASE_MS = 3000


def control(slack, c):
    urllib.request.urlopen(urllib.request.Request(slack.url + "/_control",
                                                  data=json.dumps(c).encode()), timeout=5)


class Stage:
    """One run: its own topics, group and Redis prefix."""

    def __init__(self, name, slack, extra, feishu=None):
        run = uuid.uuid4().hex[:8]
        self.results = "cqt.handover.%s.results.%s" % (name, run)
        self.dlq = "cqt.handover.%s.dlq.%s" % (name, run)
        p = subprocess.run([TOOL, "--brokers", BROKERS, "--ensure", self.results + "," + self.dlq,
                            "--partitions", "4"], capture_output=True, timeout=60)
        if p.returncode != 0:
            sys.exit("topic creation failed: %s" % p.stderr.decode())
        self.cfg = os.path.join(TMP, name + ".yaml")
        with open(self.cfg, "w") as f:
            f.write("""log: {level: debug}
kafka:
  brokers: "%s"
  topics: {results: "%s", dlq: "%s"}
  groups: {notifier: "cqt-handover-%s"}
redis: {host: 127.0.0.1, port: %d, prefix: "cqt-ho-%s:"}
notifier:
  max_attempts: 4
  backoff_base_ms: 100
  backoff_max_ms: 500
%s
slack:
  enabled: true
  signing_secret: "${CQT_SLACK_SIGNING}"
  api_base: "%s/api"
""" % (BROKERS, self.results, self.dlq, run, REDIS_PORT, run, extra, slack.url))
            if feishu:
                f.write("""feishu:
  enabled: true
  app_id: cli_test
  app_secret: "${CQT_FEISHU_SECRET}"
  verification_token: "${CQT_FEISHU_VTOKEN}"
  require_encrypt_key: false
  api_base: "%s/open-apis"
""" % feishu.url)
        self.env = dict(os.environ, CQT_SLACK_SIGNING="sign-secret", CQT_FEISHU_SECRET="s3cret",
                        CQT_FEISHU_VTOKEN="vtok")
        self.copies = 0

    def produce(self, rows):
        lines = "".join(json.dumps(r) + "\n" for r in rows)
        p = subprocess.run([TOOL, "--brokers", BROKERS, "--topic", self.results],
                           input=lines.encode(), capture_output=True, timeout=60)
        check(p.returncode == 0, "results produced: %s" % p.stderr.decode())

    def notifier(self):
        self.copies += 1
        return Notifier(self, "%s-n%d" % (os.path.basename(self.cfg)[:-5], self.copies))


def Notifier(stage, name):
    """chatops-notifier through the shared launcher (cqt.Service), its log in TMP/NAME.log."""
    return cqt.Service("notifier", stage.cfg, name, TMP, env=stage.env)


def assigned(n):
    """A predicate: n's consumer was assigned partitions (this run's log)."""
    return lambda: "assigned" in n.logs(since_start=True)


def result(slack, rid, chat, text):
    return {"v": 1, "request_id": rid, "step": "final", "status": "ok", "platform": "slack",
            "text": text, "seq": 0, "command": "deploy web production", "user_name": "alice",
            "reply": {"response_url": slack.response_url(rid), "chat_id": chat},
            "produced_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}


def posts(slack, rid):
    """Posts of this request that Slack took (the 429-refused attempt is not a post)."""
    return [e for e in slack.requests("/response/" + rid) if e["status"] == 200]


def test_drain_on_sigterm(slack):
    control(slack, {"reset": True, "delay": 12})  # slower than the old 10 s drain
    st = Stage("drain", slack, "  http_timeout_ms: 20000\n  slack_channel_interval_ms: 0")
    n1 = st.notifier()
    check(wait_for(assigned(n1), 60), "the first copy is assigned its partitions")
    rids = ["drain-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(8)]
    st.produce([result(slack, rid, "CD%d" % i, "drain %d" % i) for i, rid in enumerate(rids)])
    taken = wait_for(lambda: all(slack.requests("/response/" + r) for r in rids), 30)
    check(taken, "every post reached the slow Slack before SIGTERM")
    t0 = time.time()
    rc = n1.stop(timeout=60)
    took = time.time() - t0
    check(rc == 0, "the first copy drains and exits 0 (rc %s, %.1f s)" % (rc, took))
    control(slack, {"delay": 0})
    n2 = st.notifier()
    check(wait_for(assigned(n2), 60), "the second copy is assigned the partitions")
    # a marker per key after the drained results: once each is posted, the new copy has
    # consumed everything before it on its partition
    marks = ["mark-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(16)]
    st.produce([result(slack, m, "CM", "mark") for m in marks])
    check(wait_for(lambda: all(posts(slack, m) for m in marks), 60),
          "every marker posted by the new copy")
    check(n2.stop(timeout=60) == 0, "the second copy drains and exits 0")
    counts = {r: len(posts(slack, r)) for r in rids}
    check(all(c == 1 for c in counts.values()),
          "each result drained at SIGTERM posted exactly once: %s" % counts)
    report("drain_on_sigterm")


def test_lease_renewed_while_held(slack):
    control(slack, {"reset": True})
    lease = "" if os.environ.get("CQT_NO_LEASE_KEY") else "\n  claim_lease_ms: %d" % LEASE_MS
    st = Stage("lease", slack, "  slack_channel_interval_ms: 500" + lease)
    n1 = st.notifier()
    check(wait_for(assigned(n1), 60), "the first copy is assigned its partitions")
    hold_s = 4 * LEASE_MS // 1000  # the channel is held for 4 leases
    control(slack, {"rate_limit": {"count": 1, "retry_after": hold_s}})
    first = "lease-0-" + uuid.uuid4().hex[:6]
    st.produce([result(slack, first, "CHOLD", "held 0")])
    check(wait_for(lambda: any(e["status"] == 429 for e in slack.requests("/response/")), 30),
          "Slack answered 429 Retry-After %d s" % hold_s)
    rids = [first] + ["lease-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(1, 12)]
    st.produce([result(slack, r, "CHOLD", "held") for r in rids[1:]])
    # wait until the first copy holds them (claimed, waiting for the channel), past a lease
    time.sleep(LEASE_MS / 1000.0 + 1)
    check(not any(posts(slack, r) for r in rids), "nothing posted during the hold")
    n2 = st.notifier()  # the group rebalances: n2 takes some partitions from n1
    check(wait_for(assigned(n2), 60), "a second copy joins and is assigned partitions")
    check(wait_for(lambda: all(posts(slack, r) for r in rids), 90),
          "every held result posted after the hold")
    check(n1.stop(timeout=60) == 0 and n2.stop(timeout=60) == 0, "both copies drain and exit 0")
    counts = {r: len(posts(slack, r)) for r in rids}
    check(all(c == 1 for c in counts.values()),
          "each result held past its lease posted exactly once across a rebalance: %s" % counts)
    report("lease_renewed_while_held")


def test_feishu_text_escaped(slack):
    feishu = FakeFeishu().start()
    try:
        st = Stage("feishu", slack, "  feishu_chat_interval_ms: 0", feishu=feishu)
        n = st.notifier()
        check(wait_for(assigned(n), 60), "the notifier is assigned its partitions")
        rid = str(uuid.uuid4())
        typed = '<at user_id="all">everyone</at> & <b>x</b>'
        r = result(slack, rid, "oc_1", typed)
        r.update(platform="feishu", command="echo " + typed,
                 reply={"message_id": "om_src1", "chat_id": "oc_1"})
        st.produce([r])
        got = wait_for(lambda: [e for e in feishu.requests("/open-apis/im/v1/messages/om_src1")
                                if e["status"] == 200], 30)
        check(bool(got), "the reply reached Feishu")
        text = json.loads(json.loads(got[0]["body"])["content"])["text"] if got else ""
        check("<at" not in text and "<b>" not in text,
              "no tag a user typed reaches Feishu as markup: %r" % text)
        check('&lt;at user_id="all"&gt;everyone&lt;/at&gt; &amp; &lt;b&gt;x&lt;/b&gt;' in text,
              "the typed text arrives as entities (shown as typed): %r" % text)
        check(n.stop(timeout=60) == 0, "the notifier drains and exits 0")
    finally:
        feishu.stop()
    report("feishu_text_escaped")


def main():
    slack = FakeSlack().start()
    try:
        test_drain_on_sigterm(slack)
        test_lease_renewed_while_held(slack)
        test_feishu_text_escaped(slack)
    finally:
        slack.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
