#!/usr/bin/env python3
"""Integration test of chatops-worker with the real Kafka and Redis fixtures and the fake
GitLab API (tests/fakes/fake_api.py): permission matrix with reply text and audit records,
help per user/channel, argument rules, template escaping as seen by the server, run-once
(duplicate delivery, two workers at once, kill -9 mid-call), timeout/500 replies, the DLQ,
and per-conversation order.
"""
import base64
import json
import os
import re
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, now_rfc3339, report, stack_file  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402



BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TOPICS = {k: "cqt.worker.%s.%s" % (RUN, k) for k in ("requests", "results", "audit", "dlq")}
TMP = tempfile.mkdtemp(prefix="cqt-worker-")
API = FakeAPI().start()
BASE = "http://127.0.0.1:%d/api/v4" % API.port


def config_yaml(topics, group, lease_ms=1500):
    return """
%(stack)sworker:
  lease_ms: %(lease)d
limits:
  max_args: 8
  max_arg_len: 200
secrets:
  gitlab_token: "${CQT_GITLAB_TOKEN}"
people:
  alice: {gitlab_login: alice.gl, slack: [UALICE], roles: [sre]}
  bob: {gitlab_login: bob.gl, slack: [UBOB], roles: [dev]}
  carol: {gitlab_login: carol.gl, slack: [UCAROL], roles: [release]}
channels:
  ops-prod: {platform: slack, id: CPROD}
  ops: {platform: slack, id: COPS}
  dev: {platform: slack, id: CDEV}
commands:
  flag get:
    description: Show a feature flag
    usage: flag get NAME
    mode: direct
    args:
      - {name: name, required: true, regex: "[a-z][a-z0-9_]*", max_len: 40}
    http:
      method: GET
      base_url: "%(base)s"
      path: "/features/{{args.name}}"
      headers:
        PRIVATE-TOKEN: "{{secrets.gitlab_token}}"
      timeout_ms: 3000
      reply_template: "{{response.name}} is {{response.state}}"
      idempotent: true
  flag set:
    description: Turn a feature flag on or off
    usage: flag set NAME on|off
    mode: direct
    args:
      - {name: name, required: true, regex: "[a-z][a-z0-9_]*"}
      - {name: value, type: enum, required: true, values: ["on", "off"]}
    http:
      method: POST
      base_url: "%(base)s"
      path: "/features/{{args.name}}"
      body: "value={{args.value}}&user={{user.gitlab_login}}"
      body_type: form
      headers:
        PRIVATE-TOKEN: "{{secrets.gitlab_token}}"
      timeout_ms: 1000
      reply_pointer: /state
  lb weight:
    description: Set the traffic share of a pool
    usage: lb weight POOL PERCENT
    mode: direct
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
    http:
      method: PUT
      base_url: "%(base)s"
      path: "/lb/{{args.pool}}"
      body: '{"percent": {{args.percent}}, "by": "{{user.gitlab_login}}"}'
      timeout_ms: 5000
      reply_template: "{{response.name}} set"
  echo:
    description: Send text through every template context
    mode: direct
    args:
      - {name: text, required: true}
    http:
      method: POST
      base_url: "%(base)s/echo"
      path: "/{{args.text}}"
      query: "q={{args.text}}"
      body: '{"text": "{{args.text}}", "req": "{{request.id}}"}'
      timeout_ms: 3000
  hdr:
    description: Put text into a header
    mode: direct
    args:
      - {name: text, required: true}
    http:
      method: GET
      base_url: "%(base)s"
      path: /hdr
      headers:
        X-Text: "{{args.text}}"
      timeout_ms: 3000
policy:
  - {name: flags-read, roles: ["*", "@unknown"], commands: [flag get]}
  - {name: flags-write, roles: [sre, dev], commands: [flag set], channels: [ops, ops-prod]}
  - {name: lb, roles: [sre], commands: [lb weight], channels: [ops-prod]}
  - {name: echo, roles: [sre], commands: [echo, hdr]}
""" % {"stack": cqt.stack_yaml(BROKERS, [(k, topics[k]) for k in ("requests", "results", "audit", "dlq")],
                          [("worker", group)], REDIS_PORT, "cqt-%s:" % RUN),
       "brokers": BROKERS, "redis": REDIS_PORT, "run": RUN, "base": BASE, "group": group,
       "lease": lease_ms, **topics}


