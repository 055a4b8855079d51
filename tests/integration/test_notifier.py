#!/usr/bin/env python3
"""Integration test of chatops-notifier against the real Kafka + Redis fixtures and the fake
Slack / Feishu servers (tests/fakes): bodies, headers and tokens that arrive; progress that
replaces; the 6th Slack result through chat.postMessage; 429 Retry-After honoured; a 500
storm ridden out; permanent errors and invalid results dead-lettered while the notifier
carries on; two copies and a redelivered result posting once; one Feishu token for both
copies, refreshed when the fake expires it; /metrics, /readyz and a clean SIGTERM drain.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import check, stack_file, wait_for  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_feishu import FakeFeishu  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

BUILD = os.environ.get("CQ_BUILD_DIR") or sys.exit("CQ_BUILD_DIR not set (run under ctest)")
STACK = os.environ.get("CQ_STACK_DIR") or sys.exit("CQ_STACK_DIR not set (run under ctest)")
NOTIFIER = os.path.join(BUILD, "notifier", "chatops-notifier")
TOOL = os.path.join(BUILD, "bin", "cqt-produce_result")



BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
T_RESULTS = "cqt.notifier.results." + RUN
T_DLQ = "cqt.notifier.dlq." + RUN
TMP = tempfile.mkdtemp(prefix="cqt-notifier-")


def produce(results, key=None):
    lines = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in results) + "\n"
    args = [TOOL, "--brokers", BROKERS, "--topic", T_RESULTS]
    if key is not None:
        args += ["--key", key]
    p = subprocess.run(args, input=lines.encode(), capture_output=True, timeout=60)
    if p.returncode != 0:
        sys.exit("produce failed: %s" % p.stderr.decode())


def dlq(count, timeout_ms=20000):
    p = subprocess.run([TOOL, "--brokers", BROKERS, "--dump", T_DLQ, "--count", str(count),
                        "--timeout-ms", str(timeout_ms)], capture_output=True,
                       timeout=timeout_ms / 1000 + 30)
    return [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]


def result(rid, step="final", status="ok", seq=0, platform="slack", **kw):
    r = {"v": 1, "request_id": rid, "step": step, "status": status, "platform": platform,
         "text": kw.pop("text", "done"), "seq": seq, "command": "deploy web production",
         "user_name": "alice", "reply": kw.pop("reply", {}),
         "produced_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
    r.update(kw)
    return r


def write_config(slack, feishu):
    env = os.environ.copy()
    env.update({"CQT_SLACK_SIGNING": "sign-secret", "CQT_SLACK_BOT": "xoxb-test-token",
                "CQT_FEISHU_SECRET": "s3cret", "CQT_FEISHU_VTOKEN": "vtok"})
    path = os.path.join(TMP, "notifier.yaml")
    with open(path, "w") as f:
        f.write("""log:
  level: debug
kafka:
  brokers: "%(brokers)s"
  topics:
    results: "%(results)s"
    dlq: "%(dlq)s"
  groups:
    notifier: "cqt-notifier-%(run)s"
redis:
  host: 127.0.0.1
  port: %(redis)d
  prefix: "cqt:%(run)s:"
notifier:
  max_attempts: 6
  backoff_base_ms: 200
  backoff_max_ms: 1500
  slack_channel_interval_ms: 100
  feishu_chat_interval_ms: 50
slack:
  enabled: true
  signing_secret: "${CQT_SLACK_SIGNING}"
  bot_token: "${CQT_SLACK_BOT}"
  api_base: "%(slack)s/api"
feishu:
  enabled: true
  app_id: cli_test
  app_secret: "${CQT_FEISHU_SECRET}"
  verification_token: "${CQT_FEISHU_VTOKEN}"
  require_encrypt_key: false   # the notifier only sends; no events come in here
  api_base: "%(feishu)s/open-apis"
""" % {"brokers": BROKERS, "results": T_RESULTS, "dlq": T_DLQ, "run": RUN, "redis": REDIS_PORT,
       "slack": slack.url, "feishu": feishu.url})
    return path, env


def Notifier(cfg, env, name):
    """chatops-notifier through the shared launcher (cqt.Service), its log in TMP/NAME.log."""
    return cqt.Service("notifier", cfg, name, TMP, env=env)


def admin_get(svc, path):
    """(status, body text) of svc's admin listener; status 0 when it does not answer."""
    port = svc.admin_port(10)
    if not port:
        return 0, "no admin port"
    try:
        st, _, body = cqt.http("GET", "http://127.0.0.1:%d%s" % (port, path), timeout=5)
        return st, body.decode()
    except OSError as e:
        return 0, str(e)


