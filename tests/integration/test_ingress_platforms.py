#!/usr/bin/env python3
"""Integration test of the ingress's four issue-18 platforms (DingTalk, Mattermost, Discord,
Webex) against the real Kafka fixture: for each, a good request becomes the right envelope on
the requests topic (consumed here), bad, missing or stale signatures/tokens are refused with
nothing queued, and a re-sent event carries the same dedupe key. Discord: PING gets PONG,
a command gets the deferred response only after Kafka confirmed it. `chatopsctl send
--platform ...` is checked to sign exactly as each platform (the ingress accepts it).
Discord's keypair is generated here with the openssl CLI. Standard library only.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
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
from cqt import check  # noqa: E402

CTL = os.path.join(BUILD, "tools", "chatopsctl")
BROKERS = cqt.stack_file("kafka/bootstrap")
RUN = uuid.uuid4().hex[:8]
TOPIC_REQ = "cqt.platforms.%s.requests" % RUN
TMP = tempfile.mkdtemp(prefix="cqt-platforms-")
DT_SECRET = secrets.token_hex(16)
MM_TOKENS = [secrets.token_hex(12), secrets.token_hex(12)]
WX_SECRET = secrets.token_hex(16)


def ed25519_keypair():
    """A fresh Ed25519 keypair from the openssl CLI: (private seed hex, public key hex)."""
    der = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    seed = der[-32:]
    key = os.path.join(TMP, "discord.der")
    with open(key, "wb") as f:
        f.write(der)
    pub = subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", key, "-pubout",
                          "-outform", "DER"], capture_output=True, check=True).stdout[-32:]
    return seed.hex(), pub.hex()


DC_SEED, DC_PUB = ed25519_keypair()


def ed25519_sign(msg):
    path = os.path.join(TMP, "msg.bin")
    with open(path, "wb") as f:
        f.write(msg)
    return subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", os.path.join(TMP, "discord.der"),
                           "-keyform", "DER", "-rawin", "-in", path],
                          capture_output=True, check=True).stdout.hex()


CONFIG = os.path.join(TMP, "ingress.yaml")
with open(CONFIG, "w") as f:
    f.write("""
log: {level: info}
kafka:
  brokers: "%s"
  topics: {requests: "%s"}
ingress: {listen: 127.0.0.1}
limits: {max_text: 200}
dingtalk: {enabled: true, app_secret: "${CQT_DT}"}
mattermost: {enabled: true, tokens: {eng: "${CQT_MM_A}", sales: "${CQT_MM_B}"}}
discord: {enabled: true, public_key: %s, application_id: "4242", api_base: "http://127.0.0.1:1/api/v10"}
webex: {enabled: true, webhook_secret: "${CQT_WX}", bot_person_id: p-bot, api_base: "http://127.0.0.1:1/v1"}
channels:
  ops-dt: {platform: dingtalk, id: cidOps}
  ops-mm: {platform: mattermost, id: mmch1}
  ops-dc: {platform: discord, id: "900"}
  ops-wx: {platform: webex, id: room-1}
people:
  alice: {dingtalk: [staff-alice], mattermost: [mm-alice], discord: ["800"], webex: [p-alice],
          roles: [ops]}
commands:
  lb weight:
    mode: direct
    args: [{name: pool, type: enum, values: [blue, green]}, {name: percent, type: int}]
    http: {base_url: "http://127.0.0.1:1", path: /w}