def produce(topic, key, value):
    cqt.produce(BROKERS, topic, key, value)


def envelope(user, channel, command, text, dedupe=None, rid=None):
    rid = rid or str(uuid.uuid4())
    return rid, json.dumps({
        "v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "slack",
        "tenant": "T1", "channel": {"id": channel, "name": channel.lower()},
        "user": {"id": user, "name": user.lower()}, "command": command, "text": text,
        "reply": {"response_url": "https://hooks.example/x", "chat_id": channel},
        "dedupe_key": dedupe or ("slack:" + rid), "retry_num": 0})


def send(user, channel, command, text, topic=None, dedupe=None, rid=None):
    rid, env = envelope(user, channel, command, text, dedupe, rid)
    produce(topic or TOPICS["requests"], "slack:T1:" + channel, env)
    return rid


def Worker(cfg_path, name, http_port=-1, env_extra=None):
    """chatops-worker through the shared launcher (cqt.Service), its log in TMP/NAME.log."""
    env = dict(CQT_GITLAB_TOKEN="tok-" + RUN, **(env_extra or {}))
    return cqt.Service("worker", cfg_path, name, TMP, args=["--id", name + "-" + RUN], env=env,
                       http_port=http_port)


def write_config(name, topics, group, lease_ms=1500):
    path = os.path.join(TMP, name + ".yaml")
    with open(path, "w") as f:
        f.write(config_yaml(topics, group, lease_ms))
    return path


results = audit = dlq = None


def final_of(rid, timeout=30):
    got = results.wait(lambda r: r.get("request_id") == rid and r.get("step") == "final", 1, timeout)
    return got[0] if got else {}


