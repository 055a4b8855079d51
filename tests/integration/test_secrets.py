#!/usr/bin/env python3
"""Secrets never leave (issue 19 item 9), through the real ingress, worker and notifier with
the real Kafka + Redis fixtures, the fake API and the fake Slack. Secrets are used where the
config allows them (a header, a JSON body); direct calls then fail every way we can provoke:
4xx and 5xx from an API that echoes the request's headers and body in its error, an echo in a
2xx answer shown as the reply, a timeout, a refused connection, and a reply that ends in the
DLQ. Then every log line of the three services (at debug level), every request the fake Slack
got, every record on the audit, DLQ and results topics, and every Redis value (SCAN, then
GET/HGETALL/ZRANGE/SMEMBERS/LRANGE by type) is searched for each configured secret value:
none may hold one. Also: a config with {{secrets.X}} in a URL path is refused at load with
one file:line:col line that does not show the value.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CQ_BUILD_DIR") or sys.exit("CQ_BUILD_DIR not set (run under ctest)")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
import cqt  # noqa: E402
from cqt import Tail, check, free_port, report, stack_file, wait_for  # noqa: E402
from fake_api import FakeAPI  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

WORKER = os.path.join(BUILD, "worker", "chatops-worker")
BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
PREFIX = "cqt-sec-%s:" % RUN
TOPICS = {k: "cqt.secrets.%s.%s" % (RUN, k)
          for k in ("requests", "results", "audit", "dlq", "pipeline-events")}
TMP = tempfile.mkdtemp(prefix="cqt-secrets-")
SECRETS = {  # env var -> value; each value is searched for everywhere
    "CQT_SEC_API": "apiTok-" + uuid.uuid4().hex,
    "CQT_SEC_BODY": "bodyKey-" + uuid.uuid4().hex,
    "CQT_SEC_SIGNING": "signing-" + uuid.uuid4().hex,
    "CQT_SEC_BOT": "xoxb-" + uuid.uuid4().hex,
}


def direct(name, base, path, timeout_ms=2000, extra=""):
    return """  %s:
    description: %s
    mode: direct
    args: [{name: what, required: true}]
    http:
      method: POST
      base_url: "%s"
      path: "%s/{{args.what}}"
      headers:
        Authorization: "Bearer {{secrets.api}}"
        X-Api-Key: "{{secrets.api}}"
      body: '{"what": "{{args.what}}", "key": "{{secrets.body}}"}'
      timeout_ms: %d
%s""" % (name, name, base, path, timeout_ms, extra)


def config(api, slack, ingress_port, closed_port):
    base = "http://127.0.0.1:%d/api" % api.port
    cmds = (direct("c4xx", base, "/e4xx") + direct("c5xx", base, "/e5xx") +
            direct("cecho", base, "/ok") + direct("cslow", base, "/slow", timeout_ms=800) +
            direct("crefused", "http://127.0.0.1:%d/api" % closed_port, "/x") +
            direct("ctpl", base, "/ok",
                   extra="      reply_template: \"got {{response.message}}\"\n"))
    return """log: {level: debug}
kafka:
  brokers: "%(brokers)s"
  partitions: 2
  topics: {requests: "%(requests)s", results: "%(results)s", audit: "%(audit)s",
           dlq: "%(dlq)s", pipeline_events: "%(pe)s"}
  groups: {worker: "cqt-sec-w-%(run)s", notifier: "cqt-sec-n-%(run)s"}
redis: {host: 127.0.0.1, port: %(redis)d, prefix: "%(prefix)s"}
ingress: {listen: 127.0.0.1, port: %(iport)d}
worker: {lease_ms: 1500}
notifier: {max_attempts: 2, backoff_base_ms: 100, backoff_max_ms: 200,
           slack_channel_interval_ms: 10}
slack:
  enabled: true
  signing_secret: "${CQT_SEC_SIGNING}"
  bot_token: "${CQT_SEC_BOT}"
  api_base: "%(slack)s/api"
secrets:
  api: "${CQT_SEC_API}"
  body: "${CQT_SEC_BODY}"
people:
  alice: {slack: [UALICE], roles: [sre]}
channels:
  ops: {platform: slack, id: COPS}
  gone: {platform: slack, id: CGONE}
