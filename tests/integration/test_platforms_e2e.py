#!/usr/bin/env python3
"""Issue 18's four platforms end to end (real Kafka and Redis, the real ingress, worker and
notifier; the platforms and the command's target faked): for DingTalk, Mattermost, Discord
and Webex a signed `lb weight blue 30` runs once and its final reply reaches the platform's
fake by the platform's route (session webhook, response_url, the interaction webhook's
@original / follow-ups, Webex messages in the thread), and a production deploy the policy
denies is answered there with the reason. `lb weight` is a direct command here (the seed's
pipeline version needs the demo GitLab; the path from chat to chat is the same).
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
from cqt import check, stack_file, wait_for  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402
from fake_dingtalk import FakeDingTalk  # noqa: E402
from fake_discord import FakeDiscord  # noqa: E402
from fake_mattermost import FakeMattermost  # noqa: E402
from fake_webex import FakeWebex  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TOPICS = {k: "cqt.pe2e.%s.%s" % (RUN, k) for k in ("requests", "results", "audit", "dlq")}
TMP = tempfile.mkdtemp(prefix="cqt-platforms-e2e-")
DT_SECRET, MM_TOKEN, WX_SECRET = secrets.token_hex(16), secrets.token_hex(12), secrets.token_hex(12)
# RFC 8032 test key 1: signs for the test only
DC_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
DC_PUB = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
API = FakeAPI().start()
DT = FakeDingTalk(app_secret=DT_SECRET).start()
MM = FakeMattermost(token="mm-bot").start()
DC = FakeDiscord(application_id="4242", token="dc-bot").start()
WX = FakeWebex(token="wx-bot").start()


def config():
    return cqt.stack_yaml(BROKERS, [(k, TOPICS[k]) for k in ("requests", "results", "audit", "dlq")],
                          [("worker", "cqt-pe2e-w-" + RUN), ("notifier", "cqt-pe2e-n-" + RUN)],
                          REDIS_PORT, "cqt-pe2e-%s:" % RUN) + """
ingress: {listen: 127.0.0.1}
dingtalk: {enabled: true, app_secret: "${CQT_DT}", api_base: "%(dt)s", app_key: ding-app-key,
           robot_code: ding-robot}
mattermost: {enabled: true, tokens: {eng: "${CQT_MM}"}, api_base: "%(mm)s",
             bot_token: "${CQT_MMB}"}
discord: {enabled: true, public_key: %(pub)s, application_id: "4242", api_base: "%(dc)s/api/v10",
          bot_token: "${CQT_DCB}"}
webex: {enabled: true, webhook_secret: "${CQT_WX}", bot_token: "${CQT_WXB}", api_base: "%(wx)s/v1",
        bot_name: ChatOps}
people:
  alice: {dingtalk: [staff-alice], mattermost: [mm-alice], discord: ["800"], webex: [p-alice],
          roles: [sre]}
  carol: {slack: [U0CAROL001], roles: [release]}
channels:
  ops-dt: {platform: dingtalk, id: cidOps}
  ops-mm: {platform: mattermost, id: mmch1}
  ops-dc: {platform: discord, id: "900"}
  ops-wx: {platform: webex, id: room-1}
commands:
  lb weight:
    mode: direct
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
    http:
      method: PUT
      base_url: "http://127.0.0.1:%(api)d/api/v4"
      path: "/lb/{{args.pool}}/{{args.percent}}"
      timeout_ms: 3000
  deploy:
    mode: direct
    args:
      - {name: service, type: string, required: true}
      - {name: env, type: enum, required: true, values: [staging, production]}
    http:
      method: POST
      base_url: "http://127.0.0.1:%(api)d/api/v4"
      path: "/deploy/{{args.service}}/{{args.env}}"
      timeout_ms: 3000
policy:
  - {name: lb, roles: [sre], commands: [lb weight], channels: [ops-dt, ops-mm, ops-dc, ops-wx]}
  - {name: deploy-staging, roles: [sre], commands: [deploy], args: {env: [staging]}}
  - {name: deploy-production, roles: [release], commands: [deploy], args: {env: [production]}}
