#!/usr/bin/env python3
"""Confirmation and approval with buttons (issue 16), through the real ingress and worker on the
Kafka and Redis fixtures, with the fake API as the action's target: signed Slack block_actions
and encrypted Feishu card callbacks are accepted and forged ones refused with nothing queued;
a request that needs approval is parked with Approve / Deny buttons and runs once when another
member of the role approves (approvers in the audit record); self-approval, a wrong role, a
double click, a denial and an expiry each end with one message; confirm / cancel by the
requester only; the typed `approve REQ` fallback; a pending approval survives a worker restart.
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

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, report, stack_file  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402
from fake_feishu import FakeFeishu  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TOPICS = {k: "cqt.approvals.%s.%s" % (RUN, k) for k in ("requests", "results", "audit", "dlq")}
TMP = tempfile.mkdtemp(prefix="cqt-approvals-")
API = FakeAPI().start()
SLACK = FakeSlack(token="xoxb-approvals").start()
FEISHU = FakeFeishu(app_id="cli_ap", app_secret="ap-secret").start()
BASE = "http://127.0.0.1:%d/api/v4" % API.port
SLACK_SECRET = secrets.token_hex(16)
FEISHU_TOKEN = secrets.token_hex(8)
FEISHU_KEY = secrets.token_hex(8)
ENV = dict(CQT_FEISHU_APP_SECRET="ap-secret", CQT_SLACK_SECRET=SLACK_SECRET, CQT_FEISHU_TOKEN=FEISHU_TOKEN, CQT_SLACK_BOT="xoxb-approvals",
           CQT_FEISHU_KEY=FEISHU_KEY, CQ_INGRESS_PORT=None, CQ_KAFKA_BROKERS=None)
PARK_SEQ = 900000
CTL = os.path.join(cqt.BUILD, "tools", "chatopsctl")


def config():
    path = os.path.join(TMP, "stack.yaml")
    direct = """    mode: direct
    args:
      - {name: what, required: true, regex: "[a-z]+"}
    http: {method: POST, base_url: "%s", path: "/%s/{{args.what}}", timeout_ms: 3000}
"""
    with open(path, "w") as f:
        f.write(cqt.stack_yaml(BROKERS, [(k, TOPICS[k]) for k in TOPICS],
                               [("worker", "cqt-approvals-%s" % RUN),
                                ("notifier", "cqt-approvals-n-%s" % RUN)], REDIS_PORT,
                               "cqt-ap-%s:" % RUN) + """
worker: {lease_ms: 1500, confirm_expires_s: 600}
ingress: {listen: 127.0.0.1}
slack: {enabled: true, signing_secret: "${CQT_SLACK_SECRET}", bot_token: "${CQT_SLACK_BOT}",
        api_base: "%s/api"}""" % SLACK.url + """
feishu:
  enabled: true
  verification_token: "${CQT_FEISHU_TOKEN}"
  encrypt_key: "${CQT_FEISHU_KEY}"
  bot_open_id: ou_bot
  app_id: cli_ap
  app_secret: "${CQT_FEISHU_APP_SECRET}"
  api_base: "%s/open-apis"
""" % FEISHU.url + """people:
  alice: {slack: [UALICE], feishu: [ou_alice], roles: [release]}
  bob: {slack: [UBOB], feishu: [ou_bob], roles: [sre]}
  erin: {slack: [UERIN], roles: [sre]}
  dave: {slack: [UDAVE], roles: [dev]}
channels:
  ops: {platform: slack, id: COPS}
commands:
  deploy:
""" + direct % (BASE, "deploy") + """    approval: {roles: [sre], count: 1, expires_s: 600}
  release:
""" + direct % (BASE, "release") + """    approval: {roles: [sre], count: 2}
  purge:
""" + direct % (BASE, "purge") + """    approval: {roles: [sre], expires_s: 10}
  restart:
""" + direct % (BASE, "restart") + """    confirm: true
  scale:
""" + direct % (BASE, "scale") + """
policy:
  - {name: ops, roles: [release, sre, dev], commands: [deploy, purge, restart, release]}
  - {name: scale-careful, roles: [release], commands: [scale], confirm: true}