def test_permission_matrix():
    rows = [
        ("UALICE", "CDEV", "flag", "get new_ui", "ok", "new_ui is on", "allowed", "flags-read"),
        ("UNOBODY", "CDEV", "flag", "get new_ui", "ok", "new_ui is on", "allowed", "flags-read"),
        ("UBOB", "COPS", "flag", "set new_ui off", "ok", "off", "allowed", "flags-write"),
        ("UBOB", "CDEV", "flag", "set new_ui on", "denied",
         "flag set is allowed for you only in #ops or #ops-prod (you: bob, roles dev, in #dev)",
         "denied", None),
        ("UCAROL", "COPS", "flag", "set new_ui on", "denied",
         "flag set is allowed only for roles sre or dev in #ops or #ops-prod (you: carol, roles "
         "release, in #ops)", "denied", None),
        ("UNOBODY", "COPS", "flag", "set x on", "denied",
         "flag set is allowed only for roles sre or dev in #ops or #ops-prod (you are not a "
         "known user, so you have no roles)", "denied", None),
        ("UALICE", "CPROD", "lb", "weight blue 30", "ok", "blue set", "allowed", "lb"),
        ("UALICE", "COPS", "lb", "weight blue 30", "denied",
         "lb weight is allowed for you only in #ops-prod (you: alice, roles sre, in #ops)",
         "denied", None),
        ("UALICE", "CPROD", "lb", "weight blue 130", "invalid",
         "percent: 130 is above the maximum 100\nusage: lb weight POOL PERCENT", "invalid", None),
        ("UALICE", "CPROD", "lb", "weight red 30", "invalid",
         "pool: red is not one of blue, green\nusage: lb weight POOL PERCENT", "invalid", None),
        ("UALICE", "CPROD", "flag", "get 'Bad Name'", "invalid",
         "name: Bad Name does not match the pattern [a-z][a-z0-9_]*\nusage: flag get NAME",
         "invalid", None),
        ("UALICE", "CPROD", "flag", "get 'unbalanced", "invalid", "unbalanced single quote",
         "invalid", None),
        ("UALICE", "CPROD", "flg", "get x", "invalid",
         "unknown command `flg`; did you mean `flag`? Try `help`.", "invalid", None),
        ("UALICE", "CPROD", "whoami", "", "ok", "You are alice, GitLab login alice.gl, roles: sre. "
         "(Login and roles from people: in the chatops config.)",
         "allowed", "builtin"),
    ]
    rids = []
    for i, (u, c, cmd, text, *_rest) in enumerate(rows):
        # one conversation per row so they run in parallel
        rids.append(send(u, c + ("" if i == 0 else ""), cmd, text))
    for rid, (u, c, cmd, text, status, reply, decision, rule) in zip(rids, rows):
        r = final_of(rid)
        check(r.get("status") == status, "%s %s %s: status %s, got %s" % (u, cmd, text, status, r.get("status")))
        check(r.get("text") == reply, "%s %s %s: reply %r, got %r" % (u, cmd, text, reply, r.get("text")))
        check(r.get("reply", {}).get("response_url") == "https://hooks.example/x", "reply routing copied")
        a = audit.wait(lambda x: x.get("request_id") == rid and x.get("kind") == "decision")
        check(len(a) == 1, "%s %s: exactly one decision audit record, got %d" % (cmd, text, len(a)))
        if a:
            check(a[0].get("decision") == decision, "audit decision %s for %s %s, got %s" % (decision, cmd, text, a[0].get("decision")))
            check(a[0].get("rule") == rule, "audit rule %s for %s %s, got %s" % (rule, cmd, text, a[0].get("rule")))
            check(a[0]["who"]["user_id"] == u, "audit who.user_id")
            check(a[0]["where"]["channel_id"] == c, "audit where.channel_id")
        o = audit.wait(lambda x: x.get("request_id") == rid and x.get("kind") == "outcome")
        check(len(o) == 1 and o[0].get("result") == status, "outcome audit for %s %s" % (cmd, text))
    # the allowed write reached the API with the login and the token, from the right person
    sets = [q for q in API.requests("/api/v4/features/new_ui") if q["method"] == "POST"]
    check(len(sets) == 1, "one POST for the one allowed flag set (denied ones never call), got %d" % len(sets))
    if sets:
        check(urllib.parse.parse_qs(sets[0]["body"]) == {"value": ["off"], "user": ["bob.gl"]},
              "form body %r" % sets[0]["body"])
        check(sets[0]["headers"].get("PRIVATE-TOKEN") == "tok-" + RUN, "secret header arrived")
    lb = API.requests("/api/v4/lb/blue")
    check(len(lb) == 1 and json.loads(lb[0]["body"]) == {"percent": 30, "by": "alice.gl"}, "lb body")
    a = audit.find(lambda x: x.get("who", {}).get("user_id") == "UALICE" and x.get("command") == "lb weight"
                   and x.get("kind") == "decision" and x.get("decision") == "allowed")
    check(bool(a) and a[0]["who"]["gitlab_login"] == "alice.gl" and a[0]["args"] == {"pool": "blue", "percent": "30"},
          "audit carries gitlab login and args")
    report("permission_matrix (%d rows)" % len(rows))