def bodies(fake, prefix):
    return [json.loads(e["body"]) for e in fake.requests(prefix) if e["status"] == 200]


def test_slack_body_headers_and_progress(slack, n):
    rid = str(uuid.uuid4())
    url = slack.response_url(rid)
    produce([result(rid, "ack", text="Deploying…", reply={"response_url": url, "chat_id": "C1"}),
             result(rid, "progress", seq=1, text="```\nstep 1\n```",
                    reply={"response_url": url, "chat_id": "C1"})], key=rid)
    got = wait_for(lambda: len(slack.requests("/response/" + rid)) >= 2, 30)
    check(got, "two posts reached the response_url")
    reqs = slack.requests("/response/" + rid)
    if len(reqs) >= 2:
        a, p = json.loads(reqs[0]["body"]), json.loads(reqs[1]["body"])
        check(reqs[0]["headers"].get("content-type", "").startswith("application/json"),
              "response_url post is JSON")
        check("authorization" not in reqs[0]["headers"], "no bot token sent to response_url")
        check(a.get("replace_original") is False, "ack adds a message")
        check(p.get("replace_original") is True, "progress replaces the original")
        check(a.get("response_type") == "in_channel", "response_type in_channel by default")
        blob = json.dumps(a["blocks"])
        check("deploy web production" in blob and "alice" in blob and "Accepted" in blob,
              "ack blocks carry command, user and status")
        check("```" in json.dumps(p["blocks"]), "log tail kept in a code block")
    print("ok   slack_body_headers_and_progress", flush=True)


def test_sixth_result_goes_to_post_message(slack, n):
    rid = str(uuid.uuid4())
    reply = {"response_url": slack.response_url(rid), "chat_id": "C6", "thread_ts": "1.5"}
    rs = [result(rid, "ack", reply=reply)]
    rs += [result(rid, "progress", seq=i, text="step %d" % i, reply=reply) for i in range(1, 5)]
    rs += [result(rid, "final", text="all done", reply=reply,
                  pipeline={"id": 42, "web_url": "https://gl.example/p/42", "status": "success"})]
    produce(rs, key=rid)
    ok = wait_for(lambda: len(slack.requests("/api/chat.postMessage")) >= 1 and
                  len(slack.requests("/response/" + rid)) >= 5, 40)
    check(ok, "5 response_url posts and one chat.postMessage")
    time.sleep(1)
    check(len(slack.requests("/response/" + rid)) == 5, "response_url used exactly 5 times")
    posts = slack.requests("/api/chat.postMessage")
    check(len(posts) == 1, "exactly one chat.postMessage (got %d)" % len(posts))
    if posts:
        h, b = posts[0]["headers"], json.loads(posts[0]["body"])
        check(h.get("authorization") == "Bearer xoxb-test-token", "bot token in Authorization")
        check(b.get("channel") == "C6" and b.get("thread_ts") == "1.5", "channel and thread")
        blob = json.dumps(b["blocks"])
        check("https://gl.example/p/42" in blob and "button" in blob, "pipeline link button")
        check("all done" in blob and "Succeeded" in blob, "the final result went by postMessage")
        check(posts[0]["answer"].startswith('{"ok": true'), "fake accepted it")
    print("ok   sixth_result_goes_to_post_message", flush=True)


def test_post_message_progress_updates(slack, n):
    rid = str(uuid.uuid4())
    reply = {"chat_id": "CUPD"}
    produce([result(rid, "ack", text="queued", reply=reply),
             result(rid, "progress", seq=1, text="running 1", reply=reply),
             result(rid, "progress", seq=2, text="running 2", reply=reply),
             result(rid, "final", text="finished", reply=reply)], key=rid)
    ok = wait_for(lambda: any("finished" in e["body"] for e in slack.requests("/api/chat.")), 30)
    check(ok, "final delivered")
    reqs = [e for e in slack.requests("/api/chat.") if '"CUPD"' in e["body"]]
    paths = [e["path"] for e in reqs]
    check(paths == ["/api/chat.postMessage", "/api/chat.update", "/api/chat.update",
                    "/api/chat.postMessage"], "post, update, update, post in order: %s" % paths)
    if len(reqs) == 4:
        ts = json.loads(reqs[0]["answer"])["ts"]
        check(all(json.loads(e["body"]).get("ts") == ts for e in reqs[1:3]),
              "progress edits the message the ack posted")
        check("running 2" in reqs[2]["body"], "updates in produced order")
    print("ok   post_message_progress_updates", flush=True)


