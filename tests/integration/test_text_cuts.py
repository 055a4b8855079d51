#!/usr/bin/env python3
"""Text cut mid-character or bytes that are not UTF-8 never leave a request unanswered
(issue 19 item 1), through the real chatops-worker with the real Kafka and Redis, the fake
API (tests/fakes/fake_api.py, in-process) and the fake GitLab (tests/fakes/fake_gitlab.py).

- a request whose label ("command text") is cut at its byte budget inside a "€", and a reply
  cut at the 3000-byte reply budget inside a "€", are answered; the next request of the same
  conversation is answered too, and the group's committed offset reaches the end (lag 0);
- a direct call whose API answers an error with invalid UTF-8, in a JSON message or in the
  raw snippet, or with a "€" across the 200-byte snippet boundary, is answered (U+FFFD, "…");
- a trigger_and_wait pipeline whose failed job's log holds \\xff and a "€" across the tail's
  byte boundary ends with exactly one final, and its trace is downloaded a bounded number of
  times (before the fix: the final could not be encoded, the check repeated every lease).
"""
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, now_rfc3339, report, stack_file  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TMP = tempfile.mkdtemp(prefix="cqt-text-")
TOPIC_KEYS = ("requests", "results", "audit", "dlq", "pipeline_events")
TOPICS = {k: "cqt.text.%s.%s" % (RUN, k) for k in TOPIC_KEYS}
GROUP = "cqt-text-" + RUN
TRIGGER_TOKEN, API_TOKEN = "trig-" + RUN, "api-" + RUN
EURO, ELLIPSIS, REPL = "\u20ac", "\u2026", "\ufffd"
LEASE_MS = 1500


class FakeGitLab:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SRC, "tests", "fakes", "fake_gitlab.py"), "0",
             "--trigger-token", TRIGGER_TOKEN, "--api-token", API_TOKEN],
            stdout=subprocess.PIPE, text=True)
        self.url = "http://127.0.0.1:%d" % int(self.proc.stdout.readline())

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


API = FakeAPI().start()
GL = FakeGitLab()

CONFIG = """
%(stack)sworker:
  lease_ms: %(lease)d
  poll_min_ms: 200
  poll_max_ms: 1000
gitlab:
  base_url: "%(gl)s"
  api_token: "${CQT_GL_API}"
secrets:
  lb_trigger: "${CQT_GL_TRIGGER}"
people:
  alice: {gitlab_login: alice.gl, slack: [UALICE], roles: [sre]}
channels:
  ops: {platform: slack, id: COPS}
commands:
  flag get:
    description: Show a feature flag
    mode: direct
    args:
      - {name: name, required: true, regex: "[a-z][a-z0-9_]*", max_len: 40}
    http:
      method: GET
      base_url: "%(api)s"
      path: "/features/{{args.name}}"
      timeout_ms: 3000
      reply_template: "{{response.name}} is {{response.state}}"
  echo:
    description: Answer with the API's raw body
    mode: direct
    args:
      - {name: text, required: true, regex: "[a-z0-9]+"}
    http:
      method: GET
      base_url: "%(api)s"
      path: "/echo/{{args.text}}"
      timeout_ms: 3000
  lb weight:
    description: Set the traffic share of a pool
    mode: trigger_and_wait
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
      - {name: script, required: true, regex: "s-[a-z0-9-]+", max_len: 40}
    pipeline:
      project: ops%%2Fansible-lb
      ref: "{{args.script}}"
      trigger_token: lb_trigger
      timeout_s: 120
      progress_interval_s: 60
policy:
  - {name: everyone, roles: ["*"], commands: [help, whoami]}
  - {name: sre, roles: [sre], commands: [flag get, echo, lb weight]}
""" % {"stack": cqt.stack_yaml(BROKERS, [(k, TOPICS[k]) for k in TOPIC_KEYS], [("worker", GROUP)],
                          REDIS_PORT, "cqt-text-%s:" % RUN),
       "brokers": BROKERS, "redis": REDIS_PORT, "run": RUN, "group": GROUP, "lease": LEASE_MS,
       "gl": GL.url, "api": "http://127.0.0.1:%d/api/v4" % API.port, **TOPICS}