def test_arg_rules():
    """Every argument rule rejects with its own reason (status invalid, no API call);
    quoting keeps spaces and quotes inside one argument."""
    long_name = "a" * 41
    rows = [
        ("flag", "get", "name: missing (required)\nusage: flag get NAME"),
        ("flag", "get " + long_name, "name: longer than the maximum 40 characters (41)\nusage: flag get NAME"),
        ("flag", "get Bad", "name: Bad does not match the pattern [a-z][a-z0-9_]*\nusage: flag get NAME"),
        ("flag", "get a b", "unexpected argument b\nusage: flag get NAME"),
        ("flag", "get --force a", "unknown option --force\nusage: flag get NAME"),
        ("flag", "set a maybe", "value: maybe is not one of on, off\nusage: flag set NAME on|off"),
        ("lb", "weight blue abc", "percent: abc is not an integer\nusage: lb weight POOL PERCENT"),
        ("lb", "weight blue -5", "percent: -5 is below the minimum 0\nusage: lb weight POOL PERCENT"),
        ("lb", "weight blue 101", "percent: 101 is above the maximum 100\nusage: lb weight POOL PERCENT"),
        ("echo", "a b c d e f g h i", "too many arguments (at most 8)"),
        ("echo", '"unbalanced', "unbalanced double quote"),
        ("echo", "x" * 201, "argument 1 is longer than 200 characters"),
    ]
    before = len(API.requests("/api/v4/"))
    rids = [send("UALICE", "CPROD", cmd, text) for cmd, text, _ in rows]
    for rid, (cmd, text, reason) in zip(rids, rows):
        r = final_of(rid)
        check(r.get("status") == "invalid", "%s %s: invalid, got %s" % (cmd, text[:30], r.get("status")))
        check(r.get("text") == reason, "%s %s: reason %r, got %r" % (cmd, text[:30], reason, r.get("text")))
        a = audit.wait(lambda x, rid=rid: x.get("request_id") == rid and x.get("kind") == "decision")
        check(len(a) == 1 and a[0].get("decision") == "invalid", "%s %s: audited as invalid" % (cmd, text[:30]))
    check(len(API.requests("/api/v4/")) == before, "no invalid request reached the API")
    quoted = [("\"two words\"", "two words"), ("'it'\\''s'", "it's"), ('"say \\"hi\\""', 'say "hi"'),
              ("--  --not-an-option", "--not-an-option")]
    for text, want in quoted:
        rid = send("UALICE", "CPROD", "echo", text)
        r = final_of(rid)
        got = [q for q in API.requests("/api/v4/echo/") if rid in q["body"]]
        check(r.get("status") == "ok" and len(got) == 1 and json.loads(got[0]["body"])["text"] == want,
              "quoting %r -> one argument %r, got %r" % (text, want, got and got[0]["body"]))
    report("arg_rules (%d reasons, %d quotings)" % (len(rows), len(quoted)))


def test_help_per_user_channel():
    r1 = final_of(send("UALICE", "CPROD", "help", ""))
    r2 = final_of(send("UBOB", "CDEV", "help", ""))
    r3 = final_of(send("UNOBODY", "COPS", "help", ""))
    t1, t2, t3 = r1.get("text", ""), r2.get("text", ""), r3.get("text", "")
    check("lb weight POOL PERCENT" in t1 and "flag set NAME on|off" in t1 and "echo" in t1, "alice in #ops-prod sees lb, flag set, echo: %r" % t1)
    check("flag get NAME" in t2 and "flag set" not in t2 and "lb weight" not in t2, "bob in #dev sees only flag get: %r" % t2)
    check("flag get NAME" in t3 and "flag set" not in t3 and "echo" not in t3, "unknown user sees only flag get: %r" % t3)
    r4 = final_of(send("UBOB", "COPS", "help", "flag set"))
    check(r4.get("text") == "• `flag set NAME on|off` — Turn a feature flag on or off", "help CMD: %r" % r4.get("text"))
    report("help_per_user_channel")


def test_template_escaping():
    # arguments that would be (or decode to) a dot segment in the path are refused, uncalled
    for h in ["../admin", "..", ".", "..\\admin"]:
        before = len(API.requests("/api/v4/"))
        r = final_of(send("UALICE", "CDEV", "echo", "'" + h + "'"))
        check(r.get("status") == "failed" and "dot segment" in r.get("text", ""),
              "echo %r refused: %s %r" % (h, r.get("status"), r.get("text")))
        check(len(API.requests("/api/v4/")) == before, "echo %r: no call was made" % h)
    hostile = ["a&b=c", '"},"x":1', "http://evil/", "a b?c#d", "...", "v1.2"]
    rids = [send("UALICE", "CDEV", "echo", "'" + h.replace("'", "'\\''") + "'") for h in hostile]
    for h, rid in zip(hostile, rids):
        r = final_of(rid)
        check(r.get("status") == "ok", "echo %r ok, got %s %r" % (h, r.get("status"), r.get("text")))
        got = [q for q in API.requests("/api/v4/echo/") if rid in q["body"]]
        check(len(got) == 1, "echo %r arrived once" % h)
        if not got:
            continue
        q = got[0]
        seg = q["path"][len("/api/v4/echo/"):]
        check("/" not in seg, "%r stays one path segment: %s" % (h, q["path"]))
        check(urllib.parse.unquote(seg) == h, "%r path segment decodes back: %s" % (h, seg))
        check(urllib.parse.parse_qs(q["query"]) == {"q": [h]}, "%r query is one value: %s" % (h, q["query"]))
        body = json.loads(q["body"])
        check(body == {"text": h, "req": rid}, "%r JSON body has exactly its two keys: %r" % (h, body))
    # CRLF in a header value is refused before any call
    before = len(API.requests("/api/v4/hdr"))
    r = final_of(send("UALICE", "CDEV", "hdr", '"a\r\nX-Admin: 1"'))
    check(r.get("status") == "failed" and "line break" in r.get("text", ""), "CRLF header refused: %r" % r.get("text"))
    check(len(API.requests("/api/v4/hdr")) == before, "no request with a CRLF header was sent")
    r = final_of(send("UALICE", "CDEV", "hdr", "'plain text'"))
    got = API.requests("/api/v4/hdr")
    check(r.get("status") == "ok" and got and got[-1]["headers"].get("X-Text") == "plain text", "plain header arrives")
    report("template_escaping")


