#!/usr/bin/env python3
"""Integration test of the identity resolvers (issue 17) through the real chatops-worker and
chatopsctl: real Kafka and Redis (ctest fixtures); fake Slack users.info, fake Feishu contact
API and fake GitLab users and group members (tests/fakes/fake_directory.py behind
fake_slack.py, fake_feishu.py and fake_gitlab.py, in this process).

A user absent from people: gets role sre from GitLab group membership and may run what the
policy allows; whoami says where each fact came from and how old the cache is; the Slack and
Feishu accounts of one GitLab user see the same `pipelines` (and one cancels what the other
started); removed from the group they lose the role at once after `chatopsctl identity
--flush`, and after the TTL otherwise; an e-mail that matches no GitLab user, or two, or a
Slack profile without an e-mail, is refused with the reason; GitLab down means denied with
the reason, nothing triggered, nothing cached; audit records carry the GitLab login and the
source of the roles; no e-mail address and no secret reaches the worker's log or Redis.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
import cqt  # noqa: E402
import fake_gitlab  # noqa: E402
from cqt import Tail, check, now_rfc3339, report, stack_file  # noqa: E402
from fake_directory import Directory  # noqa: E402
from fake_feishu import FakeFeishu  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TMP = tempfile.mkdtemp(prefix="cqt-identity-")
PREFIX = "cqt-id-%s:" % RUN
TOPICS = {k: "cqt.identity.%s.%s" % (RUN, k)
          for k in ("requests", "results", "audit", "dlq", "pipeline_events")}
SECRETS = {"CQT_BOT": "xoxb-bot-" + RUN, "CQT_APP_SECRET": "appsecret-" + RUN,
           "CQT_GL_ADMIN": "glpat-admin-" + RUN, "CQT_GL_API": "glpat-api-" + RUN,
           "CQT_TRIGGER": "trig-" + RUN}
TTL_S = 8

DIR = Directory(admin_token=SECRETS["CQT_GL_ADMIN"])
SLACK = FakeSlack(token=SECRETS["CQT_BOT"])
SLACK.directory = DIR
SLACK.start()
FEISHU = FakeFeishu(app_id="cli_id_test", app_secret=SECRETS["CQT_APP_SECRET"])
FEISHU.directory = DIR
FEISHU.start()
GL_STATE = fake_gitlab.State(SECRETS["CQT_TRIGGER"], SECRETS["CQT_GL_API"])
GL_STATE.directory = DIR
GL = fake_gitlab.Server(("127.0.0.1", 0), fake_gitlab.make_handler(GL_STATE))
GL_URL = "http://127.0.0.1:%d" % GL.server_address[1]
threading.Thread(target=GL.serve_forever, daemon=True).start()

EMAILS = ["dave@corp.example", "eve@corp.example", "nobody@corp.example", "twin@corp.example"]
DIR.slack_user("UDAVE", EMAILS[0])
DIR.feishu_user("ou_dave", EMAILS[0])
DIR.slack_user("UEVE", EMAILS[1])
DIR.slack_user("UNOBODY", EMAILS[2])
DIR.slack_user("UTWIN", EMAILS[3])
DIR.slack_user("UNOMAIL", None)
DIR.gitlab_user(42, "dave", EMAILS[0])
DIR.gitlab_user(43, "eve", EMAILS[1])
DIR.gitlab_user(50, "twin1", EMAILS[3])
DIR.gitlab_user(51, "twin2", "other@corp.example", public_email=EMAILS[3])
DIR.group("ops/sre", 7, {42: 40, 43: 50})

CONFIG = """%(stack)s
slack:
  bot_token: "${CQT_BOT}"
  api_base: "%(slack)s/api"
feishu:
  app_id: cli_id_test
  app_secret: "${CQT_APP_SECRET}"
  api_base: "%(feishu)s/open-apis"
gitlab:
  base_url: "%(gl)s"
  api_token: "${CQT_GL_API}"