commands:
%(cmds)s
policy:
  - {name: all, roles: [sre], commands: [c4xx, c5xx, cecho, cslow, crefused, ctpl]}
""" % {"brokers": BROKERS, "requests": TOPICS["requests"], "results": TOPICS["results"],
       "audit": TOPICS["audit"], "dlq": TOPICS["dlq"], "pe": TOPICS["pipeline-events"],
       "run": RUN, "redis": REDIS_PORT, "prefix": PREFIX, "iport": ingress_port,
       "slack": slack.url, "cmds": cmds}


def Svc(kind, cfg, **kw):
    """A service through the shared launcher (cqt.Service) with the test's secrets in its
    environment, its log in TMP/KIND.log."""
    return cqt.Service(kind, cfg, kind, TMP, env=SECRETS, **kw)


def slash(port, text, channel, response_url):
    body = urllib.parse.urlencode({
        "token": "legacy", "team_id": "T0TEAM", "team_domain": "acme", "channel_id": channel,
        "channel_name": "ops", "user_id": "UALICE", "user_name": "alice", "command": "/ops",
        "text": text, "response_url": response_url,
        "trigger_id": "trig." + uuid.uuid4().hex}).encode()
    ts = str(int(time.time()))
    sig = cqt.slack_signature(SECRETS["CQT_SEC_SIGNING"], ts, body)
    req = urllib.request.Request("http://127.0.0.1:%d/slack/commands" % port, data=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "X-Slack-Request-Timestamp": ts,
                                          "X-Slack-Signature": sig})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def redis_dump():
    """Every key under our prefix with its value(s), as text."""
    cli = ["redis-cli", "-p", str(REDIS_PORT), "--raw"]
    keys = subprocess.run(cli + ["--scan", "--pattern", PREFIX + "*"], capture_output=True,
                          text=True).stdout.split()
    out = []
    for k in keys:
        t = subprocess.run(cli + ["TYPE", k], capture_output=True, text=True).stdout.strip()
        cmd = {"string": ["GET", k], "hash": ["HGETALL", k], "zset": ["ZRANGE", k, "0", "-1",
                                                                       "WITHSCORES"],
               "set": ["SMEMBERS", k], "list": ["LRANGE", k, "0", "-1"]}.get(t)
        val = subprocess.run(cli + cmd, capture_output=True, text=True).stdout if cmd else ""
        out.append("%s %s %s" % (k, t, val))
    return keys, "\n".join(out)


def leaks(where, text):
    found = [name for name, v in SECRETS.items() if v in text]
    check(not found, "%s holds no secret value (found %s)" % (where, found))
    return found


def test_refused_at_load():
    path = os.path.join(TMP, "bad.yaml")
    with open(path, "w") as f:
        f.write("""kafka: {brokers: "127.0.0.1:1"}
secrets:
  api: "${CQT_SEC_API}"
commands:
  x:
    mode: direct
    http: {base_url: "http://h/api", path: "/v1/{{secrets.api}}/items"}
