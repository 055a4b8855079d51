#!/usr/bin/env python3
"""Run-once under faults, through the real chatops-worker (and chatops-notifier) with the
real Kafka fixture, a private real redis-server (so it can be flushed and restarted without
touching other tests) and the fake API (tests/fakes/fake_api.py):

- lost_claim_flush: kill -9 a worker mid-call, FLUSHALL, restart it with the same --id: the
  redelivered request is answered "outcome unknown" with its id, the API is never called a
  second time, and the offset moves (issue 19 items 4 and 7).
- restart_same_id: a restarted worker with the same --id ends the request and its platform
  retry (a duplicate) instead of mistaking its predecessor's claim for its own (item 7).
- duplicate_bounded: a duplicate waiting on a live owner stuck in a long call is dropped as
  a duplicate after worker.duplicate_wait_s, with a log line and a metric (item 7).
- expired: a request received two days ago is answered "expired", never called, audited,
  offset moved (item 5).
- persistence: the worker warns and sets chatops_redis_persistence_ok 0 against a Redis
  without appendfsync always, 1 with it (item 4).
- idle_paused: a worker and a notifier with kafka.max_poll_interval_ms 10000 stay idle and
  paused (max_inflight reached; Redis down) past it with no rebalance (item 6).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, free_port, now_rfc3339, report, stack_file  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
RUN = uuid.uuid4().hex[:8]
TMP = tempfile.mkdtemp(prefix="cqt-runonce-")
API = FakeAPI().start()
BASE = "http://127.0.0.1:%d/api/v4" % API.port


class Redis:
    """A private redis-server: flushed, stopped and restarted by the tests."""

    def __init__(self, fsync="everysec"):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=TMP)
        self.fsync = fsync
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "redis.log"), "a")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", self.fsync, "--dir", self.dir],
            stdout=self.log, stderr=self.log)
        end = time.time() + 10
        while time.time() < end:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        check(False, "private redis-server started")

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                           text=True)
        return r.stdout.strip()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()




def config_yaml(topics, group, redis_port, prefix, extra_worker="", extra_kafka="",
                redis_host="127.0.0.1"):
    return """
log: {level: info}
kafka:
  brokers: "%(brokers)s"
  partitions: 1
%(extra_kafka)s
  topics:
    requests: "%(requests)s"
    results: "%(results)s"
    audit: "%(audit)s"
    dlq: "%(dlq)s"
  groups:
    worker: "%(group)s"
    notifier: "%(group)s-n"
redis:
  host: %(redis_host)s
  port: %(redis)d
  prefix: "%(prefix)s"
worker:
  lease_ms: 1500
%(extra_worker)s
slack:
  enabled: true
  signing_secret: "${CQT_SLACK_SECRET}"
  bot_token: "${CQT_SLACK_TOKEN}"
  api_base: "%(base)s/slack"
people:
  alice: {gitlab_login: alice.gl, slack: [UALICE], roles: [sre]}
channels:
  ops: {platform: slack, id: COPS}
commands:
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
      body: "value={{args.value}}"
      body_type: form
      timeout_ms: 30000
      reply_pointer: /state
policy:
  - {name: flags, roles: [sre], commands: [flag set]}
