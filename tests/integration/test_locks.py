#!/usr/bin/env python3
"""Environment locks and rate limits (issue 16) through the real chatops-worker on the Kafka
and Redis fixtures, the fake GitLab (pipelines) and the fake API (direct calls): a second
deploy to the same environment is refused naming the holder while the first pipeline runs and
runs after its final; lock / unlock / unlock --force with the policy and lock_force_roles; a
redelivered request that already holds its lock runs instead of waiting for itself; rate limits
per user, channel and in all with the retry time, and a metric per refusal kind."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, now_rfc3339, report, stack_file  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
PREFIX = "cqt-locks-%s:" % RUN
TMP = tempfile.mkdtemp(prefix="cqt-locks-")
TRIGGER_TOKEN = "trig-" + RUN
API_TOK = "tok-" + uuid.uuid4().hex
API = FakeAPI().start()
BASE = "http://127.0.0.1:%d/api" % API.port
TOPICS = {k: "cqt.locks.%s.%s" % (RUN, k)
          for k in ("requests", "results", "audit", "dlq", "pipeline_events")}


class FakeGitLab:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SRC, "tests", "fakes", "fake_gitlab.py"), "0",
             "--trigger-token", TRIGGER_TOKEN, "--api-token", "api-" + RUN],
            stdout=subprocess.PIPE, text=True)
        self.url = "http://127.0.0.1:%d" % int(self.proc.stdout.readline())

    def triggers(self):
        with urllib.request.urlopen(self.url + "/_log", timeout=10) as r:
            log = json.loads(r.read())
        return [q for q in log if q["path"].endswith("/trigger/pipeline")]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


GL = FakeGitLab()


def config():
    path = os.path.join(TMP, "w.yaml")
    direct = """    mode: direct
    args:
      - {name: what, required: true, regex: "[a-z]+"}
    http: {method: POST, base_url: "%s", path: "/%s/{{args.what}}", timeout_ms: 5000}
"""
    with open(path, "w") as f:
        f.write(cqt.stack_yaml(BROKERS, [(k, TOPICS[k]) for k in TOPICS],
                               [("worker", "cqt-locks-%s" % RUN)], REDIS_PORT, PREFIX) + """
worker: {lease_ms: 1500, poll_min_ms: 200, poll_max_ms: 500, lock_lease_ms: 3000,
         lock_force_roles: [sre]}
gitlab: {base_url: "%s", api_token: "${CQT_GL_API}"}
secrets: {trig: "${CQT_GL_TRIGGER}", apitok: "${CQT_API_TOK}"}
people:
  alice: {slack: [UALICE], roles: [sre]}
  bob: {slack: [UBOB], roles: [dev]}
  dave: {slack: [UDAVE], roles: [dev]}
channels:
  prod: {platform: slack, id: CPROD}
  other: {platform: slack, id: COTHER}
commands:
  deploy:
    mode: trigger_and_wait
    args:
      - {name: service, required: true, regex: "[a-z]+"}
      - {name: env, type: enum, required: true, values: [staging, production, qa]}
      - {name: script, required: true, regex: "s-[a-z0-9-]+"}
    pipeline:
      project: ops%%2Fdeploy
      ref: "{{args.script}}"
      trigger_token: trig
      variables: {ENV: "{{args.env}}"}
      timeout_s: 60
      progress_interval_s: 0
    lock: "env:{{args.env}}"
  migrate:
""" % GL.url + direct % (BASE, "migrate") + """    lock: "db:{{args.what}}"
  ping:
""" + direct % (BASE, "ping") + """    limit: {count: 2, window_s: 600, per: user}
  flush:
""" + direct % (BASE, "flush") + """    limit: {count: 1, window_s: 600, per: channel}
  purge:
""" + direct % (BASE, "purge") + """    limit: {count: 1, window_s: 300, per: global}
  note:
    mode: direct
    args:
      - {name: what, required: true, regex: "[a-z]+"}
      - {name: text, required: false}
    http:
      method: POST
      base_url: """  + "\"" + BASE + "\"" + """
      path: "/note/{{args.what}}"
      query: "by={{user.name}}"
      headers: {X-Token: "{{secrets.apitok}}", X-Text: "{{args.text}}"}
      body: '{"what": "{{args.what}}", "text": "{{args.text}}"}'
    limit: {count: 5, window_s: 60, per: user}
    lock: "note:{{args.what}}"