""")
    p = subprocess.Popen([WORKER, "--config", path, "--http-port", "0"],
                         env=dict(os.environ, **SECRETS), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:  # it accepted the file and runs
        p.terminate()
        out, _ = p.communicate()
    check(p.returncode not in (0, -signal.SIGTERM),
          "the worker refuses a config with a secret in a URL path (rc %s)" % p.returncode)
    check(re.search(re.escape(path) + r":7:\d+: commands\.x\.http\.path: \{\{secrets\.api\}\} "
                    r"may not appear in the URL", out) is not None,
          "one file:line:col line names the place:\n%s" % out)
    leaks("the refusal", out)
    report("refused_at_load")


def main():
    api = FakeAPI().start()
    slack = FakeSlack(token=SECRETS["CQT_SEC_BOT"]).start()
    closed = free_port()  # nothing listens here: connection refused
    api.set_rules([
        {"prefix": "/api/e4xx", "status": 403, "echo": True},
        {"prefix": "/api/e5xx", "status": 502, "echo": True},
        {"prefix": "/api/ok", "status": 200, "echo": True},
        {"prefix": "/api/slow", "status": 200, "delay_ms": 3000, "echo": True},
    ])
    iport = free_port()
    cfg = os.path.join(TMP, "stack.yaml")
    with open(cfg, "w") as f:
        f.write(config(api, slack, iport, closed))
    test_refused_at_load()

    svcs = [Svc("worker", cfg, args=["--id", "w-" + RUN]), Svc("notifier", cfg),
            Svc("ingress", cfg, port=iport)]
    aport = svcs[2].admin_port()  # the ingress's admin listener (/readyz, /metrics)
    tails = {k: Tail(BROKERS, TOPICS[k]) for k in ("audit", "dlq", "results")}
    try:
        up = wait_for(lambda: all("admin http listening" in s.logs() for s in svcs[:2]), 30)
        check(up, "worker and notifier start")

        def ready():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % aport, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        check(wait_for(ready, 60), "ingress ready")
        # warm up: the first produce to a fresh topic may outlast the ingress's budget
        check(wait_for(lambda: "queued" in slash(iport, "help", "COPS",
                                                 slack.response_url("warm-" + RUN))[1], 60, 1),
              "a first command is queued")
        cases = [("c4xx", "COPS"), ("c5xx", "COPS"), ("cecho", "COPS"), ("cslow", "COPS"),
                 ("crefused", "COPS"), ("ctpl", "COPS"), ("c4xx", "CGONE")]
        rids = []
        for i, (cmd, ch) in enumerate(cases):
            rid = "r%d-%s" % (i, RUN)
            if ch == "CGONE":  # the response_url is spent and the channel is gone: DLQ
                slack_ctl = {"expire_url": rid, "fail_channel": {"CGONE": "channel_not_found"}}
                urllib.request.urlopen(urllib.request.Request(
                    slack.url + "/_control", data=json.dumps(slack_ctl).encode()), timeout=5)
            st, body = slash(iport, "%s item%d" % (cmd, i), ch, slack.response_url(rid))
            check(st == 200 and "queued" in body, "%s queued (%s %s)" % (cmd, st, body[:200]))
            rids.append(rid)
        # every case ends: a final on results, and a post on Slack or a DLQ record
        names = set(c for c, _ in cases)
        finals = tails["results"].wait(lambda m: m.get("step") == "final" and (
            m.get("command") or "help").split()[0] in names, n=len(cases), timeout=60)
        check(len(finals) == len(cases), "a final result for every case (%d of %d)"
              % (len(finals), len(cases)))
        check(tails["dlq"].wait(lambda m: True, n=1, timeout=30) != [],
              "the result for the gone channel is dead-lettered")
        posted = wait_for(lambda: len([e for e in slack.requests("/response/")
                                       if e["status"] == 200]) >= len(cases) - 1, 30)
        check(posted, "the other results were posted to Slack")
        # the API really got the secrets (else this test would prove nothing)
        got = json.dumps(api.requests())
        check(SECRETS["CQT_SEC_API"] in got and SECRETS["CQT_SEC_BODY"] in got,
              "the API received the secrets in the header and the body")
        texts = " ".join(m.get("text", "") for m in finals)
        for word in ("403", "502", "timed out", "could not reach"):
            check(word in texts, "the replies show the failure (%s)" % word)
        check("[redacted]" in texts, "echoed secrets are shown as [redacted]")
        time.sleep(1.5)  # let the last marks and audit records land before reading them
    finally:
        for s in svcs:
            s.stop()
    for s in svcs:
        leaks("%s log (%d lines)" % (s.name, s.logs().count("\n")), s.logs())
    # (the bot token rightly travels in chat.postMessage's Authorization header: only there)
    sent = [dict(e, headers={k: v for k, v in e["headers"].items() if k != "authorization"})
            for e in slack.requests()]
    check(len(sent) >= len(rids), "the fake Slack got the replies (%d)" % len(sent))
    leaks("every reply the fake Slack got (%d)" % len(sent), json.dumps(sent))
    for k, t in tails.items():
        t.stop()
        msgs = [m["value"] for m in t.msgs]
        check(len(msgs) > 0, "%s topic has records" % k)
        leaks("%d records on %s" % (len(msgs), k), "\n".join(msgs))
    keys, dump = redis_dump()
    check(len(keys) > 0, "redis holds keys under the prefix (%d)" % len(keys))
    leaks("%d redis keys and values" % len(keys), dump + "\n".join(keys))
    report("no_secret_leaves")
    api.stop()
    slack.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