""" % {"brokers": BROKERS, "redis": redis_port, "run": RUN, "base": BASE, "group": group,
       "prefix": prefix, "redis_host": redis_host, "extra_worker": extra_worker, "extra_kafka": extra_kafka, **topics}


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def Proc(kind, cfg, name, ident=None):
    """chatops-worker / chatops-notifier run as deployed, through the shared launcher
    (cqt.Service: no signal dispositions changed), its log in TMP/NAME.log."""
    env = dict(CQT_SLACK_SECRET="s3cret-" + RUN, CQT_SLACK_TOKEN="xoxb-" + RUN)
    return cqt.Service(kind, cfg, name, TMP, args=["--id", ident] if ident else [], env=env)


_TOPICS = {}


def topics_for(tag):
    """The topics of one test, created once (a first message) before anyone follows them."""
    if tag not in _TOPICS:
        t = {k: "cqt.runonce.%s.%s.%s" % (RUN, tag, k) for k in ("requests", "results", "audit", "dlq")}
        for name in t.values():
            cqt.produce(BROKERS, name, "init", '{"init":true}')
        _TOPICS[tag] = t
    return _TOPICS[tag]


def send(topics, text, dedupe=None, received_at=None, rid=None, channel="COPS"):
    rid = rid or str(uuid.uuid4())
    env = json.dumps({
        "v": 1, "id": rid, "received_at": received_at or now_rfc3339(), "platform": "slack",
        "tenant": "T1", "channel": {"id": channel, "name": "ops"},
        "user": {"id": "UALICE", "name": "alice"}, "command": "flag", "text": text,
        "reply": {"response_url": "%s/slack/resp/%s" % (BASE, rid), "chat_id": channel},
        "dedupe_key": dedupe or ("slack:" + rid), "retry_num": 0})
    cqt.produce(BROKERS, topics["requests"], "slack:T1:" + channel, env)
    return rid


def calls(name):
    path = "/api/v4/features/" + name
    return [q for q in API.requests(path) if q["path"] == path]


def wait_calls(name, n=1, timeout=30):
    end = time.time() + timeout
    while time.time() < end and len(calls(name)) < n:
        time.sleep(0.02)
    return len(calls(name))


def finals(results, rid):
    return results.find(lambda r: r.get("request_id") == rid and r.get("step") == "final")


def offsets_moved(topics, group, redis, prefix, rids, results):
    """A fresh worker of the same group must not see rids again: their offsets were
    committed. It answers a marker request sent after them, so it did consume."""
    cfg = write("probe-%s.yaml" % group, config_yaml(topics, group, redis.port, prefix))
    before = {r: len(finals(results, r)) for r in rids}
    marker = send(topics, "set probe_%s on" % uuid.uuid4().hex[:6])
    p = Proc("worker", cfg, "probe-" + group)
    try:
        got = results.wait(lambda r: r.get("request_id") == marker and r.get("step") == "final", 1, 40)
        check(bool(got), "%s: the next worker of the group answers a later request" % group)
        time.sleep(1)
        for r in rids:
            check(len(finals(results, r)) == before[r],
                  "%s: %s is not redelivered (its offset moved)" % (group, r))
    finally:
        p.stop()


def test_lost_claim_flush(results):
    redis = Redis()
    topics = topics_for("flush")
    group, prefix = "cqt-flush-" + RUN, "cqt-ro-%s:" % RUN
    cfg = write("flush.yaml", config_yaml(topics, group, redis.port, prefix))
    API.set_rules([{"prefix": "/api/v4/features/lost_one", "delay_ms": 4000}])
    w1 = Proc("worker", cfg, "flush-w1", ident="wflush")
    rid = send(topics, "set lost_one on")
    try:
        check(wait_calls("lost_one") == 1, "the call reached the API")
        w1.stop(signal.SIGKILL)
        check(redis.cli("FLUSHALL") == "OK", "redis flushed between the call and the redelivery")
        API.set_rules([])
        w2 = Proc("worker", cfg, "flush-w2", ident="wflush")
        try:
            got = results.wait(lambda r: r.get("request_id") == rid and r.get("step") == "final", 1, 40)
            r = got[0] if got else {}
            check(r.get("status") == "failed" and "outcome is unknown" in r.get("text", ""),
                  "lost claim -> outcome unknown: %r" % r.get("text"))
            check(rid in r.get("text", ""), "the reply names the request id")
            check(r.get("outcome_unknown") is True, "the result is marked outcome_unknown")
            time.sleep(2)
            check(len(calls("lost_one")) == 1, "never called a second time, got %d" % len(calls("lost_one")))
            check(len(finals(results, rid)) == 1, "one final")
            check(bool(w2.grep("run-once claim was lost by Redis")), "the worker logs the lost claim")
            check("chatops_worker_claims_lost_total 1" in w2.metrics(), "lost claims are counted")
        finally:
            w2.stop()
        offsets_moved(topics, group, redis, prefix, [rid], results)
    finally:
        w1.stop(signal.SIGKILL)
        redis.kill()
    report("lost_claim_flush")


def test_restart_same_id(results):
    redis = Redis()
    topics = topics_for("sameid")
    group, prefix = "cqt-sameid-" + RUN, "cqt-ro2-%s:" % RUN
    cfg = write("sameid.yaml", config_yaml(topics, group, redis.port, prefix))
    API.set_rules([{"prefix": "/api/v4/features/same_id", "delay_ms": 4000}])
    w1 = Proc("worker", cfg, "sameid-w1", ident="wsame")
    dedupe = "slack:trig-" + uuid.uuid4().hex
    rid = send(topics, "set same_id on", dedupe=dedupe)
    try:
        check(wait_calls("same_id") == 1, "the call reached the API")
        # Slack retries the command: same trigger id, a second message on the topic.
        rid2 = send(topics, "set same_id on", dedupe=dedupe)
        time.sleep(0.5)
        w1.stop(signal.SIGKILL)
        API.set_rules([])
        w2 = Proc("worker", cfg, "sameid-w2", ident="wsame")
        try:
            got = results.wait(lambda r: r.get("request_id") == rid and r.get("step") == "final", 1, 40)
            r = got[0] if got else {}
            check(r.get("status") == "failed" and "outcome is unknown" in r.get("text", ""),
                  "killed mid-call, restarted with the same --id -> outcome unknown: %r" % r.get("text"))
            check(w2.wait_for('duplicate of an answered request.*"req_id":"%s"' % rid2, 30),
                  "the platform retry ends as a duplicate of the answered request")
            time.sleep(2)
            check(len(calls("same_id")) == 1, "the API was called once, got %d" % len(calls("same_id")))
            check(not finals(results, rid2) or finals(results, rid2)[0].get("request_id") == rid,
                  "no second, different answer for the retry")
        finally:
            w2.stop()
        offsets_moved(topics, group, redis, prefix, [rid, rid2], results)
    finally:
        w1.stop(signal.SIGKILL)
        redis.kill()
    report("restart_same_id")


def test_duplicate_bounded(results):
    redis = Redis()
    topics = topics_for("dupwait")
    group, prefix = "cqt-dupwait-" + RUN, "cqt-ro3-%s:" % RUN
    cfg = write("dupwait.yaml", config_yaml(topics, group, redis.port, prefix,
                                            extra_worker="  duplicate_wait_s: 2"))
    API.set_rules([{"prefix": "/api/v4/features/long_call", "delay_ms": 8000}])
    w = Proc("worker", cfg, "dupwait-w", ident="wdup")
    dedupe = "slack:trig-" + uuid.uuid4().hex
    try:
        rid = send(topics, "set long_call on", dedupe=dedupe)
        check(wait_calls("long_call") == 1, "the call reached the API")
        t0 = time.time()
        rid2 = send(topics, "set long_call on", dedupe=dedupe, channel="COTHER")
        check(w.wait_for('dropped as a duplicate.*"req_id":"%s"' % rid2, 20),
              "the duplicate is dropped while its owner still runs")
        check(time.time() - t0 < 7.5, "dropped before the owner's call returned")
        check('chatops_worker_duplicates_total{outcome="dropped"} 1' in w.metrics(),
              "dropped duplicates are counted")
        got = results.wait(lambda r: r.get("request_id") == rid and r.get("step") == "final", 1, 30)
        check(got and got[0].get("status") == "ok", "the owner answers: %r" % (got[:1],))
        check(not finals(results, rid2), "the duplicate produced no second answer")
        check(len(calls("long_call")) == 1, "one call")
    finally:
        w.stop()
        API.set_rules([])
    offsets_moved(topics, group, redis, prefix, [rid, rid2], results)
    redis.kill()
    report("duplicate_bounded")


def test_expired(results, audit):
    redis = Redis()
    topics = topics_for("expired")
    group, prefix = "cqt-expired-" + RUN, "cqt-ro4-%s:" % RUN
    # By name: the worker resolves it off the loop (uv_getaddrinfo), then connects.
    cfg = write("expired.yaml", config_yaml(topics, group, redis.port, prefix, redis_host="localhost"))
    w = Proc("worker", cfg, "expired-w")
    try:
        rid = send(topics, "set too_old on", received_at=now_rfc3339(time.time() - 2 * 86400))
        got = results.wait(lambda r: r.get("request_id") == rid and r.get("step") == "final", 1, 40)
        r = got[0] if got else {}
        check(r.get("status") == "failed" and "expired" in r.get("text", "")
              and "NOT run" in r.get("text", "") and rid in r.get("text", ""),
              "a 2-day-old request is answered expired with its id: %r" % r.get("text"))
        check("\n" not in r.get("text", "x\n"), "one line")
        a = audit.wait(lambda x: x.get("request_id") == rid and x.get("decision") == "expired", 2, 20)
        check(len(a) == 2, "decision and outcome audit records say expired: %r" % a)
        time.sleep(1)
        check(len(calls("too_old")) == 0, "never called")
    finally:
        w.stop()
    offsets_moved(topics, group, redis, prefix, [rid], results)
    redis.kill()
    report("expired")


def test_persistence():
    for fsync, want in (("everysec", "0"), ("always", "1")):
        redis = Redis(fsync=fsync)
        topics = topics_for("pers" + fsync)
        cfg = write("pers-%s.yaml" % fsync,
                    config_yaml(topics, "cqt-pers-" + RUN, redis.port, "cqt-ro5-%s:" % RUN))
        w = Proc("worker", cfg, "pers-" + fsync)
        try:
            check(w.wait_for("appendfsync", 20), "%s: the worker reports the setting" % fsync)
            warned = bool(w.grep('"level":"warn".*appendfsync everysec'))
            check(warned == (fsync == "everysec"), "%s: a warning only when the promise cannot hold" % fsync)
            m = re.search(r"^chatops_redis_persistence_ok (\S+)$", w.metrics(), re.M)
            check(m and m.group(1) == want, "%s: chatops_redis_persistence_ok %s, got %r" %
                  (fsync, want, m and m.group(1)))
        finally:
            w.stop()
            redis.kill()
    report("persistence")


def resp_posts(rid):
    path = "/api/v4/slack/resp/" + rid
    return [q for q in API.requests(path) if q["path"] == path]


def test_final_supersedes_unknown():
    """Item 8: a stalled owner's true final, produced after another worker answered
    "outcome unknown" for the same request, still reaches the user; an "outcome unknown"
    arriving after the true final is not posted."""
    redis = Redis()
    topics = topics_for("supersede")
    cfg = write("supersede.yaml", config_yaml(topics, "cqt-sup-" + RUN, redis.port, "cqt-ro7-%s:" % RUN))
    n = Proc("notifier", cfg, "supersede-n")

    def result(rid, text, unknown):
        r = {"v": 1, "request_id": rid, "step": "final", "status": "failed" if unknown else "ok",
             "platform": "slack", "text": text,
             "reply": {"response_url": BASE + "/slack/resp/" + rid, "chat_id": "COPS"}}
        if unknown:
            r["outcome_unknown"] = True
        return json.dumps(r)

    try:
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        cqt.produce(BROKERS, topics["results"], a, result(a, "the outcome is unknown", True))
        end = time.time() + 30
        while time.time() < end and not resp_posts(a):
            time.sleep(0.05)
        cqt.produce(BROKERS, topics["results"], a, result(a, "flag set: on", False))
        cqt.produce(BROKERS, topics["results"], b, result(b, "flag set: off", False))
        end = time.time() + 30
        while time.time() < end and (len(resp_posts(a)) < 2 or not resp_posts(b)):
            time.sleep(0.05)
        cqt.produce(BROKERS, topics["results"], b, result(b, "the outcome is unknown", True))
        time.sleep(3)
        pa = [json.loads(q["body"]).get("text", "") + json.dumps(json.loads(q["body"]).get("blocks", ""))
              for q in resp_posts(a)]
        check(len(pa) == 2 and "unknown" in pa[0] and "flag set: on" in pa[1],
              "unknown then true final: both posted, the final last: %r" % pa)
        pb = resp_posts(b)
        check(len(pb) == 1 and "flag set: off" in pb[0]["body"],
              "true final then unknown: only the final posted: %r" % [q["body"][:80] for q in pb])
    finally:
        n.stop()
        redis.kill()
    report("final_supersedes_unknown")


def rebalance_lines(p):
    return p.grep("kafka consumer: (assigned|.*revoked)|maximum poll interval|rebalance error")


def test_idle_paused():
    redis = Redis()
    topics = topics_for("idle")
    group, prefix = "cqt-idle-" + RUN, "cqt-ro6-%s:" % RUN
    cfg = write("idle.yaml", config_yaml(
        topics, group, redis.port, prefix,
        extra_worker="  max_inflight: 1", extra_kafka="  max_poll_interval_ms: 10000") +
        "notifier:\n  max_inflight: 1\n")
    cfgn = cfg
    API.set_rules([{"prefix": "/api/v4/features/slow_pause", "delay_ms": 14000}])
    w = Proc("worker", cfg, "idle-w")
    n = Proc("notifier", cfgn, "idle-n")
    try:
        check(w.wait_for("kafka consumer: assigned", 40), "worker joined")
        check(n.wait_for("kafka consumer: assigned", 40), "notifier joined")
        time.sleep(12)  # idle past max.poll.interval.ms (10 s)
        # Worker paused: max_inflight 1 with a 14 s call, a second request waiting behind.
        send(topics, "set slow_pause on")
        rid_after = send(topics, "set after_pause on", channel="CSECOND")
        check(wait_calls("slow_pause") == 1, "the slow call started")
        # Notifier paused: Redis down, so its one result in flight cannot be claimed.
        redis.kill()
        rid_n = str(uuid.uuid4())
        for i in range(2):
            cqt.produce(BROKERS, topics["results"], rid_n, json.dumps({
                "v": 1, "request_id": rid_n if i == 0 else str(uuid.uuid4()), "step": "final",
                "status": "ok", "platform": "slack", "text": "hello",
                "reply": {"response_url": BASE + "/slack/resp/" + rid_n, "chat_id": "COPS"}}))
        time.sleep(13)  # paused past max.poll.interval.ms
        redis.start()
        # Answered either way: run, or (Redis was killed with appendfsync everysec, so its
        # restart counts as a possible loss) "outcome unknown".
        check(w.wait_for('(allowed|outcome unknown).*"req_id":"%s"' % rid_after, 30),
              "the worker resumed after the slow call and took the waiting request")
        for p, what in ((w, "worker"), (n, "notifier")):
            lines = rebalance_lines(p)
            check(len(lines) == 1 and "assigned" in lines[0],
                  "%s: idle and paused past max.poll.interval.ms with no rebalance: %r" % (what, lines))
            m = re.findall(r'^chatops_kafka_rebalances_total\{[^}]*event="(\w+)"\} (\d+)$',
                           p.metrics(), re.M)
            check(m == [("assign", "1")], "%s: one assign, nothing else counted: %r" % (what, m))
    finally:
        API.set_rules([])
        w.stop()
        n.stop()
        redis.kill()
    report("idle_paused")


def main():
    only = sys.argv[1:]
    try:
        tails = {}

        def tail(tag, kind):
            key = (tag, kind)
            if key not in tails:
                tails[key] = Tail(BROKERS, topics_for(tag)[kind])
            return tails[key]

        tests = {
            "lost_claim_flush": lambda: test_lost_claim_flush(tail("flush", "results")),
            "restart_same_id": lambda: test_restart_same_id(tail("sameid", "results")),
            "duplicate_bounded": lambda: test_duplicate_bounded(tail("dupwait", "results")),
            "expired": lambda: test_expired(tail("expired", "results"), tail("expired", "audit")),
            "persistence": test_persistence,
            "final_supersedes_unknown": test_final_supersedes_unknown,
            "idle_paused": test_idle_paused,
        }
        for name, fn in tests.items():
            if not only or name in only:
                fn()
    finally:
        for t in tails.values():
            t.stop()
        API.stop()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
