#!/usr/bin/env python3
"""GitLab events into the right channels (issue 15), through the real ingress, worker and
notifier on the fixture Kafka and Redis, with GitLab hooks shaped as GitLab documents them
(tests/fakes/gitlab_hooks.py) and the fake Slack and Feishu:

- a bad token is refused (401) with nothing queued on the events topic;
- every event kind reaches the channels its subscription names and no other;
- `fixed` after a failure, and not after a success;
- a re-sent hook (same X-Gitlab-Event-UUID / Idempotency-Key) is posted once;
- running -> success of one pipeline is one message, updated in place (chat.update);
- a subscription added from chat applies to the next event; someone the policy does not
  allow is refused.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import check, stack_file, wait_for  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
import fake_gitlab  # noqa: E402
import gitlab_hooks  # noqa: E402
from fake_feishu import FakeFeishu  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

BUILD = os.environ.get("CQ_BUILD_DIR") or sys.exit("CQ_BUILD_DIR not set (run under ctest)")
BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TMP = tempfile.mkdtemp(prefix="cqt-events-")
T = {k: "cqt.ev.%s.%s" % (k, RUN) for k in ("requests", "results", "audit", "pipeline_events",
                                          "dlq", "events")}
HOOK_TOKEN = "hook-token-" + RUN
SIGNING = "sign-secret"


def write_config(slack, feishu):
    head = cqt.stack_yaml(BROKERS, list(T.items()),
                          [("worker", "cqt-ev-w-" + RUN), ("notifier", "cqt-ev-n-" + RUN),
                           ("events", "cqt-ev-e-" + RUN)], REDIS_PORT, "cqt:ev:%s:" % RUN)
    body = """
notifier:
  slack_channel_interval_ms: 50
  feishu_chat_interval_ms: 50
  backoff_base_ms: 200
events:
  enabled: true
  coalesce_ms: 20000
  coalesce_max: 3
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
  require_encrypt_key: false
  api_base: "%(feishu)s/open-apis"
gitlab:
  hooks:
    - {name: example, token: "${CQT_HOOK_TOKEN}", instance: "https://gitlab.example.com"}
people:
  alice: {slack: [UALICE], roles: [sre]}
  bob: {slack: [UBOB], roles: [dev]}
channels:
  ops: {platform: slack, id: COPS}
  ops-prod: {platform: slack, id: CPROD}
  prod-feishu: {platform: feishu, id: oc_prod}
  dev: {platform: slack, id: CDEV}
  releases: {platform: slack, id: CREL}
  sandbox: {platform: slack, id: CSAND}
  dev-feishu: {platform: feishu, id: oc_dev}
  bursts: {platform: slack, id: CBURST}
  bursts-feishu: {platform: feishu, id: oc_burst}
policy:
  - name: sre-subscribes
    roles: [sre]
    commands: [subscribe, unsubscribe, subscriptions]
subscriptions:
  - name: ops-pipelines
    projects: ["ops/*"]
    kinds: [pipeline]
    statuses: [failed, fixed]
    refs: [main]
    channels: [ops]
  - name: prod-deploys
    kinds: [deployment]
    environments: [production]
    channels: [ops-prod, prod-feishu]
  - name: api-mrs
    projects: [ops/api]
    kinds: [merge_request]
    actions: [open, merge]
    channels: [dev]
  - name: web-pipelines
    projects: [web]
    kinds: [pipeline]
    channels: [dev, dev-feishu]
  - name: ops-other
    projects: [ops]
    kinds: [push, tag_push, release, job, issue, note]
    channels: [releases]
  - name: bursts
    projects: [burst]
    kinds: [push]
    channels: [bursts, bursts-feishu]