identity:
  resolvers: [static, gitlab_email, roles_from_gitlab]
  cache_ttl_s: %(ttl)d
  negative_ttl_s: %(ttl)d
  lookups_per_s: 50
  timeout_ms: 3000
  gitlab_token: "${CQT_GL_ADMIN}"
  roles_from_gitlab:
    - {group: ops/sre, min_access: maintainer, role: sre}
worker:
  poll_min_ms: 200
  poll_max_ms: 1000
secrets:
  trig: "${CQT_TRIGGER}"
people:
  alice: {gitlab_login: alice.gl, slack: [UALICE], roles: [dev]}
commands:
  lb weight:
    description: Set the traffic share of a pool
    usage: lb weight POOL PERCENT SCRIPT
    mode: trigger_and_wait
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
      - {name: script, required: true, regex: "s-[a-z0-9-]+", max_len: 40}
    pipeline:
      project: ops%%2Fansible-lb
      ref: "{{args.script}}"
      trigger_token: trig
      timeout_s: 120
      progress_interval_s: 60
policy:
  - {name: everyone, roles: ["*", "@unknown"], commands: [help, whoami, pipelines, cancel]}
  - {name: lb, roles: [sre], commands: [lb weight]}
""" % {"stack": cqt.stack_yaml(BROKERS, [(k, v) for k, v in TOPICS.items()],
                              [("worker", "cqt-identity-" + RUN)], REDIS_PORT, PREFIX),
       "slack": SLACK.url, "feishu": FEISHU.url, "gl": GL_URL, "ttl": TTL_S}
CFG = os.path.join(TMP, "identity.yaml")
with open(CFG, "w") as f:
    f.write(CONFIG)
ENV = dict(SECRETS)

for t in ("requests", "pipeline_events", "results", "audit"):
    subprocess.run([os.path.join(BUILD, "bin", "cqt-topic_dump"), BROKERS, TOPICS[t], "0"],
                   capture_output=True)
RESULTS = Tail(BROKERS, TOPICS["results"])
AUDIT = Tail(BROKERS, TOPICS["audit"])


def send(platform, user, command, text):
    rid = str(uuid.uuid4())
    chan = "C1" if platform == "slack" else "oc_1"
    reply = ({"response_url": "https://hooks.example/x", "chat_id": chan} if platform == "slack"
             else {"chat_id": chan, "message_id": "om_1"})
    env = {"v": 1, "id": rid, "received_at": now_rfc3339(), "platform": platform, "tenant": "T1",
           "channel": {"id": chan, "name": chan}, "user": {"id": user, "name": user.lower()},
           "command": command, "text": text, "reply": reply,
           "dedupe_key": "%s:%s" % (platform, rid), "retry_num": 0}
    cqt.produce(BROKERS, TOPICS["requests"], "%s:T1:%s:%s" % (platform, chan, rid), json.dumps(env))
    return rid


def answer(rid, step=None, timeout=20):
    """The first result of rid (an ack or the final when step is None)."""
    got = RESULTS.wait(lambda r: r.get("request_id") == rid and (step is None or r.get("step") == step),
                       1, timeout)
    return got[0] if got else {}


def run(platform, user, command, text="", step=None):
    return answer(send(platform, user, command, text), step)


def decision(rid):
    got = AUDIT.wait(lambda a: a.get("request_id") == rid and a.get("kind") == "decision", 1, 10)
    return got[0] if got else {}


def triggers(rid):
    return [q for q in GL_STATE.log if q["path"].endswith("/trigger/pipeline")
            and ("variables[CHATOPS_REQUEST_ID]", rid) in q["form"]]


def ctl(*args):
    p = subprocess.run([os.path.join(BUILD, "tools", "chatopsctl"), "--config", CFG,
                        "--env", os.devnull, "identity"] + list(args),
                       capture_output=True, text=True, env=dict(os.environ, **ENV), timeout=20)
    return p.returncode, p.stdout + p.stderr


def test_roles_from_group(state):
    rid = send("slack", "UDAVE", "lb", "weight blue 30 s-forever")
    ack = answer(rid)
    check(ack.get("status") == "ok" and ack.get("step") == "ack",
          "dave (not in people:) runs lb weight with role sre from ops/sre: %r" % ack)
    check(len(triggers(rid)) == 1, "the pipeline was triggered once")
    d = decision(rid)
    who = d.get("who", {})
    check(d.get("decision") == "allowed" and who.get("gitlab_login") == "dave",
          "audit: allowed, who.gitlab_login dave: %r" % d)
    check("roles_from_gitlab" in (who.get("roles_source") or "") and
          who.get("identity_source") == "gitlab_email",
          "audit: roles from roles_from_gitlab, login from gitlab_email: %r" % who)
    w = run("slack", "UDAVE", "whoami").get("text", "")
    check("You are dave, GitLab login dave (user #42)" in w and "roles: sre" in w, "whoami: %r" % w)
    check("gitlab_email" in w and "sre via ops/sre (maintainer)" in w and "(cached)" in w,
          "whoami names the sources and the cache age: %r" % w)
    a = run("slack", "UALICE", "whoami").get("text", "")
    check("people: in the chatops config" in a and "alice.gl" in a, "static user: %r" % a)
    state["rid"] = rid
    report("a user absent from people: gets roles from GitLab group membership")


def test_one_person(state):
    rid = state["rid"]
    fe = run("feishu", "ou_dave", "pipelines").get("text", "")
    sl = run("slack", "UDAVE", "pipelines").get("text", "")
    check(rid in fe and rid in sl, "Slack and Feishu accounts of dave list the same pipeline: "
          "feishu %r, slack %r" % (fe, sl))
    check(fe == sl, "the same `pipelines` answer on both platforms")
    other = run("slack", "UALICE", "pipelines").get("text", "")
    check(rid not in other, "another person does not see it: %r" % other)
    c = run("feishu", "ou_dave", "cancel", rid).get("text", "")
    check("cancel requested" in c, "dave cancels from Feishu what he started on Slack: %r" % c)
    fin = answer(rid, "final", 20)
    check("cancel" in fin.get("text", ""), "the pipeline ends canceled: %r" % fin)
    report("the Slack and Feishu accounts of one GitLab user are one person")


def test_removed_from_group():
    # Fresh entries on both platforms first, so the TTL below is counted from here.
    ctl("UDAVE", "--flush")
    ctl("ou_dave", "--platform", "feishu", "--flush")
    t0 = time.time()
    w = run("slack", "UDAVE", "whoami").get("text", "")
    check("roles: sre" in w and "Looked up just now" in w, "slack dave looked up afresh: %r" % w)
    w = run("feishu", "ou_dave", "whoami").get("text", "")
    check("roles: sre" in w, "feishu dave is sre: %r" % w)
    DIR.set_member("ops/sre", 42, None)
    w = run("slack", "UDAVE", "whoami").get("text", "")
    check("roles: sre" in w and "(cached)" in w, "within the TTL the cached roles hold: %r" % w)
    rc, out = ctl("UDAVE")
    check(rc == 0 and "GitLab login dave" in out and "roles: sre" in out and
          "roles_from_gitlab" in out and "expires in" in out, "chatopsctl identity shows it: %r" % out)
    rc, out = ctl("UDAVE", "--flush")
    check(rc == 0 and "flushed" in out, "chatopsctl identity --flush: %r" % out)
    rc, out = ctl("UDAVE")
    check(rc == 0 and "nothing cached" in out, "flushed entry is gone: %r" % out)
    rid = send("slack", "UDAVE", "lb", "weight blue 30 s-success-300")
    r = answer(rid)
    check(r.get("status") == "denied" and "allowed only for role sre" in r.get("text", "") and
          "you: dave, no roles" in r.get("text", ""),
          "after the flush dave has no role at once: %r" % r)
    check(not triggers(rid), "nothing triggered")
    rc, out = ctl("ou_dave", "--platform", "feishu")
    check("roles: sre" in out, "the Feishu entry is still cached: %r" % out)
    check(time.time() - t0 < TTL_S, "the checks above ran within the TTL")
    time.sleep(max(0.0, TTL_S + 0.5 - (time.time() - t0)))
    r = run("feishu", "ou_dave", "lb", "weight blue 30 s-success-300")
    check(r.get("status") == "denied" and "you: dave, no roles" in r.get("text", ""),
          "after the TTL the Feishu account lost the role too: %r" % r)
    report("removed from the group: no role after a flush at once, after the TTL otherwise")


def test_feishu_token_refresh():
    ctl("ou_dave", "--platform", "feishu", "--flush")
    before = FEISHU.token_fetches
    FEISHU.control({"expire_tokens": True})
    w = run("feishu", "ou_dave", "whoami").get("text", "")
    check("GitLab login dave" in w, "a refused Feishu token is fetched again once: %r" % w)
    check(FEISHU.token_fetches == before + 1, "one new token fetched (%d -> %d)"
          % (before, FEISHU.token_fetches))
    report("Feishu: an expired tenant token is replaced and the lookup goes on")


def test_no_match_and_two():
    r = run("slack", "UNOBODY", "lb", "weight blue 30 s-success-300")
    check(r.get("status") == "denied" and
          "no GitLab user has the e-mail address of your Slack account" in r.get("text", ""),
          "an e-mail matching no GitLab user is refused with the reason: %r" % r)
    r = run("slack", "UTWIN", "lb", "weight blue 30 s-success-300")
    check(r.get("status") == "denied" and
          "2 GitLab users (twin1, twin2) have the e-mail address" in r.get("text", ""),
          "an e-mail matching two GitLab users is refused with the reason: %r" % r)
    r = run("slack", "UNOMAIL", "lb", "weight blue 30 s-success-300")
    check(r.get("status") == "denied" and "users:read.email" in r.get("text", ""),
          "a Slack profile without e-mail names the scope: %r" % r)
    w = run("slack", "UNOBODY", "whoami").get("text", "")
    check("not a known user" in w and "no GitLab user has the e-mail" in w and "(cached)" in w,
          "whoami of an unmatched user says why (negative cache): %r" % w)
    report("no or two GitLab users for the e-mail: refused with the reason")


def test_gitlab_down():
    DIR.gitlab_fail = {"status": 503, "count": -1}
    rid = send("slack", "UEVE", "lb", "weight green 10 s-success-300")
    r = answer(rid)
    check(r.get("status") == "denied" and r.get("text") ==
          "cannot resolve your GitLab account right now: GitLab answered 503; try again",
          "GitLab down: denied with the reason: %r" % r)
    check(not triggers(rid), "GitLab down: nothing triggered")
    d = decision(rid)
    check(d.get("decision") == "denied" and "503" in (d.get("detail") or ""),
          "GitLab down: audited as denied: %r" % d)
    rid2 = send("slack", "UEVE", "pipelines", "")
    r = answer(rid2)
    check(r.get("status") == "denied" and "GitLab answered 503" in r.get("text", ""),
          "GitLab down: even built-ins but whoami are refused: %r" % r)
    w = run("slack", "UEVE", "whoami").get("text", "")
    check("GitLab answered 503" in w, "whoami says why: %r" % w)
    rc, out = ctl("UEVE")
    check("nothing cached" in out, "a failure is not cached: %r" % out)
    DIR.gitlab_fail = {"status": 429, "count": 1}
    r = run("slack", "UEVE", "lb", "weight green 10 s-success-300")
    check(r.get("status") == "denied" and "GitLab is rate-limiting lookups (HTTP 429); try again"
          in r.get("text", ""), "GitLab 429: denied with the reason: %r" % r)
    DIR.gitlab_fail, DIR.gitlab_delay = None, 3.5
    r = run("slack", "UEVE", "lb", "weight green 10 s-success-300")
    check(r.get("status") == "denied" and "GitLab did not answer within 3000 ms; try again"
          in r.get("text", ""), "GitLab too slow: denied with the reason: %r" % r)
    DIR.gitlab_delay = 0
    rid = send("slack", "UEVE", "lb", "weight green 10 s-success-300")
    r = answer(rid)
    check(r.get("status") == "ok", "GitLab back: eve (owner of ops/sre) runs it: %r" % r)
    report("GitLab down: denied with the reason, nothing run, nothing cached")


def test_lookups_bounded(worker):
    """identity.lookups_per_s (reloaded to 2): never more lookups than the bucket allows, and
    a request that cannot get a slot within timeout_ms is refused with the reason."""
    with open(CFG) as f:
        text = f.read()
    with open(CFG, "w") as f:
        f.write(text.replace("lookups_per_s: 50", "lookups_per_s: 2")
                    .replace("timeout_ms: 3000", "timeout_ms: 1500"))
    worker.proc.send_signal(1)  # SIGHUP: reload
    check(worker.wait_for("config reloaded", 10), "the worker reloaded its config")
    users = ["UBURST%d" % i for i in range(6)]
    for u in users:
        DIR.slack_user(u, u.lower() + "@corp.example")
    t0 = time.time()
    rids = [send("slack", u, "lb", "weight blue 30 s-success-300") for u in users]
    got = [answer(r) for r in rids]
    times = [t for t in DIR.times() if t >= t0]
    worst = max((sum(1 for t in times if s <= t < s + 1.0) for s in times), default=0)
    check(times and worst <= 4, "at most burst 2 + 2/s lookups in any second: %d of %d"
          % (worst, len(times)))
    limited = [g for g in got if "too many identity lookups at once (identity.lookups_per_s is 2)"
               in g.get("text", "")]
    check(limited and all(g.get("status") == "denied" for g in limited),
          "requests without a free lookup are refused with the reason: %r" % got)
    report("identity lookups are bounded per second")


def test_no_secrets_or_emails(worker):
    log = worker.logs()
    for e in EMAILS:
        check(e not in log and e.split("@")[0] + "%40" not in log, "no e-mail in the log: %s" % e)
    for k, v in SECRETS.items():
        check(v not in log, "no %s in the log" % k)
    with FEISHU.lock:
        tokens = list(FEISHU.tokens)
    check(tokens, "the worker fetched a Feishu token")
    for t in tokens:
        check(t not in log, "no Feishu tenant token in the log")
    r = subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "--scan", "--pattern", PREFIX + "ident:*"],
                       capture_output=True, text=True)
    keys = r.stdout.split()
    check(keys, "identity entries are cached in Redis: %r" % keys)
    for k in keys:
        v = subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "GET", k], capture_output=True,
                           text=True).stdout
        check("@" not in k and "@" not in v and not any(s in v for s in SECRETS.values()),
              "no e-mail or secret in Redis: %s" % k)
    report("no e-mail address or secret in the worker's log or Redis")


def main():
    worker = cqt.Service("worker", CFG, "worker", TMP, args=["--id", "id-" + RUN], env=ENV,
                         http_port=-1)
    state = {}
    try:
        check(worker.wait_for("consuming", 30), "worker started")
        test_roles_from_group(state)
        test_one_person(state)
        test_removed_from_group()
        test_feishu_token_refresh()
        test_no_match_and_two()
        test_gitlab_down()
        test_lookups_bounded(worker)
        test_no_secrets_or_emails(worker)
    finally:
        check(worker.stop() == 0, "the worker drains and exits 0 (no sanitizer report)")
        RESULTS.stop()
        AUDIT.stop()
        SLACK.stop()
        FEISHU.stop()
        GL.shutdown()
    sys.exit(cqt.summary(TMP))


if __name__ == "__main__":
    main()
