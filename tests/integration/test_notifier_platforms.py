#!/usr/bin/env python3
"""Integration test of chatops-notifier delivering issue 18's platforms (docs/platforms.md)
against the real Kafka + Redis fixtures and fakes shaped like each platform's API
(tests/fakes/fake_{mattermost,discord,webex,dingtalk}.py): results produced to the results
topic reach the right route (the request's response_url / interaction webhook / session
webhook while it lives, the platform's API with the bot or app token after), a 429 is
retried, a permanent refusal is dead-lettered, limits cut with a visible note, no secret in
the logs.
"""
import json
import os
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
from fake_dingtalk import FakeDingTalk  # noqa: E402
from fake_discord import FakeDiscord  # noqa: E402
from fake_mattermost import FakeMattermost  # noqa: E402
from fake_webex import FakeWebex  # noqa: E402

BUILD = os.environ.get("CQ_BUILD_DIR") or sys.exit("CQ_BUILD_DIR not set (run under ctest)")
STACK = os.environ.get("CQ_STACK_DIR") or sys.exit("CQ_STACK_DIR not set (run under ctest)")
NOTIFIER = os.path.join(BUILD, "notifier", "chatops-notifier")
TOOL = os.path.join(BUILD, "bin", "cqt-produce_result")

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
T_RESULTS = "cqt.ntfplat.results." + RUN
T_DLQ = "cqt.ntfplat.dlq." + RUN
TMP = tempfile.mkdtemp(prefix="cqt-ntfplat-")


def produce(results, key):
    lines = "\n".join(json.dumps(r) for r in results) + "\n"
    p = subprocess.run([TOOL, "--brokers", BROKERS, "--topic", T_RESULTS, "--key", key],
                       input=lines.encode(), capture_output=True, timeout=60)
    if p.returncode != 0:
        sys.exit("produce failed: %s" % p.stderr.decode())


def dlq_has(rid, timeout=20):
    def seen():
        p = subprocess.run([TOOL, "--brokers", BROKERS, "--dump", T_DLQ, "--count", "50",
                            "--timeout-ms", "1500"], capture_output=True, timeout=60)
        return [line for line in p.stdout.decode().splitlines() if rid in line]
    found = []
    wait_for(lambda: found.extend(seen()) or found, timeout, step=0.5)
    return found


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def result(rid, platform, step="final", status="ok", seq=0, reply=None, **kw):
    r = {"v": 1, "request_id": rid, "step": step, "status": status, "platform": platform,
         "text": kw.pop("text", "done"), "seq": seq, "command": "lb weight blue 30",
         "user_name": "alice", "reply": reply or {}, "produced_at": iso(time.time())}
    r.update(kw)
    return r


def write_config(mm, dc, wx, dt):
    env = os.environ.copy()
    env.update({"CQT_MM_BOT": "mm-bot-token", "CQT_DC_BOT": "discord-bot-token",
                "CQT_WX_BOT": "webex-bot-token", "CQT_DT_SECRET": "ding-app-secret"})
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
    notifier: "cqt-ntfplat-%(run)s"
redis:
  host: 127.0.0.1
  port: %(redis)d
  prefix: "cqt:%(run)s:"
notifier:
  max_attempts: 5
  backoff_base_ms: 200
  backoff_max_ms: 1000
mattermost:
  api_base: "%(mm)s"
  bot_token: "${CQT_MM_BOT}"
discord:
  api_base: "%(dc)s/api/v10"
  bot_token: "${CQT_DC_BOT}"
webex:
  api_base: "%(wx)s/v1"
  bot_token: "${CQT_WX_BOT}"
dingtalk:
  api_base: "%(dt)s"
  app_key: ding-app-key
  app_secret: "${CQT_DT_SECRET}"
  robot_code: ding-robot
  messages_per_minute: 600