""" % (BROKERS, TOPIC_REQ, DC_PUB))
ENV = dict(CQT_DT=DT_SECRET, CQT_MM_A=MM_TOKENS[0], CQT_MM_B=MM_TOKENS[1], CQT_WX=WX_SECRET,
           CQ_INGRESS_PORT=None, CQ_KAFKA_BROKERS=None, CQ_DISCORD_TEST_PRIVATE_KEY=DC_SEED)


def post(port, path, body, headers):
    status, _, data = cqt.http("POST", "http://127.0.0.1:%d%s" % (port, path), body, headers)
    return status, data.decode("utf-8", "replace")


def dingtalk_headers(ts_ms=None, secret=DT_SECRET):
    ts = str(int(time.time() * 1000) if ts_ms is None else ts_ms)
    sign = base64.b64encode(hmac.new(secret.encode(), (ts + "\n" + secret).encode(),
                                     hashlib.sha256).digest()).decode()
    return {"Content-Type": "application/json", "timestamp": ts, "sign": sign}


def dingtalk_body(msg_id, text="lb weight blue 30"):
    return json.dumps({
        "conversationId": "cidOps", "msgId": msg_id, "senderNick": "Alice",
        "senderStaffId": "staff-alice", "senderId": "$:LWCP_v1:$alice", "conversationType": "2",
        "conversationTitle": "ops", "sessionWebhook": "http://fake/robot/sendBySession?session=s1",
        "sessionWebhookExpiredTime": int(time.time() * 1000) + 5400000,
        "text": {"content": " " + text}, "msgtype": "text", "robotCode": "bot"}).encode()


def mm_body(trigger, token=MM_TOKENS[0], text="lb weight blue 30"):
    return urllib.parse.urlencode({
        "channel_id": "mmch1", "channel_name": "ops", "command": "/ops", "team_id": "team1",
        "response_url": "http://fake/hooks/commands/x", "text": text, "token": token,
        "trigger_id": trigger, "user_id": "mm-alice", "user_name": "alice"}).encode()


MM_CT = {"Content-Type": "application/x-www-form-urlencoded"}


def discord_headers(body, ts=None, good=True):
    ts = str(int(time.time()) if ts is None else ts)
    sig = ed25519_sign(ts.encode() + body)
    if not good:
        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    return {"Content-Type": "application/json", "X-Signature-Ed25519": sig,
            "X-Signature-Timestamp": ts}


def discord_body(iid):
    return json.dumps({
        "type": 2, "id": iid, "application_id": "4242", "token": "itok-" + iid, "guild_id": "g1",
        "channel_id": "900", "member": {"user": {"id": "800", "username": "alice"}},
        "data": {"name": "lb", "options": [{"type": 1, "name": "weight", "options": [
            {"type": 4, "name": "percent", "value": 30},
            {"type": 3, "name": "pool", "value": "blue"}]}]}}).encode()


def webex_headers(body, secret=WX_SECRET):
    return {"Content-Type": "application/json",
            "X-Spark-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def webex_body(mid, person="p-alice"):
    return json.dumps({"id": "wh1", "resource": "messages", "event": "created", "orgId": "org",
                       "data": {"id": mid, "roomId": "room-1", "roomType": "group",
                                "personId": person, "personEmail": "alice@example.com"}}).encode()


class Sink(http.server.BaseHTTPRequestHandler):
    """What chatopsctl send needs from a platform fake here: an empty /_log, and Webex's
    POST /v1/messages answering a message id."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        self._send(b"[]")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self._send(json.dumps({"id": "wxmsg-" + uuid.uuid4().hex[:8]}).encode())

    def _send(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    tail = cqt.Tail(BROKERS, TOPIC_REQ)
    ing = cqt.Service("ingress", CONFIG, "ingress", TMP, env=ENV)
    deadline = time.time() + 30
    while time.time() < deadline and ing.alive():
        try:
            if cqt.http("GET", "http://127.0.0.1:%d/readyz" % ing.admin_port())[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        sys.exit("ingress did not become ready:\n%s" % ing.logs())
    port = ing.port

    def queued(key):
        return tail.wait(lambda m: m.get("dedupe_key") == key, timeout=10)

    # ---- DingTalk
    mid = "msg" + uuid.uuid4().hex
    body = dingtalk_body(mid)
    # the first produce to a fresh topic may outlast the budget: a 503 (not queued) is re-sent
    # as DingTalk would
    end, st = time.time() + 20, 0
    while st != 200 and time.time() < end:
        st, ans = post(port, "/dingtalk/events", body, dingtalk_headers())
    check(st == 200, "dingtalk: a signed message is accepted (%d %s)" % (st, ans))
    got = queued("dingtalk:" + mid)
    check(len(got) >= 1, "dingtalk: an envelope on the topic")
    n_first = len(got)  # more than one only if a 503 above was "outcome unknown" and landed
    if got:
        e = got[0]
        check(e["platform"] == "dingtalk" and e["command"] == "lb" and
              e["text"] == "weight blue 30", "dingtalk: command and text")
        check(e["user"]["id"] == "staff-alice" and e["channel"]["id"] == "cidOps",
              "dingtalk: user and conversation")
        r = e.get("reply", {})
        check(r.get("response_url") == "http://fake/robot/sendBySession?session=s1" and
              r.get("chat_id") == "cidOps" and r.get("message_id") == mid and
              r.get("user_id") == "staff-alice" and r.get("conversation_type") == "group" and
              r.get("expires_at", "").endswith("Z"), "dingtalk: the reply route %s" % r)
    st, _ = post(port, "/dingtalk/events", body, dingtalk_headers())
    check(st == 200 and len(tail.wait(lambda m: m.get("dedupe_key") == "dingtalk:" + mid,
                                       n_first + 1)) == n_first + 1,
          "dingtalk: a re-sent message has the same dedupe key")
    bad = [("bad sign", dingtalk_headers(secret="wrong")),
           ("stale", dingtalk_headers(ts_ms=int(time.time() * 1000) - 3700 * 1000)),
           ("missing", {"Content-Type": "application/json"})]
    for what, h in bad:
        m2 = "msg" + uuid.uuid4().hex
        st, ans = post(port, "/dingtalk/events", dingtalk_body(m2), h)
        check(st == 401, "dingtalk: %s refused with 401 (%d %s)" % (what, st, ans.strip()))
        check(not tail.wait(lambda m: m.get("dedupe_key") == "dingtalk:" + m2, timeout=0.3),
              "dingtalk: %s: nothing queued" % what)

    # ---- Mattermost
    trig = "trig-" + uuid.uuid4().hex
    st, ans = post(port, "/mattermost/commands", mm_body(trig), MM_CT)
    check(st == 200 and '"ephemeral"' in ans and "queued: lb weight blue 30" in ans,
          "mattermost: accepted with an ephemeral text (%d %s)" % (st, ans))
    got = queued("mattermost:" + trig)
    check(len(got) == 1 and got[0]["user"]["id"] == "mm-alice" and
          got[0]["reply"]["response_url"] == "http://fake/hooks/commands/x" and
          got[0]["reply"]["chat_id"] == "mmch1", "mattermost: the envelope")
    st, _ = post(port, "/mattermost/commands", mm_body("trig-b-" + trig, token=MM_TOKENS[1]), MM_CT)
    check(st == 200 and queued("mattermost:trig-b-" + trig), "mattermost: the second team's token")
    st, _ = post(port, "/mattermost/commands", mm_body(trig), MM_CT)
    check(st == 200 and len(tail.wait(lambda m: m.get("dedupe_key") == "mattermost:" + trig, 2)) == 2,
          "mattermost: a re-sent command has the same dedupe key")
    for what, tok in [("bad token", "x" + MM_TOKENS[0][1:]), ("missing token", "")]:
        t2 = "trig-" + uuid.uuid4().hex
        st, ans = post(port, "/mattermost/commands", mm_body(t2, token=tok), MM_CT)
        check(st == 401, "mattermost: %s refused with 401 (%d)" % (what, st))
        check(not tail.wait(lambda m: m.get("dedupe_key") == "mattermost:" + t2, timeout=0.3),
              "mattermost: %s: nothing queued" % what)

    # ---- Discord
    ping = b'{"type":1}'
    st, ans = post(port, "/discord/interactions", ping, discord_headers(ping))
    check(st == 200 and json.loads(ans) == {"type": 1}, "discord: PING answered PONG (%s)" % ans)
    st, ans = post(port, "/discord/interactions", ping, discord_headers(ping, good=False))
    check(st == 401, "discord: a bad signature is refused with 401 (Discord's own probe)")
    iid = str(10 ** 17 + secrets.randbelow(10 ** 17))
    body = discord_body(iid)
    st, ans = post(port, "/discord/interactions", body, discord_headers(body))
    check(st == 200 and json.loads(ans) == {"type": 5}, "discord: deferred response (%s)" % ans)
    got = queued("discord:" + iid)
    check(len(got) == 1, "discord: one envelope")
    if got:
        e = got[0]
        check(e["command"] == "lb" and e["text"] == "weight blue 30",
              "discord: options flattened in the configured order (%r)" % e["text"])
        r = e["reply"]
        check(r.get("response_url") == "http://127.0.0.1:1/api/v10/webhooks/4242/itok-" + iid and
              r.get("app_id") == "4242" and r.get("chat_id") == "900" and "expires_at" in r,
              "discord: the reply route %s" % r)
    st, ans = post(port, "/discord/interactions", body, discord_headers(body))
    check(st == 200 and len(tail.wait(lambda m: m.get("dedupe_key") == "discord:" + iid, 2)) == 2,
          "discord: a re-sent interaction has the same dedupe key")
    for what, h in [("bad signature", discord_headers(body, good=False)),
                    ("stale", discord_headers(body, ts=int(time.time()) - 400)),
                    ("missing", {"Content-Type": "application/json"})]:
        i2 = str(10 ** 17 + secrets.randbelow(10 ** 17))
        b2 = discord_body(i2)
        if what == "bad signature":
            h = discord_headers(b2, good=False)
        elif what == "stale":
            h = discord_headers(b2, ts=int(time.time()) - 400)
        st, _ = post(port, "/discord/interactions", b2, h)
        check(st == 401, "discord: %s refused with 401 (%d)" % (what, st))
        check(not tail.wait(lambda m: m.get("dedupe_key") == "discord:" + i2, timeout=0.3),
              "discord: %s: nothing queued" % what)

    # ---- Webex
    mid = "wx-" + uuid.uuid4().hex
    body = webex_body(mid)
    st, ans = post(port, "/webex/events", body, webex_headers(body))
    check(st == 200, "webex: a signed notification is accepted (%d %s)" % (st, ans))
    got = queued("webex:" + mid)
    check(len(got) == 1 and got[0].get("text_source") == "webex" and
          got[0]["reply"]["message_id"] == mid and got[0]["reply"]["thread_ts"] == mid and
          got[0]["channel"]["id"] == "room-1" and got[0]["user"]["id"] == "p-alice",
          "webex: the envelope names the message, its text left to the worker")
    own = webex_body("wx-own-" + mid, person="p-bot")
    st, _ = post(port, "/webex/events", own, webex_headers(own))
    check(st == 200 and not tail.wait(lambda m: m.get("dedupe_key") == "webex:wx-own-" + mid, 0.3),
          "webex: the bot's own message is acknowledged and dropped")
    for what, h in [("bad signature", webex_headers(body, secret="nope")),
                    ("missing", {"Content-Type": "application/json"})]:
        m2 = "wx-" + uuid.uuid4().hex
        b2 = webex_body(m2)
        st, _ = post(port, "/webex/events", b2, h if what == "missing" else webex_headers(b2, "nope"))
        check(st == 401, "webex: %s refused with 401 (%d)" % (what, st))
        check(not tail.wait(lambda m: m.get("dedupe_key") == "webex:" + m2, timeout=0.3),
              "webex: %s: nothing queued" % what)

    # ---- chatopsctl send signs like each platform
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = "http://127.0.0.1:%d" % sink.server_address[1]
    for platform in ("dingtalk", "mattermost", "discord", "webex"):
        before = len(tail.find(lambda m, p=platform: m.get("platform") == p))
        p = subprocess.run([CTL, "--config", CONFIG, "send", "--platform", platform,
                            "--ingress", "http://127.0.0.1:%d" % port, "--sink", sink_url,
                            "--timeout", "0.5", "lb weight blue 30"],
                           capture_output=True, text=True, env=dict(os.environ, **{
                               k: v for k, v in ENV.items() if v is not None}), timeout=30)
        check("ingress: HTTP 200" in p.stdout,
              "chatopsctl send --platform %s: the ingress accepted it (%s %s)" %
              (platform, p.stdout.strip()[:200], p.stderr.strip()[:300]))
        got = tail.wait(lambda m, p=platform: m.get("platform") == p, n=before + 1, timeout=10)
        check(len(got) == before + 1 and got[-1]["user"]["id"] in
              ("staff-alice", "mm-alice", "800", "p-alice"),
              "chatopsctl send --platform %s: an envelope from alice" % platform)
    sink.shutdown()

    met = ing.metrics()
    check('chatops_ingress_requests_total{route="discord_interactions",outcome="queued"}' in met,
          "metrics: counted by the new routes")
    check('chatops_ingress_rejected_total{route="dingtalk_events",reason="stale timestamp"} 1' in met,
          "metrics: the stale DingTalk callback by reason")
    logs = ing.logs()
    for s in [DT_SECRET, WX_SECRET] + MM_TOKENS:
        check(s not in logs, "the ingress log holds no secret")
    ing.stop()
    tail.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
