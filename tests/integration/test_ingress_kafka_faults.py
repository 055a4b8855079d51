#!/usr/bin/env python3
"""The ingress between a chat platform and a faulty Kafka (issue 19, item 3): its answer must
match what the broker may hold. A dedicated broker advertises a tcpproxy
(tests/support/tcpproxy.py) in front of it, so every byte between the ingress's producer and
Kafka crosses the proxy, which passes, delays or black-holes it.

- possibly persisted: the proxy delays the produce request past the budget; the broker still
  writes it. The answer must be "outcome unknown" with the request id (Slack 200) / 503
  (Feishu, which re-sends with the same event id), never "NOT run" - and the request is on
  the topic, so a user who retried after "NOT run" would have run it twice.
- not persisted: the proxy black-holes the connection before the producer ever reached the
  broker; the message times out in librdkafka's queue. The answer is "NOT run ... Please
  retry" (Slack) / 503 "not queued", and the request never reaches the topic.
Standard library only; the binaries as deployed (no signal disposition inherited).
"""
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
import tcpproxy  # noqa: E402
from cqt import check  # noqa: E402

DUMP = os.path.join(BUILD, "bin", "cqt-topic_dump")
KAFKA_SH = os.path.join(SRC, "scripts", "kafka.sh")
RUN = uuid.uuid4().hex[:8]
TOPIC_REQ = "cqt.ingfault.%s.requests" % RUN
TOPIC_PIPE = "cqt.ingfault.%s.pipeline" % RUN
TMP = tempfile.mkdtemp(prefix="cqt-ingfault-")
SLACK_SECRET = secrets.token_hex(16)
FEISHU_TOKEN = secrets.token_hex(8)
FEISHU_KEY = secrets.token_hex(8)
BUDGET_MS = 2000


def request(port, method, path, body=b"", headers=None, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), dict(r.getheaders())
    finally:
        c.close()


def slash(port, text):
    fields = {"team_id": "T0TEAM", "channel_id": "C0OPS", "channel_name": "ops",
              "user_id": "U0ALICE", "user_name": "alice", "command": "/ops", "text": text,
              "response_url": "https://hooks.slack.com/commands/T0TEAM/1/abc",
              "trigger_id": "trig." + uuid.uuid4().hex}
    body = urllib.parse.urlencode(fields).encode()
    ts = str(int(time.time()))
    sig = cqt.slack_signature(SLACK_SECRET, ts, body)
    t0 = time.time()
    st, text_, h = request(port, "POST", "/slack/commands", body,
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})
    ans = json.loads(text_) if st == 200 else {}
    return st, ans.get("text", text_), h.get("X-Request-Id", ""), time.time() - t0


def feishu(port, event_id):
    return feishu_post(port, feishu_body(event_id))


def feishu_body(event_id):
    """A signed, encrypted im.message.receive_v1 event (as test_ingress.py builds it)."""
    import base64
    content = json.dumps({"text": "@_user_1 flag get beta"})
    ev = {"schema": "2.0",
          "header": {"event_id": event_id, "event_type": "im.message.receive_v1",
                     "create_time": "1608725989000", "token": FEISHU_TOKEN, "app_id": "cli_t",
                     "tenant_key": "tenant_1"},
          "event": {"sender": {"sender_id": {"open_id": "ou_alice"}, "sender_type": "user"},
                    "message": {"message_id": "om_" + event_id, "chat_id": "oc_chat1",
                                "chat_type": "group", "message_type": "text",
                                "content": content,
                                "mentions": [{"key": "@_user_1", "id": {"open_id": "ou_bot"},
                                              "name": "ChatOps"}]}}}
    return json.dumps({"encrypt": cqt.feishu_encrypt(FEISHU_KEY, json.dumps(ev).encode())}).encode()


def feishu_post(port, body):
    ts, nonce = str(int(time.time())), uuid.uuid4().hex
    sig = cqt.feishu_signature(FEISHU_KEY, ts, nonce, body)
    st, text_, h = request(port, "POST", "/feishu/events", body,
                           {"Content-Type": "application/json", "X-Lark-Request-Timestamp": ts,
                            "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": sig})
    return st, text_, h.get("X-Request-Id", "")