def test_api_errors():
    API.set_rules([{"prefix": "/api/v4/features/broken", "status": 500, "body": {"message": "boom: database down"}},
                   {"prefix": "/api/v4/features/slow", "delay_ms": 2500}])
    r1 = final_of(send("UALICE", "COPS", "flag", "set broken on"))
    check(r1.get("status") == "failed", "500 -> failed")
    check(r1.get("text", "").startswith("`flag set` failed: POST http://127.0.0.1:%d/api/v4/features/broken answered HTTP 500: boom: database down" % API.port),
          "500 text: %r" % r1.get("text"))
    r2 = final_of(send("UALICE", "COPS", "flag", "set slow on"))
    check(r2.get("status") == "timeout", "slow -> timeout, got %s" % r2.get("status"))
    check("timed out: no answer from POST http://127.0.0.1:%d/api/v4/features/slow within 1000 ms" % API.port in r2.get("text", ""),
          "timeout text: %r" % r2.get("text"))
    API.set_rules([])
    report("api_errors")


def test_dlq_and_keeps_going():
    tag = uuid.uuid4().hex
    junk = {"this is not json " + tag: "request: not valid JSON",
            json.dumps({"v": 1, "id": tag}): "request: field 'received_at' is missing"}
    for value in junk:
        produce(TOPICS["requests"], "junk", value)

    def ours(x):
        try:
            return x.get("service") == "worker" and tag in base64.b64decode(x.get("payload_b64", "")).decode()
        except ValueError:
            return False
    d = dlq.wait(ours, 2)
    check(len(d) == 2, "two dead letters, got %d" % len(d))
    for x in d:
        payload = base64.b64decode(x["payload_b64"]).decode()
        check(x.get("reason") == junk.get(payload), "dead letter reason %r for %r" % (x.get("reason"), payload))
        check(x.get("topic") == TOPICS["requests"], "dead letter names its topic: %r" % x.get("topic"))
    r = final_of(send("UALICE", "CDEV", "whoami", ""))
    check(r.get("status") == "ok", "worker keeps going after bad messages")
    report("dlq_and_keeps_going")


def test_order_per_conversation():
    API.set_rules([{"prefix": "/api/v4/lb/green", "delay_ms": 3000}])
    a = send("UALICE", "CPROD", "lb", "weight green 30")
    b = send("UALICE", "CPROD", "lb", "weight blue 50")
    c = send("UBOB", "CDEV", "flag", "get parallel_one")  # another conversation
    fa, fb, fc = final_of(a), final_of(b), final_of(c)
    calls = [q for q in API.requests("/api/v4/lb/") if q["time"] > 0]
    order = [q["path"] for q in calls][-2:]
    check(order == ["/api/v4/lb/green", "/api/v4/lb/blue"], "same conversation runs in order: %r" % order)
    blue = [q for q in calls if q["path"] == "/api/v4/lb/blue"][-1]
    green = [q for q in calls if q["path"] == "/api/v4/lb/green"][-1]
    check(blue["time"] >= green["time"] + 2.9, "second command waited for the first")
    par = API.requests("/api/v4/features/parallel_one")
    check(par and par[0]["time"] < green["time"] + 2.5, "other conversation ran while the first was in flight")
    check(fa.get("status") == fb.get("status") == fc.get("status") == "ok", "all three ok")
    API.set_rules([])
    report("order_per_conversation")