def test_retry_after_honoured(slack, n):
    rid = str(uuid.uuid4())
    slack.control({"rate_limit": {"count": 1, "retry_after": 2}})
    produce([result(rid, reply={"response_url": slack.response_url(rid)})], key=rid)
    ok = wait_for(lambda: any(e["status"] == 200 for e in slack.requests("/response/" + rid)), 30)
    check(ok, "delivered after the 429")
    reqs = slack.requests("/response/" + rid)
    check(len(reqs) == 2 and reqs[0]["status"] == 429, "one 429 then one success (%s)" %
          [e["status"] for e in reqs])
    if len(reqs) == 2:
        gap = reqs[1]["t"] - reqs[0]["t"]
        check(gap >= 2.0, "next attempt no sooner than Retry-After 2 s (gap %.2f s)" % gap)
    print("ok   retry_after_honoured", flush=True)


def test_500_storm_then_success(slack, n):
    rid = str(uuid.uuid4())
    slack.control({"storm": {"count": 4, "status": 500}})
    produce([result(rid, reply={"response_url": slack.response_url(rid)})], key=rid)
    ok = wait_for(lambda: any(e["status"] == 200 for e in slack.requests("/response/" + rid)), 40)
    check(ok, "delivered once the storm passed")
    reqs = slack.requests("/response/" + rid)
    statuses = [e["status"] for e in reqs]
    check(statuses == [500, 500, 500, 500, 200], "4 x 500 then 200, got %s" % statuses)
    gaps = [reqs[i + 1]["t"] - reqs[i]["t"] for i in range(len(reqs) - 1)]
    check(all(g >= 0.09 for g in gaps), "backoff between attempts (%s)" % gaps)
    check(len(gaps) >= 3 and gaps[-1] > gaps[0], "backoff grows (%s)" % gaps)
    print("ok   500_storm_then_success", flush=True)


def test_permanent_error_dead_letters(slack, n):
    rid_bad, rid_ok = str(uuid.uuid4()), str(uuid.uuid4())
    slack.control({"fail_channel": {"CBAD": "channel_not_found"}})
    produce(['{"v":1,"request_id":"broken"', result(rid_bad, reply={"chat_id": "CBAD"})])
    produce([result(rid_ok, reply={"chat_id": "CGOOD"}, text="after the failure")], key=rid_ok)
    msgs = dlq(2)
    check(len(msgs) == 2, "two dead letters (got %d)" % len(msgs))
    bad = [m for m in msgs if m.get("request_id") == rid_bad]
    inv = [m for m in msgs if "invalid result" in m.get("reason", "")]
    check(bad and "channel_not_found" in bad[0]["reason"], "reason names the Slack error")
    if bad:
        check(bad[0]["attempts"] == 1, "a permanent error is not retried")
        check("channel_not_found" in bad[0].get("answer", {}).get("body", ""),
              "platform answer kept")
        check(bad[0].get("result", {}).get("request_id") == rid_bad, "original result kept")
    check(inv and "raw" in inv[0], "invalid JSON dead-lettered with its raw bytes")
    ok = wait_for(lambda: any("after the failure" in e["body"]
                              for e in slack.requests("/api/chat.postMessage")), 20)
    check(ok, "the notifier carried on after the permanent error")
    print("ok   permanent_error_dead_letters", flush=True)


def test_two_copies_redelivered_once(slack, n2):
    rid = str(uuid.uuid4())
    r = result(rid, text="exactly once", reply={"chat_id": "CONCE"})
    # the same result under different keys lands on different partitions (and copies)
    for k in ("a", "b", "c", "d"):
        produce([r], key=rid + k)
    time.sleep(6)
    got = [e for e in slack.requests("/api/chat.postMessage") if "exactly once" in e["body"]]
    check(len(got) == 1, "one post for a result delivered 4 times (got %d)" % len(got))
    print("ok   two_copies_redelivered_once", flush=True)