""" % {"brokers": BROKERS, "results": T_RESULTS, "dlq": T_DLQ, "run": RUN, "redis": REDIS_PORT,
       "mm": mm.url, "dc": dc.url, "wx": wx.url, "dt": dt.url})
    return path, env


# ------------------------------------------------------------------ Mattermost

def test_mattermost(mm):
    rid = str(uuid.uuid4())
    reply = {"response_url": mm.response_url(rid), "chat_id": "mmch1", "thread_ts": "root1"}
    produce([result(rid, "mattermost", "ack", text="queued", reply=reply),
             result(rid, "mattermost", text="blue at 30%", reply=reply)], rid)
    check(wait_for(lambda: len(mm.requests("/hooks/commands/" + rid)) >= 2, 20),
          "mattermost: ack and final reach the response_url")
    reqs = mm.requests("/hooks/commands/" + rid)
    if len(reqs) >= 2:
        a, f = json.loads(reqs[0]["body"]), json.loads(reqs[1]["body"])
        check(a["response_type"] == "in_channel" and "queued" in a["text"], "mm ack in_channel")
        check("lb weight blue 30" in f["text"] and "blue at 30%" in f["text"], "mm final text")
        check("authorization" not in reqs[0]["headers"], "mm: no bot token to response_url")
    # ephemeral
    rid = str(uuid.uuid4())
    produce([result(rid, "mattermost", response_type="ephemeral",
                    reply={"response_url": mm.response_url(rid)})], rid)
    check(wait_for(lambda: mm.requests("/hooks/commands/" + rid), 20), "mm ephemeral posted")
    r = mm.requests("/hooks/commands/" + rid)
    check(r and json.loads(r[0]["body"])["response_type"] == "ephemeral", "mm: ephemeral kept")
    # no response_url: the bot posts, in the thread
    rid = str(uuid.uuid4())
    produce([result(rid, "mattermost", text="via api " + rid,
                    reply={"chat_id": "mmch2", "thread_ts": "root2"})], rid)
    check(wait_for(lambda: any(rid in e["body"] for e in mm.requests("/api/v4/posts")), 20),
          "mm: no response_url -> /api/v4/posts")
    p = [e for e in mm.requests("/api/v4/posts") if rid in e["body"]]
    if p:
        b = json.loads(p[0]["body"])
        check(p[0]["headers"].get("authorization") == "Bearer mm-bot-token", "mm bot token")
        check(b["channel_id"] == "mmch2" and b["root_id"] == "root2" and p[0]["status"] == 201,
              "mm post in channel and thread, 201")
    # expired response_url: falls back to the API
    rid = str(uuid.uuid4())
    mm.control({"expire_url": rid})
    produce([result(rid, "mattermost", text="fallback " + rid,
                    reply={"response_url": mm.response_url(rid), "chat_id": "mmch3"})], rid)
    check(wait_for(lambda: any(rid in e["body"] for e in mm.requests("/api/v4/posts")), 20),
          "mm: a refused response_url falls back to /api/v4/posts")
    check(mm.requests("/hooks/commands/" + rid)[0]["status"] == 404, "mm: the url said 404")
    # 429 retried
    rid = str(uuid.uuid4())
    mm.control({"rate_limit": {"count": 1, "retry_after": 1}})
    produce([result(rid, "mattermost", text="limited " + rid, reply={"chat_id": "mmch4"})], rid)
    check(wait_for(lambda: any(rid in e["body"] and e["status"] == 201
                               for e in mm.requests("/api/v4/posts")), 20),
          "mm: delivered after a 429")
    check([e["status"] for e in mm.requests("/api/v4/posts") if rid in e["body"]] == [429, 201],
          "mm: 429 then 201")
    # permanent: dead-lettered
    rid = str(uuid.uuid4())
    mm.control({"fail_channel": ["mmdead"]})
    produce([result(rid, "mattermost", reply={"chat_id": "mmdead"})], rid)
    d = dlq_has(rid)
    check(d and "http_403" in d[0], "mm: 403 dead-lettered with the reason")
    cqt.report("mattermost")


# ------------------------------------------------------------------ Discord

def test_discord(dc):
    tok = "itok-" + uuid.uuid4().hex
    rid = str(uuid.uuid4())
    reply = {"response_url": dc.webhook_url(tok), "chat_id": "900", "app_id": dc.application_id,
             "expires_at": iso(time.time() + 900)}
    produce([result(rid, "discord", "ack", text="queued", reply=reply),
             result(rid, "discord", "progress", seq=1, text="running", reply=reply),
             result(rid, "discord", text="blue at 30%", reply=reply)], rid)
    check(wait_for(lambda: len(dc.requests("/api/v10/webhooks/")) >= 3, 20),
          "discord: three messages through the interaction webhook")
    reqs = [e for e in dc.requests("/api/v10/webhooks/") if tok in e["path"]]
    check([(e["method"], e["path"].endswith("/messages/@original")) for e in reqs] ==
          [("PATCH", True), ("POST", False), ("POST", False)],
          "discord: the first edits @original, later ones are follow-ups")
    if len(reqs) == 3:
        check("blue at 30%" in json.loads(reqs[2]["body"])["content"], "discord final content")
        check("authorization" not in reqs[0]["headers"], "discord: no bot token to the webhook")
        check(json.loads(reqs[0]["body"]).get("allowed_mentions") == {"parse": []},
              "discord: no mentions parsed from tool output")
    # expired token: the bot posts into the channel
    rid = str(uuid.uuid4())
    reply = {"response_url": dc.webhook_url("old"), "chat_id": "901",
             "expires_at": iso(time.time() - 60)}
    produce([result(rid, "discord", text="late " + rid, reply=reply)], rid)
    check(wait_for(lambda: dc.requests("/api/v10/channels/901/messages"), 20),
          "discord: after expiry POST /channels/{id}/messages")
    r = dc.requests("/api/v10/channels/901/messages")
    check(r and r[0]["headers"].get("authorization") == "Bot discord-bot-token" and
          r[0]["status"] == 200, "discord: Bot token")
    check(not [e for e in dc.requests("/api/v10/webhooks/") if "/old" in e["path"]],
          "discord: the expired webhook is not tried")
    # the webhook refused (token revoked early): falls back to the channel
    rid, tok = str(uuid.uuid4()), "itok-" + uuid.uuid4().hex
    dc.control({"expire_token": tok})
    produce([result(rid, "discord", text="x", reply={
        "response_url": dc.webhook_url(tok), "chat_id": "902",
        "expires_at": iso(time.time() + 600)})], rid)
    check(wait_for(lambda: dc.requests("/api/v10/channels/902/messages"), 20),
          "discord: 401 Invalid Webhook Token falls back to the channel")
    # 429 with retry_after in the body; and a long text cut to 2000 characters
    rid = str(uuid.uuid4())
    dc.control({"rate_limit": {"count": 1, "retry_after": 0.4}})
    produce([result(rid, "discord", text="é" * 2500, reply={"chat_id": "903"})], rid)
    check(wait_for(lambda: any(e["status"] == 200
                               for e in dc.requests("/api/v10/channels/903/messages")), 20),
          "discord: delivered after a 429")
    r = dc.requests("/api/v10/channels/903/messages")
    check([e["status"] for e in r] == [429, 200], "discord: 429 then 200")
    if len(r) == 2:
        check(r[1]["t"] - r[0]["t"] >= 0.35, "discord: waited the body's retry_after")
        c = json.loads(r[1]["body"])["content"]
        check(len(c) <= 2000 and "cut" in c, "discord: content cut to 2000 with a note")
    # permanent
    rid = str(uuid.uuid4())
    dc.control({"fail_channel": ["904"]})
    produce([result(rid, "discord", reply={"chat_id": "904"})], rid)
    d = dlq_has(rid)
    check(d and "http_404" in d[0], "discord: Unknown Channel dead-lettered")
    cqt.report("discord")


# ------------------------------------------------------------------ Webex

def test_webex(wx):
    rid = str(uuid.uuid4())
    produce([result(rid, "webex", text="blue at 30%",
                    reply={"chat_id": "room1", "message_id": "m1", "thread_ts": "m1"})], rid)
    check(wait_for(lambda: wx.requests("/v1/messages"), 20), "webex: POST /v1/messages")
    r = wx.requests("/v1/messages")
    if r:
        b = json.loads(r[0]["body"])
        check(r[0]["headers"].get("authorization") == "Bearer webex-bot-token", "webex token")
        check(b["roomId"] == "room1" and b["parentId"] == "m1" and "blue at 30%" in b["markdown"],
              "webex: roomId, parentId, markdown")
        check(r[0]["status"] == 200, "webex accepted")
    # 429 Retry-After, long text cut to 7439 bytes
    rid = str(uuid.uuid4())
    wx.control({"rate_limit": {"count": 1, "retry_after": 1}})
    produce([result(rid, "webex", text="ü" * 5000, reply={"chat_id": "room2"})], rid)
    check(wait_for(lambda: any(e["status"] == 200 and "room2" in e["body"]
                               for e in wx.requests("/v1/messages")), 20),
          "webex: delivered after a 429")
    r = [e for e in wx.requests("/v1/messages") if "room2" in e["body"] or e["status"] == 429]
    check([e["status"] for e in r] == [429, 200], "webex: 429 then 200")
    if len(r) == 2:
        check(r[1]["t"] - r[0]["t"] >= 0.9, "webex: Retry-After honoured")
        md = json.loads(r[1]["body"])["markdown"]
        check(len(md.encode()) <= 7439 and "cut" in md, "webex: cut to 7439 bytes with a note")
    # permanent
    rid = str(uuid.uuid4())
    wx.control({"fail_room": ["roomdead"]})
    produce([result(rid, "webex", reply={"chat_id": "roomdead"})], rid)
    d = dlq_has(rid)
    check(d and "http_404" in d[0], "webex: unknown room dead-lettered")
    cqt.report("webex")


# ------------------------------------------------------------------ DingTalk

def test_dingtalk(dt):
    sid = uuid.uuid4().hex
    rid = str(uuid.uuid4())
    reply = {"response_url": dt.session_webhook(sid), "chat_id": "cidG1", "message_id": "msg1",
             "conversation_type": "group", "user_id": "staff1",
             "expires_at": iso(time.time() + 3600)}
    produce([result(rid, "dingtalk", "ack", text="queued", reply=reply),
             result(rid, "dingtalk", text="blue at 30%", reply=reply)], rid)
    check(wait_for(lambda: len(dt.requests("/robot/sendBySession?session=" + sid)) >= 2, 20),
          "dingtalk: ack and final through the session webhook")
    r = dt.requests("/robot/sendBySession?session=" + sid)
    if len(r) >= 2:
        b = json.loads(r[1]["body"])
        check(b["msgtype"] == "markdown" and "blue at 30%" in b["markdown"]["text"] and
              b["markdown"]["title"], "dingtalk: markdown with title and text")
        check(json.loads(r[1]["answer"])["errcode"] == 0, "dingtalk: errcode 0")
        # dingtalk.messages_per_minute: 600 -> one message per 100 ms per conversation
        check(r[1]["t"] - r[0]["t"] >= 0.09, "dingtalk: paced per conversation (%.3f s)" %
              (r[1]["t"] - r[0]["t"]))
    # expired: group message through the OpenAPI with an app token, fetched once
    rid = str(uuid.uuid4())
    reply = {"response_url": dt.session_webhook("gone"), "chat_id": "cidG2",
             "conversation_type": "group", "expires_at": iso(time.time() - 10)}
    rid2 = str(uuid.uuid4())
    reply2 = {"response_url": dt.session_webhook("gone2"), "chat_id": "cidD1",
              "conversation_type": "direct", "user_id": "staff9",
              "expires_at": iso(time.time() - 10)}
    produce([result(rid, "dingtalk", text="group " + rid, reply=reply)], rid)
    produce([result(rid2, "dingtalk", text="direct " + rid2, reply=reply2)], rid2)
    check(wait_for(lambda: dt.requests("/v1.0/robot/groupMessages/send") and
                   dt.requests("/v1.0/robot/oToMessages/batchSend"), 20),
          "dingtalk: after expiry groupMessages/send and oToMessages/batchSend")
    check(not dt.requests("/robot/sendBySession?session=gone"), "dingtalk: expired hook unused")
    g = dt.requests("/v1.0/robot/groupMessages/send")
    o = dt.requests("/v1.0/robot/oToMessages/batchSend")
    toks = dt.requests("/v1.0/oauth2/accessToken")
    check(len(toks) == 1, "dingtalk: one token fetch for both (got %d)" % len(toks))
    if g and o and toks:
        tok = json.loads(toks[0]["answer"])["accessToken"]
        gb, ob = json.loads(g[0]["body"]), json.loads(o[0]["body"])
        check(g[0]["headers"].get("x-acs-dingtalk-access-token") == tok, "dingtalk token header")
        check(gb["openConversationId"] == "cidG2" and gb["robotCode"] == "ding-robot" and
              gb["msgKey"] == "sampleMarkdown" and rid in json.loads(gb["msgParam"])["text"],
              "dingtalk: group message body")
        check(ob["userIds"] == ["staff9"] and rid2 in json.loads(ob["msgParam"])["text"],
              "dingtalk: one-to-one to the sender")
        check(g[0]["status"] == 200 and o[0]["status"] == 200, "dingtalk OpenAPI accepted")
    # the session webhook says expired (errcode 300001 in an HTTP 200): OpenAPI takes over;
    # the token was revoked meanwhile: 401 InvalidAuthentication -> fetched again
    sid, rid = uuid.uuid4().hex, str(uuid.uuid4())
    dt.control({"expire_session": sid, "expire_tokens": True})
    produce([result(rid, "dingtalk", text="hook gone " + rid, reply={
        "response_url": dt.session_webhook(sid), "chat_id": "cidG3",
        "conversation_type": "group", "expires_at": iso(time.time() + 3600)})], rid)
    check(wait_for(lambda: any(rid in e["body"] and e["status"] == 200
                               for e in dt.requests("/v1.0/robot/groupMessages/send")), 20),
          "dingtalk: errcode 300001 falls back to the OpenAPI, a refused token is renewed")
    check([e["status"] for e in dt.requests("/v1.0/robot/groupMessages/send")
           if rid in e["body"]] == [401, 200], "dingtalk: 401 then 200 with a new token")
    check(len(dt.requests("/v1.0/oauth2/accessToken")) == 2, "dingtalk: token fetched again")
    # errcode 130101 (too fast) on the hook: retried
    sid, rid = uuid.uuid4().hex, str(uuid.uuid4())
    dt.control({"rate_limit": {"count": 1, "retry_after": 1}})
    produce([result(rid, "dingtalk", text="fast", reply={
        "response_url": dt.session_webhook(sid), "chat_id": "cidG4",
        "expires_at": iso(time.time() + 3600)})], rid)
    hook = "/robot/sendBySession?session=" + sid
    check(wait_for(lambda: any('"errcode": 0' in e["answer"] for e in dt.requests(hook)), 20),
          "dingtalk: delivered after errcode 130101")
    check([json.loads(e["answer"])["errcode"] for e in dt.requests(hook)] == [130101, 0],
          "dingtalk: 130101 then 0")
    # errcode 410100 (the other "too fast" code) on the hook: retried too, not dead-lettered
    sid, rid = uuid.uuid4().hex, str(uuid.uuid4())
    dt.control({"rate_limit": {"count": 1, "retry_after": 1}, "too_fast_code": 410100})
    produce([result(rid, "dingtalk", text="fast2", reply={
        "response_url": dt.session_webhook(sid), "chat_id": "cidG5",
        "expires_at": iso(time.time() + 3600)})], rid)
    hook = "/robot/sendBySession?session=" + sid
    check(wait_for(lambda: any('"errcode": 0' in e["answer"] for e in dt.requests(hook)), 20),
          "dingtalk: delivered after errcode 410100")
    check([json.loads(e["answer"])["errcode"] for e in dt.requests(hook)] == [410100, 0],
          "dingtalk: 410100 then 0")
    dt.control({"too_fast_code": 130101})
    # permanent
    rid = str(uuid.uuid4())
    dt.control({"fail_conversation": ["cidDead"]})
    produce([result(rid, "dingtalk", reply={"chat_id": "cidDead",
                                            "expires_at": iso(time.time() - 5)})], rid)
    d = dlq_has(rid)
    check(d and "resource.not.found" in d[0], "dingtalk: robot not in group dead-lettered")
    cqt.report("dingtalk")


def main():
    for f in (NOTIFIER, TOOL):
        if not os.path.exists(f):
            sys.exit("missing %s" % f)
    p = subprocess.run([TOOL, "--brokers", BROKERS, "--ensure", T_RESULTS + "," + T_DLQ,
                        "--partitions", "2"], capture_output=True, timeout=60)
    if p.returncode != 0:
        sys.exit("topic creation failed: %s" % p.stderr.decode())
    mm, dc, wx, dt = (FakeMattermost().start(), FakeDiscord().start(), FakeWebex().start(),
                      FakeDingTalk().start())
    cfg, env = write_config(mm, dc, wx, dt)
    n = cqt.Service("notifier", cfg, "n1", TMP, env=env)
    try:
        check(n.wait_ready(30), "notifier ready")
        test_mattermost(mm)
        test_discord(dc)
        test_webex(wx)
        test_dingtalk(dt)
        st, _, body = cqt.http("GET", "http://127.0.0.1:%d/metrics" % n.admin_port(5))
        m = body.decode()
        for plat in ("mattermost", "discord", "webex", "dingtalk"):
            check('chatops_notifier_deliveries_total{platform="%s",outcome="delivered"}' % plat
                  in m, "/metrics counts %s deliveries" % plat)
        logs = n.logs()
        for secret in ("mm-bot-token", "discord-bot-token", "webex-bot-token", "ding-app-secret"):
            check(secret not in logs, "no %s in the logs" % secret)
    finally:
        rc = n.stop()
        check(rc == 0, "SIGTERM drains and exits 0 (rc %s)" % rc)
        for f in (mm, dc, wx, dt):
            f.stop()
    sys.exit(cqt.summary(TMP))


if __name__ == "__main__":
    main()