""")
    return path


def slack_headers(body, secret=None):
    return dict(cqt.slack_sign(secret or SLACK_SECRET, body),
                **{"Content-Type": "application/x-www-form-urlencoded"})


def slash(ing, user, text):
    """Posts a signed slash command; returns the path its replies land on in the fake Slack."""
    rurl = SLACK.response_url("cmd-" + uuid.uuid4().hex)
    body = urllib.parse.urlencode({
        "team_id": "T1", "channel_id": "COPS", "channel_name": "ops", "user_id": user,
        "user_name": user.lower(), "command": "/ops", "text": text,
        "response_url": rurl, "trigger_id": uuid.uuid4().hex,
    }).encode()
    st, _, out = cqt.http("POST", "http://127.0.0.1:%d/slack/commands" % ing.port, body,
                          slack_headers(body))
    check(st == 200, "slash %s answered 200 (%d %s)" % (text, st, out[:200]))
    return rurl[len(SLACK.url):]


def posts(path, pred=lambda m: True):
    """The JSON bodies the notifier posted to a response_url path (as Slack received them)."""
    out = []
    for e in SLACK.requests(path):
        try:
            m = json.loads(e["body"])
        except ValueError:
            continue
        if e["status"] == 200 and pred(m):
            out.append(m)
    return out


def click_body(user, action_id, value, ats=None):
    payload = {"type": "block_actions", "user": {"id": user, "username": user.lower(),
                                                  "team_id": "T1"},
               "team": {"id": "T1"}, "channel": {"id": "COPS", "name": "ops"},
               "container": {"type": "message", "message_ts": "1700000000.000100",
                             "channel_id": "COPS"},
               "trigger_id": uuid.uuid4().hex,
               "response_url": SLACK.response_url("act-" + uuid.uuid4().hex),
               "actions": [{"action_id": action_id, "block_id": "chatops_choice",
                            "value": value, "type": "button",
                            "action_ts": ats or "%.6f" % time.time()}]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def click(ing, user, name, rid, secret=None, body=None):
    body = body or click_body(user, "chatops_" + name, rid)
    st, _, out = cqt.http("POST", "http://127.0.0.1:%d/slack/actions" % ing.port, body,
                          slack_headers(body, secret))
    return st, out


def feishu_card(ing, open_id, name, rid, sign_key=None):
    ev = {"schema": "2.0",
          "header": {"event_id": uuid.uuid4().hex, "event_type": "card.action.trigger",
                     "token": FEISHU_TOKEN, "create_time": str(int(time.time() * 1000)),
                     "tenant_key": "t1", "app_id": "cli_x"},
          "event": {"operator": {"open_id": open_id, "tenant_key": "t1"}, "token": "c-1",
                    "action": {"tag": "button", "value": {"chatops": name, "request_id": rid}},
                    "host": "im_message",
                    "context": {"open_message_id": "om_1", "open_chat_id": "oc_ops"}}}
    body = json.dumps({"encrypt": cqt.feishu_encrypt(FEISHU_KEY, json.dumps(ev).encode())}).encode()
    ts, nonce = str(int(time.time())), uuid.uuid4().hex
    headers = {"Content-Type": "application/json", "X-Lark-Request-Timestamp": ts,
               "X-Lark-Request-Nonce": nonce,
               "X-Lark-Signature": cqt.feishu_signature(sign_key or FEISHU_KEY, ts, nonce, body)}
    st, _, out = cqt.http("POST", "http://127.0.0.1:%d/feishu/cards" % ing.port, body, headers)
    return st, out


def feishu_message(ing, open_id, text):
    """A signed, encrypted im.message.receive_v1 @mentioning the bot; returns its message_id."""
    eid = uuid.uuid4().hex
    ev = {"schema": "2.0",
          "header": {"event_id": eid, "event_type": "im.message.receive_v1",
                     "token": FEISHU_TOKEN, "create_time": str(int(time.time() * 1000)),
                     "tenant_key": "t1", "app_id": "cli_ap"},
          "event": {"sender": {"sender_id": {"open_id": open_id}, "sender_type": "user"},
                    "message": {"message_id": "om_" + eid, "chat_id": "oc_ops",
                                "chat_type": "group", "message_type": "text",
                                "content": json.dumps({"text": "@_user_1 " + text}),
                                "mentions": [{"key": "@_user_1", "id": {"open_id": "ou_bot"},
                                              "name": "ChatOps"}]}}}
    body = json.dumps({"encrypt": cqt.feishu_encrypt(FEISHU_KEY, json.dumps(ev).encode())}).encode()
    ts, nonce = str(int(time.time())), uuid.uuid4().hex
    headers = {"Content-Type": "application/json", "X-Lark-Request-Timestamp": ts,
               "X-Lark-Request-Nonce": nonce,
               "X-Lark-Signature": cqt.feishu_signature(FEISHU_KEY, ts, nonce, body)}
    st, _, _ = cqt.http("POST", "http://127.0.0.1:%d/feishu/events" % ing.port, body, headers)
    check(st == 200, "feishu message %s accepted (%d)" % (text, st))
    return "om_" + eid


def calls(path):
    return [r for r in API.requests() if r["path"].endswith(path)]


def parked(results, text, timeout=20):
    got = results.wait(lambda m: m.get("seq") == PARK_SEQ and text in m.get("command", ""),
                       timeout=timeout)
    return got[0] if got else None


def outcome(results, rid, timeout=20):
    got = results.wait(lambda m: m.get("request_id") == rid and m.get("seq") == PARK_SEQ + 1,
                       timeout=timeout)
    return got


def click_answer(results, requests_tail, user, name, rid, timeout=20):
    """The worker's answer to the click by user: the result of the request the click became."""
    reqs = requests_tail.wait(lambda m: (m.get("action") or {}).get("request_id") == rid and
                              m["user"]["id"] == user and m["action"]["name"] == name
                              and m["action"].get("name") != "run", timeout=timeout)
    if not reqs:
        return None
    cid = reqs[-1]["id"]
    got = results.wait(lambda m: m.get("request_id") == cid and m.get("step") == "final",
                       timeout=timeout)
    return got[-1] if got else None