def test_feishu_token_shared_and_refreshed(feishu, n2):
    rids = [str(uuid.uuid4()) for _ in range(6)]
    rs = [result(rid, platform="feishu", text="feishu %d" % i,
                 reply={"message_id": "om_src%d" % i, "chat_id": "oc_%d" % (i % 3)})
          for i, rid in enumerate(rids)]
    rs.append(result(str(uuid.uuid4()), platform="feishu", text="to chat",
                     reply={"chat_id": "oc_only"},
                     pipeline={"id": 7, "web_url": "https://gl.example/p/7", "status": "failed"},
                     status="failed"))
    for i, r in enumerate(rs):
        produce([r], key="k%d" % i)
    ok = wait_for(lambda: len(feishu.messages) >= 7, 40)
    check(ok, "7 Feishu messages delivered (got %d)" % len(feishu.messages))
    check(feishu.token_fetches == 1, "token fetched once for both copies (got %d)" %
          feishu.token_fetches)
    replies = [m for m in feishu.messages if m["path"].endswith("/reply")]
    sends = [m for m in feishu.messages if "receive_id_type=chat_id" in m["path"]]
    check(len(replies) == 6 and len(sends) == 1, "6 replies and 1 send")
    if replies:
        b = replies[0]["body"]
        check(b["msg_type"] == "text" and isinstance(b["content"], str), "text, content string")
        check(len(b["uuid"]) <= 50 and b["uuid"].endswith("-f-0"), "uuid = request+step+seq")
        check(re.match(r"/open-apis/im/v1/messages/om_src\d/reply", replies[0]["path"]),
              "reply to the triggering message")
    if sends:
        b = sends[0]["body"]
        check(b["msg_type"] == "interactive" and b["receive_id"] == "oc_only", "card to chat")
        check("https://gl.example/p/7" in b["content"], "card carries the pipeline link")
    reqs = feishu.requests("/open-apis/im/")
    check(all(e["headers"].get("authorization", "").startswith("Bearer t-1-") for e in reqs),
          "every send used the fetched token")

    feishu.control({"expire_tokens": True})
    more = [result(str(uuid.uuid4()), platform="feishu", text="after expiry %d" % i,
                   reply={"chat_id": "oc_x%d" % i}) for i in range(4)]
    for i, r in enumerate(more):
        produce([r], key="m%d" % i)
    ok = wait_for(lambda: len(feishu.messages) >= 11, 40)
    check(ok, "results after the token expired delivered (got %d)" % len(feishu.messages))
    check(feishu.token_fetches == 2, "token refreshed once after expiry (fetches %d)" %
          feishu.token_fetches)
    expired = [e for e in feishu.requests("/open-apis/im/") if "99991663" in e["answer"]]
    check(len(expired) >= 1, "the fake answered expired-token at least once")
    print("ok   feishu_token_shared_and_refreshed", flush=True)


def test_feishu_rate_limit_and_permanent(feishu, n2):
    rid_rl, rid_gone = str(uuid.uuid4()), str(uuid.uuid4())
    feishu.control({"rate_limit": {"count": 1, "retry_after": 1}, "fail_chat": {"oc_gone": 230002}})
    produce([result(rid_rl, platform="feishu", text="paced", reply={"chat_id": "oc_rl"})], key=rid_rl)
    ok = wait_for(lambda: any(m["body"].get("receive_id") == "oc_rl" for m in feishu.messages), 30)
    check(ok, "Feishu result delivered after a 429")
    reqs = [e for e in feishu.requests("/open-apis/im/") if '"oc_rl"' in e["body"]]
    check([e["status"] for e in reqs] == [429, 200], "429 then 200: %s" % [e["status"] for e in reqs])
    if len(reqs) == 2:
        gap = reqs[1]["t"] - reqs[0]["t"]
        check(gap >= 1.0, "x-ogw-ratelimit-reset 1 s honoured (gap %.2f s)" % gap)
    produce([result(rid_gone, platform="feishu", reply={"chat_id": "oc_gone"})], key=rid_gone)
    msgs = dlq(3)
    gone = [m for m in msgs if m.get("request_id") == rid_gone]
    check(gone and gone[0]["reason"] == "feishu:230002", "Feishu code dead-lettered: %s" %
          (gone[0]["reason"] if gone else msgs))
    check(gone and gone[0].get("platform") == "feishu" and gone[0]["attempts"] == 1,
          "platform and attempts recorded")
    print("ok   feishu_rate_limit_and_permanent", flush=True)