policy:
  - {name: ops, roles: [sre, dev], commands: [deploy, migrate, ping, flush, purge, note]}
  - {name: locks, roles: [sre, dev], commands: [locks, lock, unlock]}
""")
    return path


def send(results, user, command, text, channel="CPROD", rid=None):
    rid = rid or str(uuid.uuid4())
    env = json.dumps({
        "v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "slack", "tenant": "T1",
        "channel": {"id": channel, "name": channel.lower()},
        "user": {"id": user, "name": user.lower()}, "command": command, "text": text,
        "reply": {"response_url": "https://hooks.example/x", "chat_id": channel},
        "dedupe_key": "slack:" + rid, "retry_num": 0})
    cqt.produce(BROKERS, TOPICS["requests"], "slack:T1:" + channel, env)
    return rid


def answer(results, rid, step=None, timeout=15):
    got = results.wait(lambda r: r.get("request_id") == rid and
                       (step is None or r.get("step") == step), 1, timeout)
    return got[0] if got else {}


def run(results, user, command, text, channel="CPROD"):
    return answer(results, send(results, user, command, text, channel))


def test_pipeline_lock(results):
    a = send(results, "UALICE", "deploy", "web production s-success-5000")
    ack = answer(results, a, "ack")
    check(ack.get("status") == "ok", "first deploy to production triggered: %r" % ack)
    b = run(results, "UBOB", "deploy", "api production s-success-500")
    t = b.get("text", "")
    check(b.get("status") == "denied" and b.get("step") in (None, "final"),
          "second deploy to production refused: %r" % b)
    check("`env:production` is held by alice since" in t and "`web production s-success-5000`" in t
          and a in t and "\n" not in t, "the refusal names who, since when, why: %r" % t)
    s = run(results, "UBOB", "deploy", "api staging s-success-200")
    check(s.get("status") == "ok", "another environment is not locked: %r" % s)
    lst = run(results, "UBOB", "locks", "")
    check("`env:production` is held by alice" in lst.get("text", ""), "locks lists it: %r" % lst)
    trig = [q for q in GL.triggers() if ("variables[ENV]", "production") in
            [tuple(p) for p in q["form"]]]
    check(len(trig) == 1, "GitLab got one production trigger, not two: %d" % len(trig))
    fin = answer(results, a, "final", 30)
    check(fin.get("status") == "ok", "first deploy final: %r" % fin)
    ok = None
    end = time.time() + 10
    while time.time() < end:  # the release follows the final's delivery report
        ok = run(results, "UBOB", "deploy", "api production s-success-200")
        if ok.get("status") == "ok":
            break
        time.sleep(0.3)
    check(ok and ok.get("status") == "ok", "after the final the lock is free: %r" % ok)
    report("lock: second deploy refused while the first pipeline runs, free after its final")


def test_builtins(results):
    r = run(results, "UBOB", "lock", "env:qa maintenance window until 16:00")
    check(r.get("status") == "ok" and "Locked `env:qa`" in r.get("text", ""), "lock: %r" % r)
    d = run(results, "UALICE", "deploy", "web qa s-success-200")
    check(d.get("status") == "denied" and "held by bob" in d.get("text", "") and
          "maintenance window until 16:00" in d.get("text", ""), "deploy refused by it: %r" % d)
    u = run(results, "UDAVE", "unlock", "env:qa")
    check(u.get("status") == "denied" and "only its holder" in u.get("text", ""),
          "unlock by another is refused: %r" % u)
    u = run(results, "UDAVE", "unlock", "env:qa --force")
    check(u.get("status") == "denied" and "lock_force_roles" in u.get("text", ""),
          "--force without the role is refused: %r" % u)
    n = run(results, "UCAROL", "lock", "env:qa mine")
    check(n.get("status") == "denied", "lock without a policy rule is denied: %r" % n)
    u = run(results, "UALICE", "unlock", "--force env:qa")
    check(u.get("status") == "ok" and "it was: `env:qa` is held by bob" in u.get("text", ""),
          "--force with the role steals it: %r" % u)
    u = run(results, "UBOB", "unlock", "env:qa")
    check(u.get("status") == "invalid" and "not locked" in u.get("text", ""),
          "unlock of a free lock: %r" % u)
    r = run(results, "UBOB", "lock", "env:qa again")
    u = run(results, "UBOB", "unlock", "env:qa")
    check(r.get("status") == "ok" and u.get("status") == "ok", "the holder unlocks: %r" % u)
    d = run(results, "UALICE", "deploy", "web qa s-success-200")
    check(d.get("status") == "ok", "deploy runs once it is unlocked: %r" % d)
    report("lock / unlock / unlock --force with the policy and lock_force_roles")


def test_redelivered_holder(results):
    """A request whose earlier delivery took the lock (then died before calling) runs."""
    rid = str(uuid.uuid4())
    rec = json.dumps({"name": "db:orders", "token": "t-old", "req": rid, "who": "alice",
                      "user": "person:alice", "since": int(time.time() * 1000),
                      "until_ms": int(time.time() * 1000) + 600000, "reason": "`orders`",
                      "kind": "action"})
    subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "SET", PREFIX + "lock:db:orders", rec,
                    "PX", "20000"], check=True, capture_output=True)
    other = run(results, "UBOB", "migrate", "orders")
    check(other.get("status") == "denied", "another request is refused by it: %r" % other)
    r = answer(results, send(results, "UALICE", "migrate", "orders", rid=rid))
    check(r.get("status") == "ok", "the request holding it runs, no deadlock: %r" % r)
    left = subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "EXISTS",
                           PREFIX + "lock:db:orders"], capture_output=True, text=True).stdout
    check(left.strip() == "0", "released at its final: %r" % left)
    report("a redelivered request that holds its lock runs (no deadlock on itself)")


def retry_s(text):
    m = re.search(r"try again in (?:(\d+)m)?(\d+)s$", text)
    return int(m.group(1) or 0) * 60 + int(m.group(2)) if m else -1


def test_limits(results, worker):
    API.reset()
    a = [run(results, "UALICE", "ping", "x") for _ in range(3)]
    check([r.get("status") for r in a] == ["ok", "ok", "denied"], "per user: 2 then refused: %r"
          % [r.get("status") for r in a])
    t = a[2].get("text", "")
    check(t.startswith("rate limit: 2 `ping` per 600 s per user; try again in") and
          590 <= retry_s(t) <= 600, "refusal with the retry time: %r" % t)
    b = run(results, "UBOB", "ping", "x")
    check(b.get("status") == "ok", "another user has their own count: %r" % b)
    f1 = run(results, "UALICE", "flush", "x")
    f2 = run(results, "UBOB", "flush", "x")
    f3 = run(results, "UBOB", "flush", "x", channel="COTHER")
    check((f1.get("status"), f2.get("status"), f3.get("status")) == ("ok", "denied", "ok"),
          "per channel: %r" % [f1, f2, f3])
    check("per channel" in f2.get("text", ""), "names per channel: %r" % f2)
    p1 = run(results, "UALICE", "purge", "x")
    p2 = run(results, "UBOB", "purge", "x", channel="COTHER")
    check(p1.get("status") == "ok" and p2.get("status") == "denied" and
          "in all; try again in" in p2.get("text", ""), "global: %r" % [p1, p2])
    calls = [q["path"] for q in API.requests("/api/")]
    check(sorted(calls) == sorted(["/api/ping/x"] * 3 + ["/api/flush/x"] * 2 + ["/api/purge/x"]),
          "the API got only the allowed calls: %r" % calls)
    m = worker.metrics()
    check('chatops_worker_refusals_total{kind="rate_limit"} 3' in m and
          'chatops_worker_refusals_total{kind="lock"}' in m, "refusal metrics per kind")
    report("rate limits per user, channel and in all with the retry time; metrics")


def lines_of(text, head):
    return [ln[len(head):] for ln in text.split("\n") if ln.startswith(head)]


def test_explain(results):
    text = 'web production s-success-200'
    ex = run(results, "UALICE", "explain", "deploy " + text).get("text", "")
    check("• allowed by rule ops" in ex and "• lock: free" in ex and "• approval: none" in ex,
          "explain: rule, lock, approval: %r" % ex)
    check("• pipeline: trigger_and_wait of GitLab project ops%2Fdeploy at ref s-success-200" in ex,
          "explain names project and ref: %r" % ex)
    shown = dict(v.split("=", 1) for v in lines_of(ex, "  variable "))
    rid = send(results, "UALICE", "deploy", text)
    check(answer(results, rid, "ack").get("status") == "ok", "the real deploy runs")
    trig = [q for q in GL.triggers() if ["variables[CHATOPS_REQUEST_ID]", rid] in q["form"]]
    sent = {k[len("variables["):-1]: v for k, v in (trig[0]["form"] if trig else [])
            if k.startswith("variables[")}
    ref = [v for k, v in (trig[0]["form"] if trig else []) if k == "ref"]
    sent.pop("CHATOPS_REQUEST_ID", None)
    shown.pop("CHATOPS_REQUEST_ID", None)
    check(sent and shown == sent and ref == ["s-success-200"],
          "explain showed the variables the trigger sent, byte for byte: %r vs %r" % (shown, sent))
    answer(results, rid, "final", 20)
    # a direct call: method, URL, headers (secret masked) and body as the API then gets them
    arg = 'memo "it\'s a&b=c"'
    ex = run(results, "UBOB", "explain", "note " + arg).get("text", "")
    check(API_TOK not in ex and "X-Token: [redacted]" in ex, "the secret is masked: %r" % ex)
    check("• rate limit: 0 of 5 used in 60 s per user: 5 left" in ex and
          "• lock name: `note:memo`" in ex, "limit and lock state: %r" % ex)
    ex2 = run(results, "UBOB", "explain", "note " + arg).get("text", "")
    check("0 of 5 used" in ex2, "explain does not consume the limit: %r" % ex2)
    req = lines_of(ex, "• request: ")
    body = lines_of(ex, "  body: ")
    API.reset()
    r = run(results, "UBOB", "note", arg)
    check(r.get("status") == "ok", "the real call runs: %r" % r)
    got = API.requests("/api/note/")
    check(len(got) == 1, "one call: %r" % got)
    if got:
        g = got[0]
        url = BASE + g["path"][len("/api"):] + ("?" + g["query"] if g.get("query") else "")
        check(req == ["POST " + url], "explain showed the URL called: %r vs %r" % (req, url))
        check(body == [g["body"]], "explain showed the body sent, byte for byte: %r vs %r"
              % (body, g["body"]))
        hdr = {k.lower(): v for k, v in g["headers"].items()}
        check("X-Text: " + hdr.get("x-text", "?") in ex, "and the header: %r" % hdr)
    no = run(results, "UCAROL", "explain", "note " + arg).get("text", "")
    check("• refused:" in no and "request" not in no and "lock" not in no,
          "policy-filtered: a stranger sees only the refusal: %r" % no)
    report("explain: rule, approval, lock, limit (not consumed), the request sent byte for byte")


def main():
    path = config()
    for t in ("requests", "pipeline_events", "results", "audit"):
        subprocess.run([os.path.join(BUILD, "bin", "cqt-topic_dump"), BROKERS, TOPICS[t], "0"],
                       capture_output=True)
    results = Tail(BROKERS, TOPICS["results"])
    w = cqt.Service("worker", path, "locks-w1", TMP, args=["--id", "locks-" + RUN],
                    env=dict(CQT_GL_API="api-" + RUN, CQT_GL_TRIGGER=TRIGGER_TOKEN,
                             CQT_API_TOK=API_TOK))
    try:
        check(w.wait_ready(30), "worker ready")
        test_pipeline_lock(results)
        test_builtins(results)
        test_redelivered_holder(results)
        test_limits(results, w)
        test_explain(results)
        rc = w.stop()
        check(rc == 0, "the worker drains and exits 0 (no leak report under ASan): %s" % rc)
    finally:
        if w.alive():
            w.stop()
        results.stop()
        GL.stop()
        API.stop()
    sys.exit(cqt.summary(TMP))


if __name__ == "__main__":
    main()
