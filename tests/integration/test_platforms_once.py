#!/usr/bin/env python3
"""The issue-18 platforms end to end as far as the worker (real Kafka and Redis, the real
ingress and worker, the fake API as the command's target): a DingTalk message, a Mattermost
command and a Discord interaction, each sent twice as the platform re-sends it, run once (one
call), and each final result carries the request's reply route to the notifier (the new
reply.expires_at, conversation_type, user_id, app_id fields included). Standard library only.
"""
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, stack_file  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TOPICS = {k: "cqt.once.%s.%s" % (RUN, k) for k in ("requests", "results", "audit", "dlq")}
TMP = tempfile.mkdtemp(prefix="cqt-platforms-once-")
DT_SECRET, MM_TOKEN = secrets.token_hex(16), secrets.token_hex(12)
API = FakeAPI().start()
# RFC 8032 test key 1: signs for the test only
DC_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
DC_PUB = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def config():
    return cqt.stack_yaml(BROKERS, [(k, TOPICS[k]) for k in ("requests", "results", "audit", "dlq")],
                          [("worker", "cqt-once-" + RUN)], REDIS_PORT, "cqt-once-%s:" % RUN) + """
ingress: {listen: 127.0.0.1}
dingtalk: {enabled: true, app_secret: "${CQT_DT}"}
mattermost: {enabled: true, tokens: {eng: "${CQT_MM}"}}
discord: {enabled: true, public_key: %s, application_id: "4242"}
people:
  alice: {dingtalk: [staff-alice], mattermost: [mm-alice], discord: ["800"], roles: [sre]}
channels:
  ops-dt: {platform: dingtalk, id: cidOps}
  ops-mm: {platform: mattermost, id: mmch1}
  ops-dc: {platform: discord, id: "900"}
commands:
  lb weight:
    mode: direct
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
    http:
      method: PUT
      base_url: "http://127.0.0.1:%d/api/v4"
      path: "/lb/{{args.pool}}/{{args.percent}}"
      timeout_ms: 3000
policy:
  - {name: lb, roles: [sre], commands: [lb weight], channels: [ops-dt, ops-mm, ops-dc]}
""" % (DC_PUB, API.port)


def dingtalk(port, msg_id, percent):
    body = json.dumps({
        "conversationId": "cidOps", "msgId": msg_id, "senderNick": "Alice",
        "senderStaffId": "staff-alice", "conversationType": "2", "msgtype": "text",
        "sessionWebhook": "http://127.0.0.1:1/robot/sendBySession?session=" + msg_id,
        "sessionWebhookExpiredTime": int(time.time() * 1000) + 5400000,
        "text": {"content": " lb weight blue %d" % percent}}).encode()
    return cqt.http("POST", "http://127.0.0.1:%d/dingtalk/events" % port, body,
                    dict(cqt.dingtalk_sign(DT_SECRET), **{"Content-Type": "application/json"}))[0]


def mattermost(port, trigger, percent):
    body = urllib.parse.urlencode({
        "channel_id": "mmch1", "command": "/ops", "team_id": "t1", "text": "lb weight blue %d" % percent,
        "token": MM_TOKEN, "trigger_id": trigger, "user_id": "mm-alice", "user_name": "alice",
        "response_url": "http://127.0.0.1:1/hooks/" + trigger}).encode()
    return cqt.http("POST", "http://127.0.0.1:%d/mattermost/commands" % port, body,
                    {"Content-Type": "application/x-www-form-urlencoded"})[0]


def discord(port, iid, percent):
    body = json.dumps({
        "type": 2, "id": iid, "application_id": "4242", "token": "itok-" + iid,
        "guild_id": "g1", "channel_id": "900", "member": {"user": {"id": "800", "username": "alice"}},
        "data": {"name": "lb", "options": [{"type": 1, "name": "weight", "options": [
            {"type": 3, "name": "pool", "value": "blue"},
            {"type": 4, "name": "percent", "value": percent}]}]}}).encode()
    return cqt.http("POST", "http://127.0.0.1:%d/discord/interactions" % port, body,
                    dict(cqt.discord_sign(DC_SEED, body), **{"Content-Type": "application/json"}))[0]


def main():
    cfg = os.path.join(TMP, "stack.yaml")
    with open(cfg, "w") as f:
        f.write(config())
    env = dict(CQT_DT=DT_SECRET, CQT_MM=MM_TOKEN, CQ_INGRESS_PORT=None, CQ_KAFKA_BROKERS=None)
    # the topics first: a first produce to a topic that does not exist yet may outlast the
    # produce budget (the ingress then rightly answers 503)
    ctl = subprocess.run([os.path.join(cqt.BUILD, "tools", "chatopsctl"), "--config", cfg,
                          "topics", "ensure"], capture_output=True, text=True,
                         env=dict(os.environ, CQT_DT=DT_SECRET, CQT_MM=MM_TOKEN))
    check(ctl.returncode == 0, "topics ensure (%s)" % ctl.stderr.strip()[:200])
    results = Tail(BROKERS, TOPICS["results"])
    ing = cqt.Service("ingress", cfg, "ingress", TMP, env=env)
    w = cqt.Service("worker", cfg, "worker", TMP, args=["--id", "once-" + RUN], env=env,
                    http_port=-1)
    if not ing.wait_ready(30):
        sys.exit("ingress not ready:\n" + ing.logs())
    check(w.wait_for("assigned [0-9]+ partition", 60), "the worker consumes")
    cases = [("dingtalk", dingtalk, "msg" + uuid.uuid4().hex, 31),
             ("mattermost", mattermost, "trig-" + uuid.uuid4().hex, 32),
             ("discord", discord, str(10 ** 17 + secrets.randbelow(10 ** 17)), 33)]
    for name, send, event, pct in cases:
        # a 503 is re-sent as the platform does (a fresh topic's first produce may outlast the
        # budget); then the platform's own re-send of the same event
        end, code = time.time() + 20, 0
        while code != 200 and time.time() < end:
            code = send(ing.port, event, pct)
        again = send(ing.port, event, pct)
        check(code == 200 and again == 200, "%s: delivered, then re-sent (%d, %d)" %
              (name, code, again))
    for name, send, event, pct in cases:
        got = results.wait(lambda r, n=name: r.get("platform") == n and r.get("step") == "final"
                           and r.get("status") == "ok", 1, 30)
        check(got, "%s: a final ok result" % name)
        r = got[0]["reply"] if got else {}
        if name == "dingtalk":
            check(r.get("user_id") == "staff-alice" and r.get("conversation_type") == "group" and
                  r.get("expires_at", "").endswith("Z") and r.get("message_id") == event and
                  r.get("response_url", "").endswith("session=" + event),
                  "dingtalk: the reply route reaches the result (%s)" % r)
        elif name == "mattermost":
            check(r.get("response_url", "").endswith("/hooks/" + event) and r.get("chat_id") == "mmch1",
                  "mattermost: the reply route reaches the result (%s)" % r)
        else:
            check(r.get("app_id") == "4242" and r.get("conversation_type") == "group" and
                  r.get("response_url", "").endswith("/webhooks/4242/itok-" + event) and
                  r.get("expires_at", "").endswith("Z"),
                  "discord: the reply route reaches the result (%s)" % r)
    time.sleep(2)  # the duplicates' turn
    for name, send, event, pct in cases:
        calls = API.requests("/api/v4/lb/blue/%d" % pct)
        check(len(calls) == 1, "%s: sent twice, run once (%d calls)" % (name, len(calls)))
    ing.stop()
    w.stop()
    results.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