def test_run_once_duplicate():
    dk = "slack:trigger-" + uuid.uuid4().hex
    rid, env = envelope("UBOB", "COPS", "flag", "set dup_once on", dk)
    produce(TOPICS["requests"], "slack:T1:COPS", env)
    produce(TOPICS["requests"], "slack:T1:COPS", env)
    # a Slack retry: new envelope id, same dedupe key
    send("UBOB", "COPS", "flag", "set dup_once on", dedupe=dk)
    time.sleep(4)
    calls = API.requests("/api/v4/features/dup_once")
    check(len(calls) == 1, "duplicates -> one API call, got %d" % len(calls))
    finals = results.find(lambda r: r.get("step") == "final" and "dup_once" in r.get("command", ""))
    check(len(finals) == 1 and finals[0]["request_id"] == rid, "one final result, got %d" % len(finals))
    report("run_once_duplicate")


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def wait_status(port, path, want, timeout=20):
    end = time.time() + timeout
    st = None
    while time.time() < end:
        st, _ = http_get(port, path)
        if st == want:
            return st
        time.sleep(0.1)
    return st


def test_health(w1):
    """/healthz, /readyz and /metrics of the running worker (any free port via --http-port 0),
    the port from the config via CQ_WORKER_HTTP_PORT, and not-ready without Redis."""
    port = w1.admin_port()
    check(port is not None and port > 0, "worker logs its admin port")
    if not port:
        return
    check(http_get(port, "/healthz")[0] == 200, "/healthz 200")
    check(wait_status(port, "/readyz", 200) == 200, "/readyz 200 with Kafka and Redis up")
    st, body = http_get(port, "/metrics")
    check(st == 200, "/metrics 200")
    check('chatops_worker_decisions_total{outcome="allowed"}' in body, "metrics count allowed decisions")
    check('chatops_worker_results_total{status="ok"}' in body, "metrics count ok results")
    # the queue-time histogram moves: one observation per request consumed, at least one per
    # decision taken, with a plausible sum (the requests were produced moments before)
    import re
    count = re.search(r"^chatops_worker_queue_seconds_count (\d+)$", body, re.M)
    qsum = re.search(r"^chatops_worker_queue_seconds_sum (\S+)$", body, re.M)
    decisions = sum(int(v) for v in re.findall(
        r"^chatops_worker_decisions_total\{[^}]*\} (\d+)$", body, re.M))
    check(count is not None and decisions > 0 and int(count.group(1)) >= decisions,
          "queue_seconds counts every request consumed (%s >= %d)"
          % (count.group(1) if count else None, decisions))
    check(qsum is not None and 0 <= float(qsum.group(1)) < 600 * max(1, decisions),
          "queue_seconds sums a plausible time")
    check(http_get(port, "/nope")[0] == 404, "unknown path 404")
    # No Redis (a port nobody listens on): alive but not ready. The port comes from the
    # config (worker.http_port) as overridden by CQ_WORKER_HTTP_PORT.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_redis = s.getsockname()[1]
    s2 = socket.socket()
    s2.bind(("127.0.0.1", 0))
    free_port = s2.getsockname()[1]
    s2.close()
    cfg = write_config("nored", TOPICS, "cqt-nored-" + RUN).replace(".yaml", "")
    with open(cfg + ".yaml") as f:
        text = f.read().replace("port: %d" % REDIS_PORT, "port: %d" % dead_redis)
    with open(cfg + ".yaml", "w") as f:
        f.write(text)
    wr = Worker(cfg + ".yaml", "nored", http_port=None, env_extra={"CQ_WORKER_HTTP_PORT": str(free_port)})
    try:
        check(wr.admin_port() == free_port, "CQ_WORKER_HTTP_PORT sets the admin port")
        check(wait_status(free_port, "/healthz", 200) == 200, "no Redis: /healthz still 200")
        time.sleep(1.5)
        check(http_get(free_port, "/readyz")[0] == 503, "no Redis: /readyz 503")
    finally:
        check(wr.stop() == 0, "worker without Redis exits 0 on SIGTERM")
        s.close()
    report("health_endpoints")