def topic_ids(brokers, topic, timeout_ms=3000):
    out = subprocess.run([DUMP, brokers, topic, "--timeout-ms", str(timeout_ms)],
                         capture_output=True, text=True, timeout=120)
    ids = []
    for line in out.stdout.splitlines():
        if line.strip():
            ids.append(json.loads(json.loads(line)["value"])["id"])
    return ids


def Ingress(name, brokers):
    """chatops-ingress through the shared launcher (cqt.Service), without port or broker
    overrides from the environment this runs in."""
    cfg = os.path.join(TMP, name + ".yaml")
    with open(cfg, "w") as f:
        f.write("""
log: {level: info}
kafka:
  brokers: "%s"
  produce_timeout_ms: %d
  topics: {requests: "%s", pipeline_events: "%s"}
ingress: {listen: 127.0.0.1}
slack: {enabled: true, signing_secret: "${CQT_SLACK_SECRET}"}
feishu:
  enabled: true
  verification_token: "${CQT_FEISHU_TOKEN}"
  encrypt_key: "${CQT_FEISHU_KEY}"
  bot_open_id: ou_bot
""" % (brokers, BUDGET_MS, TOPIC_REQ, TOPIC_PIPE))
    env = dict(CQT_SLACK_SECRET=SLACK_SECRET, CQT_FEISHU_TOKEN=FEISHU_TOKEN,
               CQT_FEISHU_KEY=FEISHU_KEY, CQ_INGRESS_PORT=None, CQ_INGRESS_ADMIN_PORT=None,
               CQ_KAFKA_BROKERS=None)
    return cqt.Service("ingress", cfg, name, TMP, env=env)