def main():
    for f in (NOTIFIER, TOOL):
        if not os.path.exists(f):
            sys.exit("missing %s (build the notifier and cqt-produce_result)" % f)
    p = subprocess.run([TOOL, "--brokers", BROKERS, "--ensure", T_RESULTS + "," + T_DLQ,
                        "--partitions", "4"], capture_output=True, timeout=60)
    if p.returncode != 0:
        sys.exit("topic creation failed: %s" % p.stderr.decode())
    slack, feishu = FakeSlack().start(), FakeFeishu().start()
    cfg, env = write_config(slack, feishu)
    n = Notifier(cfg, env, "n1")
    check(n.admin_port(10) is not None, "notifier announced its admin port")
    ready = wait_for(lambda: admin_get(n, "/readyz")[0] == 200, 30)
    check(ready, "/readyz turns 200")
    check(admin_get(n, "/healthz")[0] == 200, "/healthz 200")
    n2 = None
    try:
        test_slack_body_headers_and_progress(slack, n)
        test_sixth_result_goes_to_post_message(slack, n)
        test_post_message_progress_updates(slack, n)
        test_retry_after_honoured(slack, n)
        test_500_storm_then_success(slack, n)
        test_permanent_error_dead_letters(slack, n)
        n2 = Notifier(cfg, env, "n2")
        check(wait_for(lambda: admin_get(n2, "/readyz")[0] == 200, 30), "second copy ready")
        time.sleep(4)  # let the group rebalance over both copies
        test_two_copies_redelivered_once(slack, n2)
        test_feishu_token_shared_and_refreshed(feishu, n2)
        test_feishu_rate_limit_and_permanent(feishu, n2)
        st, metrics = admin_get(n, "/metrics")
        check(st == 200 and 'chatops_notifier_deliveries_total{platform="slack",outcome="delivered"}'
              in metrics, "/metrics counts deliveries")
        check("chatops_notifier_delivery_latency_seconds" in metrics, "/metrics latency histogram")
        check("chatops_notifier_dlq_total" in metrics, "/metrics DLQ count")
        # the per-hop histograms move: every result taken is timed from produced to
        # consumed, every delivered one from consumed to posted
        def metric_value(text, series):
            m_ = re.search(r"^%s (\S+)$" % re.escape(series), text, re.M)
            return float(m_.group(1)) if m_ else 0.0
        delivered = metric_value(metrics, 'chatops_notifier_deliveries_total{platform="slack",'
                                          'outcome="delivered"}')
        posted = metric_value(metrics, 'chatops_notifier_post_seconds_count{platform="slack"}')
        queued = metric_value(metrics, 'chatops_notifier_queue_seconds_count{platform="slack"}')
        check(delivered > 0 and posted == delivered,
              "post_seconds counts every delivered result (%d of %d)" % (posted, delivered))
        check(queued >= posted, "queue_seconds counts every result taken (%d >= %d)"
              % (queued, posted))
        check(metric_value(metrics, 'chatops_notifier_post_seconds_sum{platform="slack"}') > 0,
              "post_seconds sums the time")
        logs = n.logs() + (n2.logs() if n2 else "")
        check(re.search(r'"req_id":"[0-9a-f-]{36}"', logs) is not None, "logs carry req_id")
        check("xoxb-test-token" not in logs and "s3cret" not in logs, "no secrets in logs")
    finally:
        t0 = time.time()
        rc1 = n.stop()
        rc2 = n2.stop() if n2 else 0
        check(rc1 == 0 and rc2 == 0, "SIGTERM drains and exits 0 (rc %s %s)" % (rc1, rc2))
        check(time.time() - t0 < 30, "drain is prompt")
        slack.stop()
        feishu.stop()
    sys.exit(cqt.summary(TMP))


if __name__ == "__main__":
    main()