def main():
    global results, audit, dlq
    for t in TOPICS.values():
        produce(t, "init", '{"init":true}')  # creates the topics
    results, audit, dlq = (Tail(BROKERS, TOPICS[k]) for k in ("results", "audit", "dlq"))
    cfg = write_config("w1", TOPICS, "cqt-worker-" + RUN)
    w1 = Worker(cfg, "w1", http_port=0)
    try:
        test_permission_matrix()
        test_arg_rules()
        test_help_per_user_channel()
        test_template_escaping()
        test_api_errors()
        test_dlq_and_keeps_going()
        test_order_per_conversation()
        test_run_once_duplicate()
        test_health(w1)
        check(w1.stop() == 0, "worker exits 0 on SIGTERM")
        test_consumer_lag()
        test_two_workers_and_kill()
    finally:
        w1.stop(signal.SIGKILL)
        for t in (results, audit, dlq):
            t.stop()
        API.stop()
    return cqt.summary(TMP)


def lag_metric(port, name, group, topic):
    st, body = http_get(port, "/metrics")
    if st != 200:
        return None
    m = re.search(r'^%s\{group="%s",topic="%s"\} (-?\d+)$' % (name, re.escape(group), re.escape(topic)),
                  body, re.M)
    return int(m.group(1)) if m else None


def test_consumer_lag():
    """chatops_kafka_consumer_lag counts what the group has not finished: six slow commands in
    one conversation run one after another, so the lag is seen above zero, then back at 0."""
    topics = dict(TOPICS, requests=TOPICS["requests"] + ".lag")
    group = "cqt-lag-" + RUN
    produce(topics["requests"], "init", '{"init":true}')
    API.set_rules([{"prefix": "/api/v4/features/lag_", "delay_ms": 1500}])
    wl = Worker(write_config("wl", topics, group), "wl", http_port=0)
    try:
        port = wl.admin_port()
        check(port is not None, "lag worker logs its admin port")
        if not port:
            return
        end = time.time() + 30  # the gauges are refreshed every 5 s; assignment takes a few
        held = None
        while time.time() < end and not held:
            held = lag_metric(port, "chatops_kafka_assigned_partitions", group, topics["requests"])
            time.sleep(0.2)
        check(held is not None and held > 0, "assigned partitions reported: %r" % held)
        check(lag_metric(port, "chatops_kafka_consumer_lag", group, topics["requests"]) == 0,
              "lag 0 once the init message is done")
        rids = [send("UALICE", "CLAG", "flag", "get lag_%d" % i, topic=topics["requests"])
                for i in range(6)]
        seen = 0
        end = time.time() + 12
        while time.time() < end and seen < 2:
            seen = max(seen, lag_metric(port, "chatops_kafka_consumer_lag", group,
                                        topics["requests"]) or 0)
            time.sleep(0.2)
        check(seen >= 2, "lag above zero while six slow commands queue (max seen %d)" % seen)
        for rid in rids:
            check(final_of(rid, 40).get("status") == "ok", "slow command done")
        end = time.time() + 15
        lag = None
        while time.time() < end and lag != 0:
            lag = lag_metric(port, "chatops_kafka_consumer_lag", group, topics["requests"])
            time.sleep(0.2)
        check(lag == 0, "lag back to 0 after the commands finished, got %r" % lag)
    finally:
        API.set_rules([])
        check(wl.stop() == 0, "lag worker exits 0 on SIGTERM")
    report("consumer_lag")