def send(command, text, channel="COPS"):
    rid = str(uuid.uuid4())
    cqt.produce(BROKERS, TOPICS["requests"], "slack:T1:" + channel, json.dumps({
        "v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "slack",
        "tenant": "T1", "channel": {"id": channel, "name": channel.lower()},
        "user": {"id": "UALICE", "name": "alice"}, "command": command, "text": text,
        "reply": {"response_url": "https://hooks.example/x", "chat_id": channel},
        "dedupe_key": "slack:" + rid, "retry_num": 0}))
    return rid


def Worker(name):
    """chatops-worker with CONFIG through the shared launcher (cqt.Service)."""
    cfg = os.path.join(TMP, name + ".yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    return cqt.Service("worker", cfg, name, TMP, args=["--id", name + "-" + RUN],
                       env=dict(CQT_GL_API=API_TOKEN, CQT_GL_TRIGGER=TRIGGER_TOKEN))


results = None


def finals(rid):
    return results.find(lambda r: r.get("request_id") == rid and r.get("step") == "final")


def final_of(rid, timeout=30):
    got = results.wait(lambda r: r.get("request_id") == rid and r.get("step") == "final", 1,
                       timeout)
    return got[0] if got else {}


def lag(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            body = r.read().decode()
    except (OSError, urllib.error.HTTPError):
        return None
    m = re.search(r'^chatops_kafka_consumer_lag\{group="%s",topic="%s"\} (-?\d+)$'
                  % (re.escape(GROUP), re.escape(TOPICS["requests"])), body, re.M)
    return int(m.group(1)) if m else None


def test_cut_label_and_reply(w):
    """`/ops help €€€…` (90 euros): its label "help €€€…" passes 255 bytes inside a "€"."""
    rid = send("help", EURO * 90)
    f = final_of(rid)
    # (a 270-byte word is over max_arg_len: "invalid" with a reason is an answer too)
    check(f.get("status") in ("ok", "invalid") and f.get("text"),
          "help + 90 euros is answered: %r" % f)
    cmd = f.get("command", "")
    check(cmd.startswith("help " + EURO) and cmd.endswith(ELLIPSIS) and
          len(cmd.encode()) <= 255, "the label is cut on a character with '…': %r" % cmd)
    nxt = send("whoami", "")
    check(final_of(nxt).get("status") == "ok", "the next request of the conversation is answered")
    # a 3300-byte reply: the 3000-byte budget falls inside a "€"
    API.set_rules([{"prefix": "/api/v4/echo/euros", "status": 200,
                    "body": (EURO * 1100).encode()}])
    rid = send("echo", "euros")
    f = final_of(rid)
    t = f.get("text", "")
    check(f.get("status") == "ok" and t.startswith(EURO * 100) and t.endswith(ELLIPSIS) and
          len(t.encode()) <= 3000, "a reply cut at 3000 bytes ends on a character with '…': "
          "%s %d bytes, ends %r" % (f.get("status"), len(t.encode()), t[-3:]))
    check(len(finals(rid)) == 1, "one final for the cut reply")
    API.set_rules([])
    # limits.max_text (4000) counts characters: 1427 of them in 4227 bytes are within it
    rid = send("help", " ".join([EURO * 50] * 28))
    f = final_of(rid)
    check(f.get("status") and "longer than 4000" not in f.get("text", ""),
          "1427 characters (4227 bytes) pass max_text 4000: %r" % f.get("text", "")[:120])
    check("out of memory" not in w.logs(), "nothing logged as 'out of memory'")
    report("label and reply cut inside a character are answered")


def test_api_error_bodies(w):
    snippet = ("x" * 199 + EURO * 3).encode()  # the 200-byte snippet ends inside the first "€"
    API.set_rules([
        {"prefix": "/api/v4/features/snip", "status": 500, "body": snippet},
        {"prefix": "/api/v4/features/jsonbad", "status": 500,
         "body": b'{"message": "database \xff\xfe down"}'},
        {"prefix": "/api/v4/features/rawbad", "status": 502, "body": b"bad gateway \xc3\x28 \xff"},
        {"prefix": "/api/v4/echo/okbad", "status": 200, "body": b"done \xed\xa0\x80 \xf8!"},
    ])
    rows = [("flag", "get snip", "failed", "x" * 150),
            ("flag", "get jsonbad", "failed", "database " + REPL + REPL + " down"),
            ("flag", "get rawbad", "failed", "bad gateway " + REPL + "( " + REPL),
            ("echo", "okbad", "ok", "done " + REPL * 3 + " " + REPL + "!")]
    rids = [send(c, t) for c, t, _, _ in rows]
    for rid, (c, t, status, want) in zip(rids, rows):
        f = final_of(rid)
        check(f.get("status") == status and want in f.get("text", ""),
              "%s %s: %s with %r, got %r" % (c, t, status, want, f))
    f = final_of(rids[0])
    check(f.get("text", "").endswith("x" + ELLIPSIS),
          "the snippet is cut before the split '€', with '…': %r" % f.get("text", "")[-20:])
    API.set_rules([])
    report("API error bodies with invalid UTF-8 or a split character are answered")


def test_offset_moves(w):
    """Every request above was answered, so the committed offset reaches the end."""
    port = w.admin_port()
    check(port is not None, "worker logs its admin port")
    end, seen = time.time() + 30, None  # the gauge is refreshed every 5 s
    while port and time.time() < end and seen != 0:
        seen = lag(port)
        time.sleep(0.3)
    check(seen == 0, "consumer lag back to 0 (the partition's commit point moved): %r" % seen)
    report("offsets move past cut/invalid text")


def trace_downloads():
    return [q for q in GL.get("/_log") if q["path"].endswith("/trace")]


def test_pipeline_trace(w):
    # the last line is longer than the 4000-byte tail: the cut falls inside a "€" (4208 - 4000
    # = 208 bytes into the line, 208 % 3 == 1), and the kept end holds \xff
    line = (EURO * 1400).encode() + b" \xff boom!"
    trace = b"\x1b[0Ksection_start:1:step\r\x1b[0Kfirst\n\xff\xfe early\n" + line + b"\n"
    GL.post("/_control", {"ref": "s-utf8-tail", "trace_b64": base64.b64encode(trace).decode(),
                          "steps": [{"status": "pending", "after_ms": 0},
                                    {"status": "running", "after_ms": 300},
                                    {"status": "failed", "after_ms": 1200}]})
    before = len(trace_downloads())
    rid = send("lb", "weight blue 10 s-utf8-tail", channel="CPL")
    f = final_of(rid, 40)
    t = f.get("text", "")
    check(f.get("status") == "failed", "the failed pipeline has a final: %r" % f)
    check("`apply` log" in t and REPL + " boom!" in t and ELLIPSIS + EURO in t,
          "the log tail starts on a character after '…' and shows \\xff as U+FFFD: %r" %
          (t[:80] + " ... " + t[-40:]))
    time.sleep(4 * LEASE_MS / 1000.0)  # several leases: a repeating check would show here
    check(len(finals(rid)) == 1, "exactly one final, got %d" % len(finals(rid)))
    n = len(trace_downloads()) - before
    check(1 <= n <= 2, "the trace was downloaded %d time(s) (bounded, not once per lease)" % n)
    report("failed pipeline with \\xff and a split '€' in its log: one final")


def main():
    global results
    for t in TOPICS.values():
        subprocess.run([os.path.join(BUILD, "bin", "cqt-topic_dump"), BROKERS, t, "0"],
                       capture_output=True)
    results = Tail(BROKERS, TOPICS["results"])
    w = Worker("w1")
    try:
        test_cut_label_and_reply(w)
        test_api_error_bodies(w)
        test_pipeline_trace(w)
        test_offset_moves(w)
        check(w.stop() == 0, "worker exits 0 on SIGTERM")
    finally:
        w.stop(signal.SIGKILL)
        results.stop()
        API.stop()
        GL.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