""" % {"slack": slack.url, "feishu": feishu.url}
    path = os.path.join(TMP, "events.yaml")
    with open(path, "w") as f:
        f.write(head + body)
    env = {"CQT_SLACK_SIGNING": SIGNING, "CQT_SLACK_BOT": "xoxb-test-token",
           "CQT_FEISHU_SECRET": "s3cret", "CQT_FEISHU_VTOKEN": "vtok",
           "CQT_HOOK_TOKEN": HOOK_TOKEN}
    return path, env


def posts(slack, channel=None, path="/api/chat.postMessage"):
    out = []
    for e in slack.requests(path):
        try:
            b = json.loads(e["body"])
        except ValueError:
            continue
        if channel is None or b.get("channel") == channel:
            out.append(b)
    return out


def text_of(msg):
    return json.dumps(msg, ensure_ascii=False)


def feishu_msgs(feishu, chat):
    with feishu.lock:
        return [m for m in feishu.messages if m["body"].get("receive_id") == chat]


def slash(url, user, channel, text, rurl):
    form = urllib.parse.urlencode({
        "token": "x", "team_id": "T1", "team_domain": "t", "channel_id": channel,
        "channel_name": "sandbox", "user_id": user, "user_name": user.lower(),
        "command": "/ops", "text": text, "response_url": rurl,
        "trigger_id": "trig-" + uuid.uuid4().hex})
    headers = cqt.slack_sign(SIGNING, form.encode())
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return cqt.http("POST", url + "/slack/commands", form.encode(), headers)


def main():
    slack = FakeSlack().start()
    feishu = FakeFeishu().start()
    cfg, env = write_config(slack, feishu)
    # the topics up front (auto-creation on first produce costs a leader election)
    p = subprocess.run([os.path.join(BUILD, "tools", "chatopsctl"), "--config", cfg, "topics",
                        "ensure"], env=dict(os.environ, **env), capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0, "topics ensured (%s)" % p.stderr.strip())
    ing = cqt.Service("ingress", cfg, "ingress", TMP, env=env)
    worker = cqt.Service("worker", cfg, "worker", TMP, env=env)
    notifier = cqt.Service("notifier", cfg, "notifier", TMP, env=env)
    services = [ing, worker, notifier]
    try:
        for s in services:
            s.wait_ready(60)
        hook = "http://127.0.0.1:%d/gitlab/webhook" % ing.port

        def send(kind, **kw):
            st, body = gitlab_hooks.send(hook, HOOK_TOKEN, kind, **kw)
            check(st == 200, "%s hook accepted (%d %s)" % (kind, st, body[:200]))

        # a bad token: 401, nothing queued
        st, _ = gitlab_hooks.send(hook, "wrong-" + HOOK_TOKEN, "pipeline", project="bad/token",
                                  status="failed")
        check(st == 401, "a bad token is refused with 401 (%d)" % st)
        st, _ = gitlab_hooks.send(hook, HOOK_TOKEN, "pipeline", project="bad/instance",
                                  instance="https://other.example.com", status="failed")
        check(st == 401, "the hook's token from another X-Gitlab-Instance is refused (%d)" % st)

        # pipelines of ops/web on main: failed, then fixed, then a success that is not news
        send("pipeline", project="ops/web", object_id=101, status="failed",
             failed_jobs=["unit-tests"], uuid="pl-101-failed-" + RUN)
        check(wait_for(lambda: len(posts(slack, "COPS")) >= 1, 30),
              "a failed pipeline of ops/web on main is posted into #ops")
        first = text_of(posts(slack, "COPS")[0])
        check("Pipeline #101 failed" in first and "unit-tests" in first and
              ":x: *Failed*" in first and "/-/pipelines/101" in first and
              "*Project*\\nops/web" in first and "*Ref*\\nmain" in first,
              "the failure names the pipeline and its failed job: %s" % first[:300])
        send("pipeline", project="ops/web", object_id=102, status="success",
             uuid="pl-102-success-" + RUN)
        check(wait_for(lambda: len(posts(slack, "COPS")) >= 2, 30),
              "the next green pipeline is posted into #ops")
        second = text_of(posts(slack, "COPS")[1]) if len(posts(slack, "COPS")) > 1 else ""
        check("fixed" in second and "#102" in second, "it says fixed: %s" % second[:300])
        send("pipeline", project="ops/web", object_id=103, status="success",
             uuid="pl-103-success-" + RUN)
        # a re-sent hook: same uuid, posted once
        send("pipeline", project="ops/web", object_id=101, status="failed",
             failed_jobs=["unit-tests"], uuid="pl-101-failed-" + RUN)
        send("pipeline", project="ops/web", object_id=104, status="failed",
             idempotency_key="idem-104-" + RUN)
        send("pipeline", project="ops/web", object_id=104, status="failed",
             idempotency_key="idem-104-" + RUN)
        check(wait_for(lambda: len(posts(slack, "COPS")) >= 3, 30),
              "a later failure is posted")
        time.sleep(2)
        msgs = [text_of(m) for m in posts(slack, "COPS")]
        check(len(msgs) == 3, "#ops got exactly failed, fixed, failed (no post for the success "
              "after a success, none for the re-sent hooks): %d %s" % (
                  len(msgs), [m[:80] for m in msgs]))
        check(not any("#103" in m for m in msgs), "no fixed after a success")
        check(sum("#104" in m for m in msgs) == 1, "the hook re-sent with its Idempotency-Key "
              "is posted once")

        # running -> success: one message, updated in place
        send("pipeline", project="web/app", project_id=21, object_id=201, status="running")
        check(wait_for(lambda: len(posts(slack, "CDEV")) >= 1, 30),
              "a running pipeline of web/app is posted into #dev")
        send("pipeline", project="web/app", project_id=21, object_id=201, status="success")
        check(wait_for(lambda: len(posts(slack, "CDEV", "/api/chat.update")) >= 1, 30),
              "its success updates that message (chat.update)")
        upd = posts(slack, "CDEV", "/api/chat.update")
        first_ts = None
        with slack.lock:
            for (ch, ts), m in slack.messages.items():
                if ch == "CDEV" and "#201" in text_of(m):
                    first_ts = ts
        check(len(posts(slack, "CDEV")) == 1 and upd and upd[-1].get("ts") == first_ts and
              "success" in text_of(upd[-1]),
              "running -> success is one message (1 post, update of its ts with success)")
        check(wait_for(lambda: any(m.get("updates") for m in feishu_msgs(feishu, "oc_dev")), 30),
              "on Feishu too: the card is updated in place (PATCH)")
        fd = feishu_msgs(feishu, "oc_dev")
        check(len(fd) == 1 and fd[0]["body"]["msg_type"] == "interactive" and
              "Succeeded" in fd[0]["body"]["content"],
              "one Feishu card for the pipeline, now saying it succeeded: %s" % (
                  [m["body"].get("content", "")[:200] for m in fd]))

        # deployments: production into #ops-prod and the Feishu prod chat; staging nowhere
        # (sent by the fake GitLab, as the demo's does: POST /_send_hook)
        gl = fake_gitlab.Server(("127.0.0.1", 0), fake_gitlab.make_handler(
            fake_gitlab.State("trig", "api")))
        threading.Thread(target=gl.serve_forever, daemon=True).start()
        for dep_id, env_name in ((15, "production"), (16, "staging")):
            st, _, answer = cqt.http("POST", "http://127.0.0.1:%d/_send_hook" % gl.server_address[1],
                                     json.dumps({"url": hook, "token": HOOK_TOKEN,
                                                 "kind": "deployment", "project": "ops/web",
                                                 "object_id": dep_id, "status": "success",
                                                 "environment": env_name}).encode())
            check(st == 200 and json.loads(answer).get("status") == 200,
                  "the fake GitLab sends a %s deployment hook (%s)" % (env_name, answer[:200]))
        gl.shutdown()
        check(wait_for(lambda: posts(slack, "CPROD") and feishu_msgs(feishu, "oc_prod"), 30),
              "a production deployment reaches #ops-prod and the Feishu prod chat")
        # merge requests of ops/api (open) into #dev; other projects nowhere
        send("merge_request", project="ops/api", project_id=9, object_id=12, action="open",
             title="Add the X endpoint", labels=["backend"])
        send("merge_request", project="lab/x", project_id=31, object_id=13, action="open")
        # the rest of the kinds of ops/* into #releases
        for kind in ("push", "tag_push", "release", "job", "issue", "note"):
            kw = {"status": "failed"} if kind == "job" else {}
            if kind in ("tag_push", "release"):
                kw["ref"] = "v1.2.0"
                kw["action"] = "create"
            send(kind, project="ops/web", object_id=500, **kw)
        check(wait_for(lambda: len(posts(slack, "CREL")) >= 6 and
                       any("Add the X endpoint" in text_of(m) for m in posts(slack, "CDEV")),
                       30), "push, tag push, release, job, issue, note into #releases; the MR "
              "into #dev")
        time.sleep(2)
        rel = [text_of(m) for m in posts(slack, "CREL")]
        check(len(rel) == 6, "#releases got one message per kind (%d)" % len(rel))
        for word in ("Push to main", "Tag to v1.2.0", "Release v1.2.0", "Job ", "Issue #500",
                     "Comment on Commit"):
            check(any(word in m for m in rel), "#releases has the %r message" % word)
        check(len(posts(slack, "CPROD")) == 1 and len(feishu_msgs(feishu, "oc_prod")) == 1,
              "one production deployment message per target; staging went nowhere")
        dev = [text_of(m) for m in posts(slack, "CDEV")]
        check(len(dev) == 2 and not any("lab/x" in m for m in dev),
              "#dev: the web/app pipeline and the ops/api MR only (%d)" % len(dev))
        check(not posts(slack, "COPS")[3:] and not posts(slack, "CSAND"),
              "nothing else in #ops or #sandbox")

        # a push of 8 branches: 3 posted, the rest one summary updated in place
        for i in range(8):
            send("push", project="burst/repo", project_id=41, ref="branch-%d" % i)

        def burst_done():
            with slack.lock:
                return any("8 pushes to burst/repo" in text_of(m)
                           for (ch, _), m in slack.messages.items() if ch == "CBURST")
        check(wait_for(burst_done, 30), "the burst's summary reaches 8 pushes")
        bp = [text_of(m) for m in posts(slack, "CBURST")]
        check(len(bp) == 4 and sum("pushes to burst/repo" in m for m in bp) == 1,
              "a push of 8 branches is 3 messages and one summary (%d posts)" % len(bp))
        check(len(posts(slack, "CBURST", "/api/chat.update")) >= 1,
              "the summary is updated in place as pushes arrive")
        check(wait_for(lambda: any("8 pushes to burst/repo" in m["body"].get("content", "")
                                   for m in feishu_msgs(feishu, "oc_burst")), 30),
              "on Feishu too the summary reaches 8 pushes")
        fb = feishu_msgs(feishu, "oc_burst")
        check(len(fb) == 4 and sum(bool(m.get("updates")) for m in fb) == 1,
              "Feishu: 3 messages and one summary card updated in place (%d messages)" % len(fb))

        # a subscription from chat: refused for bob, applied for alice
        url = "http://127.0.0.1:%d" % ing.port
        st, _, _ = slash(url, "UBOB", "CSAND", "subscribe lab/*", slack.response_url("bob"))
        check(st == 200, "bob's subscribe is taken (%d)" % st)
        st, _, _ = slash(url, "UALICE", "CSAND", "subscribe lab/* pipeline failed",
                         slack.response_url("alice"))

        def replied(rid):
            return [e["body"] for e in slack.requests("/response/" + rid)
                    if "ack" not in e["body"].lower() or "ubscri" in e["body"]]
        check(wait_for(lambda: any("denied" in b.lower() or "may not" in b.lower()
                                   for b in replied("bob")), 30),
              "bob may not subscribe: refused with the reason (%s)" % replied("bob")[-1:])
        check(wait_for(lambda: any("Subscribed this channel" in b for b in replied("alice")),
                       30), "alice's subscription is confirmed (%s)" % replied("alice")[-1:])
        # (sent by chatopsctl gitlab-hook, as a newcomer would)
        p = subprocess.run([os.path.join(BUILD, "tools", "chatopsctl"), "--config", cfg,
                            "gitlab-hook", "pipeline", "--project", "lab/x", "--project-id", "31",
                            "--id", "301", "--status", "failed", "--ingress", url],
                           env=dict(os.environ, **env), capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 0 and "Pipeline Hook failed of lab/x -> 200" in p.stdout,
              "chatopsctl gitlab-hook sends a signed pipeline hook (%s %s)" % (
                  p.stdout.strip(), p.stderr.strip()))
        check(wait_for(lambda: posts(slack, "CSAND"), 30),
              "the next failed lab/x pipeline is posted into #sandbox")
        send("pipeline", project="lab/x", project_id=31, object_id=302, status="success")
        time.sleep(2)
        check(len(posts(slack, "CSAND")) == 1, "and its success is not (the subscription says "
              "failed only)")
        # help tells alice (who may) about the subscription built-ins, not bob
        slash(url, "UALICE", "CSAND", "help", slack.response_url("alice-help"))
        slash(url, "UBOB", "CSAND", "help", slack.response_url("bob-help"))
        check(wait_for(lambda: any("`subscribe PROJECT" in b for b in replied("alice-help")), 30),
              "help lists the subscription built-ins for someone who may run them")
        check(wait_for(lambda: any("whoami" in b for b in replied("bob-help")), 30) and
              not any("`subscribe PROJECT" in b for b in replied("bob-help")),
              "and not for someone who may not")
                # subscriptions lists it; unsubscribe stops it
        slash(url, "UALICE", "CSAND", "subscriptions", slack.response_url("alice-list"))
        check(wait_for(lambda: any("`lab/*` by alice" in b for b in replied("alice-list")), 30),
              "subscriptions lists the chat subscription (%s)" % replied("alice-list")[-1:])
        slash(url, "UALICE", "CSAND", "unsubscribe lab/*", slack.response_url("alice-unsub"))
        check(wait_for(lambda: any("Unsubscribed this channel from `lab/*`" in b
                                   for b in replied("alice-unsub")), 30),
              "unsubscribe confirms (%s)" % replied("alice-unsub")[-1:])
        send("pipeline", project="lab/x", project_id=31, object_id=303, status="failed")
        send("pipeline", project="web/app", project_id=21, object_id=202, status="running")
        check(wait_for(lambda: len(posts(slack, "CDEV")) >= 3, 30), "a later event is routed")
        check(len(posts(slack, "CSAND")) == 1, "after unsubscribe, lab/x failures are not "
              "posted into #sandbox")

        # nothing of the refused hooks reached the events topic
        evs = cqt.topic_dump(BROKERS, T["events"], timeout_ms=3000)
        check(evs and not any("bad/token" in json.dumps(e) or "bad/instance" in json.dumps(e)
                                for e in evs),
              "nothing of the refused hooks is on the events topic (%d events)" % len(evs))
        check(not worker.grep("dead-lettering"), "no event was dead-lettered")

        # an unreadable record on the events topic: dead-lettered with the reason, counted
        cqt.produce(BROKERS, T["events"], "7", '{"v":1,"kind":"push","uuid":"u"}')
        check(wait_for(lambda: worker.grep("dead-lettering event"), 30),
              "an unreadable event record is dead-lettered")
        letters = []

        def lettered():
            vals = [json.loads(d["value"]) for d in cqt.topic_dump(BROKERS, T["dlq"],
                                                                 timeout_ms=1500)]
            letters[:] = [v for v in vals if v.get("topic") == T["events"]]
            return letters
        wait_for(lettered, 20, step=0.5)
        check(len(letters) == 1 and "received_at" in letters[0].get("reason", "") and
              letters[0].get("service") == "worker",
              "the dead letter names the events topic and the missing field (%s)" % letters)
        m = worker.metrics()
        for outcome in ("routed", "unmatched", "duplicate", "invalid"):
            check('chatops_worker_events_total{outcome="%s"}' % outcome in m,
                  "chatops_worker_events_total counts %s events" % outcome)
    finally:
        for s in services:
            rc = s.stop()
            check(rc == 0, "%s drains and exits 0 on SIGTERM (%s)" % (s.name, rc))
        slack.stop()
        feishu.stop()
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