""" % {"dt": DT.url, "mm": MM.url, "dc": DC.url, "wx": WX.url, "pub": DC_PUB, "api": API.port}


def post(port, path, body, headers):
    return cqt.http("POST", "http://127.0.0.1:%d%s" % (port, path), body, headers)[0]


def dingtalk(port, msg_id, text):
    body = json.dumps({
        "conversationId": "cidOps", "msgId": msg_id, "senderNick": "Alice",
        "senderStaffId": "staff-alice", "conversationType": "2", "msgtype": "text",
        "sessionWebhook": DT.session_webhook(msg_id),
        "sessionWebhookExpiredTime": int(time.time() * 1000) + 5400000,
        "text": {"content": " " + text}}).encode()
    return post(port, "/dingtalk/events", body,
                dict(cqt.dingtalk_sign(DT_SECRET), **{"Content-Type": "application/json"}))


def mattermost(port, trigger, text):
    body = urllib.parse.urlencode({
        "channel_id": "mmch1", "command": "/ops", "team_id": "t1", "text": text,
        "token": MM_TOKEN, "trigger_id": trigger, "user_id": "mm-alice", "user_name": "alice",
        "response_url": MM.response_url(trigger)}).encode()
    return post(port, "/mattermost/commands", body,
                {"Content-Type": "application/x-www-form-urlencoded"})


def discord(port, iid, text):
    w = text.split()
    if w[0] == "lb":
        data = {"name": "lb", "options": [{"type": 1, "name": "weight", "options": [
            {"type": 3, "name": "pool", "value": w[2]}, {"type": 4, "name": "percent", "value": int(w[3])}]}]}
    else:
        data = {"name": "deploy", "options": [{"type": 3, "name": "service", "value": w[1]},
                                              {"type": 3, "name": "env", "value": w[2]}]}
    body = json.dumps({"type": 2, "id": iid, "application_id": "4242", "token": "itok-" + iid,
                       "guild_id": "g1", "channel_id": "900",
                       "member": {"user": {"id": "800", "username": "alice"}},
                       "data": data}).encode()
    return post(port, "/discord/interactions", body,
                dict(cqt.discord_sign(DC_SEED, body), **{"Content-Type": "application/json"}))


def webex(port, mid, text):
    WX.control({"message": {"id": mid, "roomId": "room-1", "personId": "p-alice",
                            "text": "ChatOps " + text}})
    body = json.dumps({"id": "wh1", "resource": "messages", "event": "created", "orgId": "org",
                       "data": {"id": mid, "roomId": "room-1", "roomType": "group",
                                "personId": "p-alice", "personEmail": "alice@example.com"}}).encode()
    return post(port, "/webex/events", body, {
        "Content-Type": "application/json", "X-Spark-Signature": cqt.webex_signature(WX_SECRET, body)})


def replies(name, event):
    """The texts the platform's fake took for this request, in order."""
    if name == "dingtalk":
        es = DT.requests("/robot/sendBySession?session=" + event)
        return [json.loads(e["body"])["markdown"]["text"] for e in es if '"errcode": 0' in e["answer"]]
    if name == "mattermost":
        es = MM.requests("/hooks/commands/" + event)
        return [json.loads(e["body"])["text"] for e in es if e["status"] == 200]
    if name == "discord":
        es = DC.requests("/api/v10/webhooks/4242/itok-" + event)
        return [json.loads(e["body"])["content"] for e in es if e["status"] == 200]
    es = WX.requests("/v1/messages")
    return [json.loads(e["body"])["markdown"] for e in es
            if e["method"] == "POST" and e["status"] == 200 and json.loads(e["body"]).get("parentId") == event]


def main():
    cfg = os.path.join(TMP, "stack.yaml")
    with open(cfg, "w") as f:
        f.write(config())
    secrets_env = dict(CQT_DT=DT_SECRET, CQT_MM=MM_TOKEN, CQT_WX=WX_SECRET, CQT_MMB="mm-bot",
                       CQT_DCB="dc-bot", CQT_WXB="wx-bot")
    env = dict(secrets_env, CQ_INGRESS_PORT=None, CQ_KAFKA_BROKERS=None)
    ctl = subprocess.run([os.path.join(cqt.BUILD, "tools", "chatopsctl"), "--config", cfg,
                          "topics", "ensure"], capture_output=True, text=True,
                         env=dict(os.environ, **secrets_env))
    check(ctl.returncode == 0, "topics ensure (%s)" % ctl.stderr.strip()[:200])
    ing = cqt.Service("ingress", cfg, "ingress", TMP, env=env)
    w = cqt.Service("worker", cfg, "worker", TMP, args=["--id", "pe2e-" + RUN], env=env, http_port=-1)
    n = cqt.Service("notifier", cfg, "notifier", TMP, env=env)
    try:
        if not ing.wait_ready(30):
            sys.exit("ingress not ready:\n" + ing.logs())
        check(w.wait_for("assigned [0-9]+ partition", 60), "the worker consumes")
        check(n.wait_ready(30), "the notifier is ready")
        sends = {"dingtalk": dingtalk, "mattermost": mattermost, "discord": discord, "webex": webex}
        cases = []
        for name, send in sends.items():
            for text in ("lb weight blue 30", "deploy web production"):
                event = (str(10 ** 17 + secrets.randbelow(10 ** 17)) if name == "discord"
                         else "%s-%s" % (name[:2], uuid.uuid4().hex))
                end, code = time.time() + 20, 0
                while code != 200 and time.time() < end:  # a fresh topic's first produce
                    code = send(ing.port, event, text)
                check(code == 200, "%s: %s accepted (%d)" % (name, text, code))
                cases.append((name, text, event))
        for name, text, event in cases:
            if text.startswith("lb"):
                ok = wait_for(lambda: any("lb weight blue 30" in t and "done" in t
                                          for t in replies(name, event)), 30)
                check(ok, "%s: the final reply of lb weight reached the platform (%s)" %
                      (name, replies(name, event)))
            else:
                ok = wait_for(lambda: any("denied" in t for t in replies(name, event)), 30)
                got = replies(name, event)
                check(ok and any("allowed only for role release" in t for t in got),
                      "%s: the denied deploy answered with the reason (%s)" % (name, got))
        check(len(API.requests("/api/v4/lb/blue/30")) == 4, "lb weight ran once per platform")
        check(not API.requests("/api/v4/deploy/"), "no production deploy ran")
        # the routes: Discord edited its deferred answer first, Webex replied in the thread
        dc = [e for e in DC.requests("/api/v10/webhooks/4242/") if e["status"] == 200]
        check(dc and dc[0]["method"] == "PATCH" and dc[0]["path"].endswith("/messages/@original"),
              "discord: the first reply edits @original")
        check(not DC.requests("/api/v10/channels/") and not MM.requests("/api/v4/posts") and
              not DT.requests("/v1.0/"), "live webhooks used, no API fallbacks")
        logs = ing.logs() + w.logs() + n.logs()
        for s in (DT_SECRET, MM_TOKEN, WX_SECRET, "mm-bot", "dc-bot", "wx-bot"):
            check(s not in logs, "no secret in the logs")
    finally:
        for svc in (ing, w, n):
            svc.stop()
        for fk in (DT, MM, DC, WX, API):
            fk.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