def test_two_workers_and_kill():
    # Two workers in different groups both see every message: only one runs it.
    topics = dict(TOPICS, requests=TOPICS["requests"] + ".race")
    produce(topics["requests"], "init", '{"init":true}')
    wa = Worker(write_config("wa", topics, "cqt-a-" + RUN), "wa")
    wb = Worker(write_config("wb", topics, "cqt-b-" + RUN), "wb")
    try:
        rids = [send("UBOB", "COPS", "flag", "set race_%d on" % i, topic=topics["requests"]) for i in range(5)]
        for rid in rids:
            final_of(rid)
        time.sleep(3)
        for i, rid in enumerate(rids):
            calls = API.requests("/api/v4/features/race_%d" % i)
            check(len(calls) == 1, "race_%d: one call by two workers, got %d" % (i, len(calls)))
            finals = results.find(lambda r, rid=rid: r.get("request_id") == rid and r.get("step") == "final")
            check(len(finals) == 1, "race_%d: one final result, got %d" % (i, len(finals)))
    finally:
        wa.stop()
        wb.stop()
    report("two_workers_at_once")

    # kill -9 at two moments: (a) after a side effect was answered and its result produced
    # but (most likely) before the offset commit, (b) in the middle of a call. A fresh
    # consumer group then re-reads every message, like a redelivery after the crash.
    topics = dict(TOPICS, requests=TOPICS["requests"] + ".kill")
    produce(topics["requests"], "init", '{"init":true}')
    API.set_rules([{"prefix": "/api/v4/features/killed", "delay_ms": 3000},
                   {"prefix": "/api/v4/features/kread", "delay_ms": 3000}])
    wk = Worker(write_config("wk", topics, "cqt-k1-" + RUN), "wk")
    rid0 = send("UALICE", "CPROD", "flag", "set after_done on", topic=topics["requests"])
    f0 = final_of(rid0, 30)
    # `flag set` gives up after 1000 ms: send it last and kill as soon as both calls
    # reached the API, so the kill lands mid-call however slow the host (waiting for f0
    # between the call and the kill once let the call time out first under ASan).
    rid2 = send("UALICE", "CDEV", "flag", "get kread", topic=topics["requests"])
    rid = send("UBOB", "COPS", "flag", "set killed on", topic=topics["requests"])
    end = time.time() + 30
    while time.time() < end and not (exact("/api/v4/features/killed") and exact("/api/v4/features/kread")):
        time.sleep(0.01)
    wk.stop(signal.SIGKILL)
    check(f0.get("status") == "ok", "after_done answered before the kill: %r" % f0)
    check(len(exact("/api/v4/features/killed")) == 1, "the call reached the API before the kill")
    check(len(exact("/api/v4/features/kread")) == 1, "the read reached the API before the kill")
    check(not results.find(lambda x: x.get("request_id") in (rid, rid2)), "no result before the kill")
    API.set_rules([])
    wn = Worker(write_config("wn", topics, "cqt-k2-" + RUN), "wn")
    try:
        r = final_of(rid, 40)
        check(r.get("status") == "failed" and "outcome is unknown" in r.get("text", ""),
              "killed mid-call -> outcome unknown: %r" % r.get("text"))
        check("POST http://127.0.0.1:%d/api/v4/features/killed" % API.port in r.get("text", ""), "says where to check")
        r2 = final_of(rid2, 40)
        check(r2.get("status") == "ok", "an idempotent read is simply run again: %r" % r2.get("text"))
        time.sleep(3)
        check(len(exact("/api/v4/features/killed")) == 1, "never called again after the kill")
        check(len(exact("/api/v4/features/kread")) == 2, "the idempotent read was called again")
        check(len(exact("/api/v4/features/after_done")) == 1, "answered side effect not repeated after the kill")
        for x in (rid, rid2):
            finals = results.find(lambda m, x=x: m.get("request_id") == x and m.get("step") == "final")
            check(len(finals) == 1, "one final result after the kill for %s, got %d" % (x, len(finals)))
        # Killed after producing its result but maybe before recording it as delivered in
        # Redis: the next owner sends the stored result again rather than risk none. It is
        # the same result (byte for byte), which the notifier sends once per
        # (request, step, seq); never a second, different answer.
        finals = results.find(lambda m: m.get("request_id") == rid0 and m.get("step") == "final")
        check(1 <= len(finals) <= 2 and all(f == finals[0] for f in finals),
              "answered-then-killed: one final result (maybe re-sent identically), got %r" % finals)
    finally:
        wn.stop()
    report("kill_mid_call")


def exact(path):
    return [q for q in API.requests(path) if q["path"] == path]


if __name__ == "__main__":
    sys.exit(main())