def wait_answer(svc, path, port, want=200, timeout=30):
    """True once GET path on port answers want; False when svc died or the time ran out."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if request(port, "GET", path, timeout=2)[0] == want:
                return True
        except OSError:
            pass
        if not svc.alive():
            return False
        time.sleep(0.1)
    return False


def possibly_persisted(proxy, direct):
    """Delayed past the budget, then written: "outcome unknown", never "NOT run"."""
    ing = Ingress("delay", "127.0.0.1:%d" % proxy.port)
    try:
        check(wait_answer(ing, "/readyz", ing.admin_port()), "ingress ready through the proxy")
        st, text, rid, _ = slash(ing.port, "flag get warmup")
        check(st == 200 and text.startswith("queued:"), "warm-up through the proxy queued (%r)" % text)
        # each direction +1.5 s: the produce request reaches the broker after 1.5 s (written),
        # its answer would come back after 3 s, past the 2 s budget
        proxy.mode("delay", ms=1500)
        # a Feishu event in flight at the same time (after an in-flight timeout the
        # idempotent producer holds later messages back until it recovered, so a later one
        # would never be sent: not persisted)
        ev_id = "ev_" + uuid.uuid4().hex
        fbody = feishu_body(ev_id)
        fres = []
        ft = threading.Thread(target=lambda: fres.append(feishu_post(ing.port, fbody)))
        ft.start()
        st, text, rid, took = slash(ing.port, "deploy web production")
        ft.join()
        check(st == 200, "slack answered 200 (Slack shows nothing else) (got %d)" % st)
        check("NOT run" not in text, "never 'NOT run' when it may have been queued: %r" % text)
        check("outcome unknown" in text and rid and rid in text and "Do not simply retry" in text,
              "slack: outcome unknown, with the request id and how to check: %r" % text)
        check(took < 3.0, "answered inside Slack's 3 s (%.2f s)" % took)
        st, text, frid = fres[0] if fres else (0, "", "")
        check(st == 503 and text.startswith("outcome unknown"),
              "feishu: 503 outcome unknown (it re-sends with the same event id): %d %r" % (st, text))
        proxy.mode("pass")
        ids = topic_ids(direct, TOPIC_REQ, timeout_ms=4000)
        check(rid in ids, "the 'outcome unknown' slack request IS on the topic: a retry after "
                          "'NOT run' would have run it twice")
        check(frid in ids, "the feishu event is on the topic too (its re-send is deduplicated "
                           "by the worker on feishu:%s)" % ev_id)
        st, met, _ = request(ing.admin_port(), "GET", "/metrics")
        check('chatops_ingress_requests_total{route="slack_commands",outcome="unknown"} 1' in met,
              "metrics: outcome unknown counted")
    finally:
        check(ing.stop() == 0, "ingress exits 0 on SIGTERM")
    return ing


def not_persisted(proxy, direct):
    """Black-holed before the producer ever reached the broker: "NOT run", and not on the topic."""
    proxy.mode("blackhole")
    ing = Ingress("blackhole", "127.0.0.1:%d" % proxy.port)
    try:
        check(wait_answer(ing, "/healthz", ing.port), "ingress up (public /healthz)")
        st, body, _ = request(ing.admin_port(), "GET", "/readyz")
        check(st == 503 and body == "not ready: no kafka broker answers\n",
              "admin /readyz 503 with the reason while Kafka is unreachable (%d %r)" % (st, body))
        st, text, rid, took = slash(ing.port, "deploy web production")
        check(st == 200 and "deploy web production was NOT run" in text and "Please retry" in text,
              "slack: NOT run, please retry (never sent: NOT_PERSISTED): %r" % text)
        check("outcome unknown" not in text, "not 'outcome unknown' when certainly not queued")
        check(took < BUDGET_MS / 1000 + 0.4, "answered by the report, inside the budget (%.2f s)" % took)
        st, text, frid = feishu(ing.port, "ev_" + uuid.uuid4().hex)
        check(st == 503 and text.startswith("not queued"), "feishu: 503 not queued: %d %r" % (st, text))
        proxy.mode("pass")  # the held bytes (no produce request among them) now flow
        check(wait_answer(ing, "/readyz", ing.admin_port()), "ready again once the proxy passes")
        st, text2, rid2, _ = slash(ing.port, "flag get after")
        check(st == 200 and text2.startswith("queued:"), "queued once Kafka is reachable (%r)" % text2)
        ids = topic_ids(direct, TOPIC_REQ, timeout_ms=3000)
        check(rid2 in ids, "the request after recovery is on the topic")
        check(rid not in ids and frid not in ids,
              "the 'NOT run' requests never reached the topic (a retry cannot duplicate them)")
    finally:
        check(ing.stop() == 0, "ingress exits 0 on SIGTERM")


def main():
    kdir = os.path.join(TMP, "kafka")
    proxy = tcpproxy.start(target="127.0.0.1:1")  # the broker's address is known later
    started = False
    try:
        p = subprocess.run([KAFKA_SH, "start", kdir, "--advertise-port", str(proxy.port)],
                           capture_output=True, text=True, timeout=300)
        started = check(p.returncode == 0, "dedicated broker advertising the proxy started:\n%s"
                        % p.stderr[-2000:])
        if not started:
            return cqt.summary()
        with open(os.path.join(kdir, "bootstrap")) as f:
            direct = f.read().strip()
        with open(os.path.join(kdir, "external")) as f:
            proxy.target(f.read().strip())
        for t in (TOPIC_REQ, TOPIC_PIPE):  # created up front, directly
            topic_ids(direct, t, timeout_ms=500)
        possibly_persisted(proxy, direct)
        cqt.report("possibly_persisted")
        not_persisted(proxy, direct)
        cqt.report("not_persisted")
        print("proxy stats: %s" % proxy.stats())
    finally:
        proxy.stop()
        if started or os.path.exists(os.path.join(kdir, "kafka.pid")):
            subprocess.run([KAFKA_SH, "stop", kdir], capture_output=True, timeout=120)
    rc = cqt.summary(TMP)
    if rc == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