def main():
    cfg = config()
    for t in TOPICS.values():
        cqt.topic_dump(BROKERS, t, timeout_ms=200)
    requests_tail = Tail(BROKERS, TOPICS["requests"])
    results = Tail(BROKERS, TOPICS["results"])
    audit = Tail(BROKERS, TOPICS["audit"])
    ing = cqt.Service("ingress", cfg, "ingress", TMP, env=ENV)
    worker = cqt.Service("worker", cfg, "worker", TMP, env=ENV)
    notifier = cqt.Service("notifier", cfg, "notifier", TMP, env=ENV)
    try:
        check(ing.wait_ready() and worker.wait_ready() and notifier.wait_ready(),
              "ingress, worker and notifier ready")

        # expiry first: it takes expires_s (10 s) plus a sweep
        purge_path = slash(ing, "UALICE", "purge cache")
        p_purge = parked(results, "purge cache")

        # -- the ingress: forged clicks refused with nothing queued; a link button ignored
        st, _ = click(ing, "UBOB", "approve", "0000aaaa-1111-2222-3333-444455556666",
                      secret="not-the-secret")
        check(st == 401, "a forged block_actions is refused with 401 (%d)" % st)
        st, _ = feishu_card(ing, "ou_bob", "approve", "0000aaaa-1111-2222-3333-444455556666",
                            sign_key="wrong-key")
        check(st == 401, "a forged Feishu card callback is refused with 401 (%d)" % st)
        body = click_body("UBOB", "open_pipeline", "x")
        st, _ = click(ing, "UBOB", "", "", body=body)
        check(st == 200, "a link button's click is acknowledged (%d)" % st)
        time.sleep(1.5)  # anything queued would have arrived by now (the ingress answers after Kafka)
        check(not requests_tail.find(lambda m: (m.get("action") or {}).get("request_id") ==
                                     "0000aaaa-1111-2222-3333-444455556666"),
              "nothing was queued for the forged clicks")
        check(not requests_tail.find(lambda m: m.get("command") == "open_pipeline" or
                                     (m.get("action") or {}).get("value") == "x"),
              "nothing was queued for the link button")
        report("forged clicks")

        # -- approval: parked with buttons, nothing run
        web_path = slash(ing, "UALICE", "deploy web")
        p = parked(results, "deploy web")
        check(p is not None and p["step"] == "progress" and
              p.get("buttons") == {"kind": "approval", "request_id": p["request_id"]},
              "deploy web is parked with Approve / Deny buttons: %s" % p)
        rid = p["request_id"] if p else "none"
        check("approve %s" % rid in (p or {}).get("text", ""), "the text fallback is named")
        check(not calls("/deploy/web"), "nothing ran before approval")

        a = (click(ing, "UALICE", "approve", rid), click_answer(results, requests_tail, "UALICE",
                                                                  "approve", rid))
        check(a[0][0] == 200 and a[1] and a[1]["status"] == "denied" and
              "own request" in a[1]["text"], "self-approval refused: %s" % (a[1],))
        click(ing, "UDAVE", "approve", rid)
        a = click_answer(results, requests_tail, "UDAVE", "approve", rid)
        check(a and a["status"] == "denied" and "roles sre" in a["text"],
              "approval by a wrong role refused: %s" % (a,))
        check(not calls("/deploy/web"), "still nothing ran")
        report("self-approval and wrong role")

        click(ing, "UBOB", "approve", rid)
        click(ing, "UBOB", "approve", rid)  # double click
        o = outcome(results, rid)
        check(o and "approved by bob" in o[0]["text"], "the outcome replaces the buttons: %s" % o)
        shown = cqt.wait_for(lambda: posts(web_path, lambda m: "approved by bob" in json.dumps(m)
                                           and m.get("replace_original")), 15)
        btns = posts(web_path, lambda m: "chatops_approve" in json.dumps(m.get("blocks")))
        check(len(btns) == 1 and btns[0].get("response_type") == "in_channel",
              "Slack showed the request once with Block Kit Approve / Deny buttons")
        fin = results.wait(lambda m: m.get("request_id") == rid and m.get("step") == "final")
        check(fin and fin[0]["status"] == "ok", "the approved request ran: %s" % fin)
        click(ing, "UERIN", "approve", rid)  # a late click
        late = click_answer(results, requests_tail, "UERIN", "approve", rid)
        check(late and "already ended: approved" in late["text"], "a late click: %s" % (late,))
        time.sleep(1.5)
        check(len(calls("/deploy/web")) == 1, "ran exactly once (%d calls)"
              % len(calls("/deploy/web")))
        check(len(posts(web_path, lambda m: "approved by bob" in json.dumps(m))) == 1 and
              shown, "Slack showed the outcome once, replacing the buttons (a double click, "
              "a late click)")
        aud = audit.wait(lambda m: m.get("request_id") == rid and m.get("approvers") == "bob")
        check(aud, "the audit record names the approver")
        report("approve by another role member runs once")

        # -- two approvers: each person counts once
        slash(ing, "UALICE", "release web")
        pr = parked(results, "release web")
        ridr = pr["request_id"] if pr else "none"
        check(pr and "approval of 2 people" in pr["text"], "asks for 2 approvers")
        click(ing, "UBOB", "approve", ridr)
        a = click_answer(results, requests_tail, "UBOB", "approve", ridr)
        check(a and "counted (1 of 2)" in a["text"], "the first approval is counted: %s" % (a,))
        click(ing, "UBOB", "approve", ridr)
        time.sleep(1)
        check(not calls("/release/web") and not outcome(results, ridr, 0.1),
              "one person twice is still one approval: not run")
        click(ing, "UERIN", "approve", ridr)
        check(results.wait(lambda m: m.get("request_id") == ridr and m.get("step") == "final"),
              "the second person's approval runs it")
        check(len(calls("/release/web")) == 1, "once")
        check(audit.wait(lambda m: m.get("request_id") == ridr and
                         m.get("approvers") == "bob,erin"), "both approvers in the audit record")
        met = worker.metrics()
        check('chatops_worker_approvals_total{outcome="counted"}' in met and
              'chatops_worker_approvals_total{outcome="approved"}' in met and
              'chatops_worker_approvals_total{outcome="self"}' in met,
              "the worker counts clicks by outcome")
        report("two approvers")

        # -- denial
        api_path = slash(ing, "UALICE", "deploy api")
        p2 = parked(results, "deploy api")
        rid2 = p2["request_id"] if p2 else "none"
        deny_body = click_body("UBOB", "chatops_deny", rid2)
        click(ing, "UBOB", "deny", rid2, body=deny_body)
        click(ing, "UBOB", "deny", rid2, body=deny_body)  # Slack re-sends the same click
        o = outcome(results, rid2)
        check(len(o) == 1 and "denied by bob" in o[0]["text"] and o[0]["status"] == "denied",
              "a denial ends it with one message: %s" % o)
        time.sleep(1)
        check(not calls("/deploy/api"), "a denied request never runs")
        check(cqt.wait_for(lambda: len(posts(api_path, lambda m: "denied by bob" in json.dumps(m)))
                           == 1, 10), "Slack showed the denial once")
        dups = requests_tail.wait(lambda m: (m.get("action") or {}).get("request_id") == rid2,
                                  n=2, timeout=10)
        check(len(dups) == 2 and dups[0]["dedupe_key"] == dups[1]["dedupe_key"],
              "the re-sent click keeps its dedupe key: %s" % [d["dedupe_key"] for d in dups])
        ids = {d["id"] for d in dups}
        answers = results.find(lambda m: m.get("request_id") in ids and m.get("step") == "final")
        check(len({(a["request_id"], a["step"], a["seq"]) for a in answers}) == 1,
              "the re-sent click is answered as the first one (%d)" % len(answers))
        report("denial")

        # -- confirmation, by the requester only; and a rule's confirm
        slash(ing, "UALICE", "restart web")
        p3 = parked(results, "restart web")
        rid3 = p3["request_id"] if p3 else "none"
        check(p3 and p3.get("buttons", {}).get("kind") == "confirm" and
              p3.get("response_type") == "ephemeral", "Confirm / Cancel for the requester")
        click(ing, "UBOB", "confirm", rid3)
        a = click_answer(results, requests_tail, "UBOB", "confirm", rid3)
        check(a and "Only the person who asked" in a["text"], "others cannot confirm: %s" % (a,))
        click(ing, "UALICE", "cancel", rid3)
        o = outcome(results, rid3)
        check(len(o) == 1 and "cancelled by alice" in o[0]["text"], "cancel ends it: %s" % o)
        slash(ing, "UALICE", "scale web")
        p4 = parked(results, "scale web")
        rid4 = p4["request_id"] if p4 else "none"
        check(p4 and p4.get("buttons", {}).get("kind") == "confirm", "a rule's confirm: true")
        click(ing, "UALICE", "confirm", rid4)
        check(results.wait(lambda m: m.get("request_id") == rid4 and m.get("step") == "final"),
              "confirmed: it ran")
        check(not calls("/restart/web") and len(calls("/scale/web")) == 1,
              "the cancelled one did not run, the confirmed one once")
        report("confirm and cancel")

        # -- Feishu card callback approves; typed fallback; a worker restart in between
        slash(ing, "UALICE", "deploy db")
        p5 = parked(results, "deploy db")
        rid5 = p5["request_id"] if p5 else "none"
        worker.kill(9)
        worker.start()
        check(worker.wait_ready(), "the worker restarted")
        st, _ = feishu_card(ing, "ou_bob", "approve", rid5)
        check(st == 200, "an encrypted Feishu card callback is accepted (%d)" % st)
        check(results.wait(lambda m: m.get("request_id") == rid5 and m.get("step") == "final"),
              "approved from Feishu after a worker restart: it ran")
        slash(ing, "UALICE", "deploy cache")
        p6 = parked(results, "deploy cache")
        rid6 = p6["request_id"] if p6 else "none"
        slash(ing, "UBOB", "approve %s" % rid6)
        check(results.wait(lambda m: m.get("request_id") == rid6 and m.get("step") == "final"),
              "the typed `approve REQ` fallback")
        check(len(calls("/deploy/db")) == 1 and len(calls("/deploy/cache")) == 1, "each ran once")
        report("feishu card, typed fallback, restart")

        # -- Feishu end to end: the card with buttons is updated in place with the outcome
        om = feishu_message(ing, "ou_alice", "deploy lark")
        pf = parked(results, "deploy lark")
        ridf = pf["request_id"] if pf else "none"

        def card():
            with FEISHU.lock:
                got = [m for m in FEISHU.messages if m["path"].endswith("/%s/reply" % om) and
                       "chatops" in m["body"].get("content", "")]
            return got[0] if got else None
        c = cqt.wait_for(card, 15)
        check(c and c["body"]["msg_type"] == "interactive" and
              '"chatops": "approve"' in json.dumps(json.loads(c["body"]["content"])),
              "Feishu shows the request as a card with Approve / Deny buttons: %s" % c)
        st, _ = feishu_card(ing, "ou_bob", "approve", ridf)
        check(st == 200, "bob's card click is accepted")
        upd = cqt.wait_for(lambda: c and c.get("updates") and "approved by bob" in
                           c["body"]["content"], 15)
        check(upd and '"chatops"' not in c["body"]["content"],
              "the card is updated in place: the outcome replaces the buttons: %s" % c)
        check(results.wait(lambda m: m.get("request_id") == ridf and m.get("step") == "final")
              and len(calls("/deploy/lark")) == 1, "the approved Feishu request ran once")
        report("feishu card updated in place")

        # -- chatopsctl clicks as the platforms would (Slack, then Feishu)
        for what, plat in (("queue", "slack"), ("cron", "feishu")):
            slash(ing, "UALICE", "deploy %s" % what)
            pc = parked(results, "deploy %s" % what)
            ridc = pc["request_id"] if pc else "none"
            p = subprocess.run([CTL, "--config", cfg, "approve", ridc, "--as", "bob",
                                "--platform", plat, "--ingress", "http://127.0.0.1:%d" % ing.port,
                                "--sink", "http://127.0.0.1:9", "--timeout", "1"],
                               env=dict(os.environ, **{k: v for k, v in ENV.items() if v}),
                               capture_output=True, text=True, timeout=60)
            check("ingress: HTTP 200" in p.stdout, "chatopsctl approve --platform %s posts a "
                  "click the ingress accepts: %s %s" % (plat, p.stdout, p.stderr))
            check(results.wait(lambda m: m.get("request_id") == ridc and m.get("step") == "final"),
                  "chatopsctl's %s click approved it" % plat)
            check(len(calls("/deploy/%s" % what)) == 1, "it ran once")
        report("chatopsctl click")

        # -- expiry
        prid = p_purge["request_id"] if p_purge else "none"
        o = outcome(results, prid, timeout=25)
        check(len(o) == 1 and o[0]["status"] == "timeout" and "expired" in o[0]["text"],
              "an unapproved request expires with one message: %s" % o)
        click(ing, "UBOB", "approve", prid)
        a = click_answer(results, requests_tail, "UBOB", "approve", prid)
        check(a and "expired" in a["text"], "approving an expired request: %s" % (a,))
        time.sleep(1)
        check(not calls("/purge/cache") and len(outcome(results, prid, 0.1)) == 1,
              "an expired request never runs, and its message is posted once")
        check(cqt.wait_for(lambda: len(posts(purge_path, lambda m: "expired" in json.dumps(m)))
                           == 1, 10), "Slack showed the expiry once")
        report("expiry")
    finally:
        for s in (ing, worker, notifier):
            s.stop()
        for t in (requests_tail, results, audit):
            t.stop()
        API.stop()
        SLACK.stop()
        FEISHU.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
