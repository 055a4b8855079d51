#!/usr/bin/env python3
"""Integration test of the pipeline modes through the real chatops-worker binary: real Kafka
and Redis (ctest fixtures), the scripted fake GitLab (tests/fakes/fake_gitlab.py) as a
subprocess. trigger_and_wait ack with link, progress and final; failed pipeline with job
name and log tail; trigger_and_return with a manual job; webhook fast path; variables as
the fake sees them (no injection); kill -9 of a worker with 20 waiting pipelines; cancel
by the requester and by a stranger; run-once of a redelivered trigger; a trigger whose
answer is ambiguous (a proxy's 502/504 after GitLab created the pipeline, or a 502 without
it) is never sent twice: the pipeline is found by its CHATOPS_REQUEST_ID or the user is told
the outcome is unknown; a 429 is retried; a reserved variable name is refused at start.
"""
import re
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, now_rfc3339, report, stack_file  # noqa: E402
WORKER_BIN = os.path.join(BUILD, "worker", "chatops-worker")



BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TMP = tempfile.mkdtemp(prefix="cqt-plw-")
TRIGGER_TOKEN = "trig-" + RUN
API_TOKEN = "api-" + RUN




class FakeGitLab:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SRC, "tests", "fakes", "fake_gitlab.py"), "0",
             "--trigger-token", TRIGGER_TOKEN, "--api-token", API_TOKEN],
            stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def pipeline(self, pid):
        for p in self.get("/_pipelines"):
            if p["id"] == pid:
                return p
        return None

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


GL = FakeGitLab()


TOPIC_KEYS = ("requests", "results", "audit", "dlq", "pipeline_events")


def topics_for(phase):
    return {k: "cqt.plw.%s.%s.%s" % (RUN, phase, k) for k in TOPIC_KEYS}


def config_yaml(topics, group, lease_ms, poll_min, poll_max):
    return """
%(stack)sworker:
  lease_ms: %(lease)d
  poll_min_ms: %(pmin)d
  poll_max_ms: %(pmax)d
  cancel_roles: [sre]
gitlab:
  base_url: "%(gl)s"
  api_token: "${CQT_GL_API}"
secrets:
  lb_trigger: "${CQT_GL_TRIGGER}"
people:
  alice: {gitlab_login: alice.gl, slack: [UALICE], roles: [sre]}
  bob: {gitlab_login: bob.gl, slack: [UBOB], roles: [dev]}
  dave: {gitlab_login: dave.gl, slack: [UDAVE], roles: [dev]}
channels:
  ops-prod: {platform: slack, id: CPROD}
commands:
  lb weight:
    description: Set the traffic share of a pool
    usage: lb weight POOL PERCENT SCRIPT [REASON]
    mode: trigger_and_wait
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
      - {name: script, required: true, regex: "s-[a-z0-9-]+", max_len: 40}
      - {name: reason, required: false, max_len: 100}
    pipeline:
      project: ops%%2Fansible-lb
      ref: "{{args.script}}"
      trigger_token: lb_trigger
      variables:
        LB_POOL: "{{args.pool}}"
        LB_PERCENT: "{{args.percent}}"
        REASON: "{{args.reason}}"
      timeout_s: 120
      progress_interval_s: 1
    response_type: in_channel
  deploy:
    description: Deploy a service
    usage: deploy SERVICE ENV
    mode: trigger_and_return
    args:
      - {name: service, required: true, regex: "[a-z][a-z0-9-]*", max_len: 40}
      - {name: env, type: enum, required: true, values: [staging, production]}
    pipeline:
      project: ops%%2Fdeploy
      ref: s-manual-500
      trigger_token: lb_trigger
      variables:
        SERVICE: "{{args.service}}"
      manual_job: deploy
    response_type: in_channel
policy:
  - {name: everyone-help, roles: ["*"], commands: [help, whoami, pipelines, cancel]}
  - {name: lb, roles: [sre, dev], commands: [lb weight, deploy]}
""" % {"stack": cqt.stack_yaml(BROKERS, [(k, topics[k]) for k in TOPIC_KEYS], [("worker", group)],
                          REDIS_PORT, "cqt-plw-%s:" % RUN),
       "brokers": BROKERS, "redis": REDIS_PORT, "run": RUN, "group": group, "lease": lease_ms,
       "pmin": poll_min, "pmax": poll_max, "gl": GL.url, **topics}


def produce(topic, key, value):
    cqt.produce(BROKERS, topic, key, value)


def envelope(user, channel, command, text, rid=None, dedupe=None):
    rid = rid or str(uuid.uuid4())
    return rid, json.dumps({
        "v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "slack",
        "tenant": "T1", "channel": {"id": channel, "name": channel.lower()},
        "user": {"id": user, "name": user.lower()}, "command": command, "text": text,
        "reply": {"response_url": "https://hooks.example/x", "chat_id": channel},
        "dedupe_key": dedupe or ("slack:" + rid), "retry_num": 0})


class Phase:
    """One set of topics, one consumer group, tails on results and audit."""

    def __init__(self, name, lease_ms=1500, poll_min=200, poll_max=1000):
        self.name = name
        self.topics = topics_for(name)
        self.group = "cqt-plw-%s-%s" % (RUN, name)
        self.cfg = os.path.join(TMP, name + ".yaml")
        with open(self.cfg, "w") as f:
            f.write(config_yaml(self.topics, self.group, lease_ms, poll_min, poll_max))
        # Create the topics (and start the tails) before any worker subscribes.
        for t in ("requests", "pipeline_events", "results", "audit"):
            subprocess.run([os.path.join(BUILD, "bin", "cqt-topic_dump"), BROKERS,
                            self.topics[t], "0"], capture_output=True)
        self.results = Tail(BROKERS, self.topics["results"])
        self.audit = Tail(BROKERS, self.topics["audit"])
        self.workers = []

    def worker(self, wname):
        w = Worker(self.cfg, "%s-%s" % (self.name, wname))
        self.workers.append(w)
        return w

    def send(self, user, command, text, rid=None, dedupe=None, channel="CPROD"):
        rid, env = envelope(user, channel, command, text, rid, dedupe)
        produce(self.topics["requests"], "slack:T1:" + channel, env)
        return rid

    def of(self, rid, step, n=1, timeout=30):
        return self.results.wait(lambda r: r.get("request_id") == rid and r.get("step") == step,
                                 n, timeout)

    def one(self, rid, step, timeout=30):
        got = self.of(rid, step, 1, timeout)
        return got[0] if got else {}

    def close(self):
        for w in self.workers:
            w.stop()
        self.results.stop()
        self.audit.stop()


def Worker(cfg_path, name):
    """chatops-worker through the shared launcher (cqt.Service), no admin listener."""
    return cqt.Service("worker", cfg_path, name, TMP, args=["--id", name + "-" + RUN],
                       env=dict(CQT_GL_API=API_TOKEN, CQT_GL_TRIGGER=TRIGGER_TOKEN), http_port=-1)


def trigger_requests(pid):
    return [q for q in GL.get("/_log") if q["path"].endswith("/trigger/pipeline")
            and q["method"] == "POST" and any(k == "variables[CHATOPS_REQUEST_ID]" and v == pid
                                              for k, v in q["form"])]


def test_wait_success_and_variables(ph):
    text = "blue 30 s-success-2500 x&variables[EVIL]=1&ref=main"
    rid = ph.send("UALICE", "lb", "weight " + text)
    ack = ph.one(rid, "ack")
    check(ack.get("status") == "ok", "ack status ok: %r" % ack)
    pl = ack.get("pipeline") or {}
    check(pl.get("id", 0) > 0 and "/ops/ansible-lb/-/pipelines/%d" % pl.get("id", 0) in pl.get("web_url", ""),
          "ack carries pipeline id and web_url: %r" % pl)
    check(pl.get("web_url", "?") in ack.get("text", ""), "ack text has the link: %r" % ack.get("text"))
    check(ack.get("response_type") == "in_channel", "ack in_channel")
    prog = ph.of(rid, "progress", 1, 10)
    check(len(prog) >= 1 and "running" in prog[0].get("text", ""), "progress names running: %r" % prog)
    fin = ph.one(rid, "final", 30)
    check(fin.get("status") == "ok" and "succeeded" in fin.get("text", ""), "final success: %r" % fin)
    check((fin.get("pipeline") or {}).get("id") == pl.get("id"), "final names the pipeline")
    time.sleep(1.5)
    check(len(ph.of(rid, "final", 1, 0)) == 1, "exactly one final")
    p = GL.pipeline(pl.get("id"))
    variables = dict(p["variables"]) if p else {}
    # The arguments text: what follows the command's full name ("lb weight"), not "weight ...".
    want = {"CHAT_INPUT": text, "CHAT_CHANNEL": "ops-prod", "CHAT_USER_ID": "UALICE",
            "GITLAB_USER_LOGIN": "alice.gl", "CHATOPS_COMMAND": "lb weight",
            "CHATOPS_REQUEST_ID": rid, "LB_POOL": "blue", "LB_PERCENT": "30",
            "REASON": "x&variables[EVIL]=1&ref=main"}
    for k, v in want.items():
        check(variables.get(k) == v, "variable %s = %r, got %r" % (k, v, variables.get(k)))
    check("EVIL" not in variables, "argument text injected no variable: %r" % sorted(variables))
    check(p and p["ref"] == "s-success-2500", "ref from the argument, not injected: %r" % (p and p["ref"]))
    check(len(trigger_requests(rid)) == 1, "one trigger call")
    tr = ph.audit.wait(lambda a: a.get("request_id") == rid and a.get("kind") == "trigger")
    check(len(tr) == 1 and tr[0].get("result") == "ok", "trigger audit record: %r" % tr)
    oc = ph.audit.wait(lambda a: a.get("request_id") == rid and a.get("kind") == "outcome")
    check(len(oc) >= 1 and oc[0].get("result") == "ok", "final outcome audit record: %r" % oc)
    print("  wait: ack #%s, %d progress, final '%s'; %d variables exact" %
          (pl.get("id"), len(prog), fin.get("text"), len(want)))
    report("trigger_and_wait success, progress, variables, no injection")
    return rid


def test_failed(ph):
    rid = ph.send("UBOB", "lb", "weight green 10 s-failed-1200")
    fin = ph.one(rid, "final", 30)
    t = fin.get("text", "")
    check(fin.get("status") == "failed", "failed status: %r" % fin)
    check("apply" in t and "lint" not in t.split("log")[0], "names the failed job (not allow_failure): %r" % t)
    check("ERROR: apply failed in job" in t, "log tail present: %r" % t[-300:])
    check("line 1 of job" not in t, "only the tail of the log")
    report("failed pipeline: job name and log tail")


def test_failed_log_tail_redacted(ph):
    """A job that prints a configured secret: the tail shown in chat has it [redacted]."""
    GL.post("/_control", {"ref": "s-leaky", "steps": [{"status": "pending", "after_ms": 0},
                                                      {"status": "failed", "after_ms": 600}],
                          "trace": "deploying with token %s\ncurl -H 'PRIVATE-TOKEN: %s'\n"
                                   "ERROR: apply failed\n" % (TRIGGER_TOKEN, API_TOKEN)})
    rid = ph.send("UBOB", "lb", "weight green 10 s-leaky")
    fin = ph.one(rid, "final", 30)
    t = fin.get("text", "")
    check(fin.get("status") == "failed" and "ERROR: apply failed" in t, "failed with tail: %r" % t)
    check(TRIGGER_TOKEN not in t and API_TOKEN not in t and t.count("[redacted]") == 2,
          "configured secrets in the job log are redacted: %r" % t[-300:])
    oc = ph.audit.wait(lambda a: a.get("request_id") == rid and a.get("kind") == "outcome")
    check(oc and all(TRIGGER_TOKEN not in json.dumps(a) and API_TOKEN not in json.dumps(a)
                     for a in oc), "nor in the outcome audit record")
    report("failed pipeline: secrets in the log tail redacted")


def test_manual(ph):
    rid = ph.send("UBOB", "deploy", "web staging")
    fin = ph.one(rid, "final", 20)
    pl = fin.get("pipeline") or {}
    want = "pipeline #%d created — approve the 'deploy' job: %s" % (pl.get("id", 0), pl.get("web_url"))
    check(fin.get("status") == "ok" and fin.get("text") == want, "manual reply %r, got %r" % (want, fin.get("text")))
    check(not ph.of(rid, "ack", 1, 0), "trigger_and_return sends no ack")
    report("trigger_and_return with a manual job")


def test_redelivery(ph, rid):
    """The same request delivered again: answered from the run-once record, no 2nd trigger."""
    before = len(trigger_requests(rid))
    _, env = envelope("UALICE", "CPROD", "lb", "weight blue 30 s-success-2500", rid)
    produce(ph.topics["requests"], "slack:T1:CPROD", env)
    time.sleep(3)
    check(len(trigger_requests(rid)) == before == 1, "redelivered request did not trigger again")
    acks = ph.of(rid, "ack", 1, 0)
    check(all(a == acks[0] for a in acks), "any re-sent ack is identical")
    check(len(ph.of(rid, "final", 1, 0)) == 1, "still exactly one final")
    report("redelivered trigger_and_wait runs once")


def test_cancel(ph):
    rid = ph.send("UBOB", "lb", "weight blue 5 s-forever")
    ack = ph.one(rid, "ack")
    pid = (ack.get("pipeline") or {}).get("id")
    lst = ph.send("UBOB", "pipelines", "")
    lf = ph.one(lst, "final")
    check(rid in lf.get("text", "") and "#%s" % pid in lf.get("text", ""), "pipelines lists it: %r" % lf.get("text"))
    lst2 = ph.send("UDAVE", "pipelines", "")
    check(rid not in ph.one(lst2, "final").get("text", "x" + rid), "a stranger does not see it")
    c1 = ph.send("UDAVE", "cancel", rid)
    f1 = ph.one(c1, "final")
    check(f1.get("status") == "denied" and "only the person who started" in f1.get("text", ""),
          "stranger denied: %r" % f1)
    check(GL.pipeline(pid)["cancel_requests"] == 0, "no cancel reached GitLab for the stranger")
    c2 = ph.send("UBOB", "cancel", rid)
    f2 = ph.one(c2, "final")
    check(f2.get("status") == "ok" and "cancel requested" in f2.get("text", ""), "requester cancels: %r" % f2)
    fin = ph.one(rid, "final", 20)
    check(fin.get("status") == "failed" and "canceled" in fin.get("text", ""), "pipeline final canceled: %r" % fin)
    c3 = ph.send("UDAVE", "cancel", "")
    check(ph.one(c3, "final").get("status") == "invalid", "cancel without id: usage")
    report("cancel: requester yes, stranger no; pipelines listing")


def test_hook(ph):
    """Polls every 20 s: only the webhook (relayed as the ingress would) can end it fast."""
    since = GL.get("/_hooks?since=0")["next"]
    rid = ph.send("UALICE", "lb", "weight blue 40 s-success-1500")
    ack = ph.one(rid, "ack")
    pid = (ack.get("pipeline") or {}).get("id")
    end = time.time() + 15
    hook = None
    while time.time() < end and not hook:
        h = GL.get("/_hooks?since=%d" % since)
        for body in h["hooks"]:
            if body.get("object_attributes", {}).get("id") == pid:
                hook = body
        time.sleep(0.05)
    check(hook is not None, "the fake emitted a hook for #%s" % pid)
    if hook:
        t0 = time.time()
        produce(ph.topics["pipeline_events"], str(pid), json.dumps(hook))
        fin = ph.one(rid, "final", 15)
        delay = ph.results.seen_at(lambda r: r.get("request_id") == rid and r.get("step") == "final")
        check(fin.get("status") == "ok", "hook-ended final ok: %r" % fin)
        check(delay is not None and delay - t0 < 2.0, "final within 2 s of the hook (poll 20 s): %s" %
              (delay and round(delay - t0, 3)))
        print("  hook -> final in %.0f ms (polling every 20 s)" % ((delay - t0) * 1000 if delay else -1))
    report("webhook ends the wait before the next poll")


def test_kill9(n=20):
    ph = Phase("kill", lease_ms=1500, poll_min=300, poll_max=1000)
    try:
        a = ph.worker("a")
        rids = [ph.send("UALICE", "lb", "weight blue %d s-success-8000" % i, channel="CK%d" % i)
                for i in range(n)]
        acks = [ph.one(r, "ack", 40) for r in rids]
        check(all(x.get("status") == "ok" for x in acks), "all %d acked before the kill %r" % (
            n, [(x.get("status"), x.get("text")) for x in acks if x.get("status") != "ok"]))
        a.stop(signal.SIGKILL)
        b = ph.worker("b")
        ok = 0
        for r in rids:
            f = ph.one(r, "final", 60)
            ok += f.get("status") == "ok"
        time.sleep(2)
        counts = [len(ph.of(r, "final", 1, 0)) for r in rids]
        check(ok == n, "all %d finished after the kill: %d" % (n, ok))
        check(all(c == 1 for c in counts), "exactly one final each: %r" % counts)
        triggers = sum(len(trigger_requests(r)) for r in rids)
        check(triggers == n, "each triggered once: %d" % triggers)
        print("  kill -9 with %d waiting: %d finals by the second worker, counts %s" %
              (n, ok, sorted(set(counts))))
        b.stop()
    finally:
        ph.close()
    report("kill -9 of the owner of %d waiting pipelines" % n)


def fail_next(status, after_create=False, retry_after=None, delay_ms=None):
    f = {"contains": "/trigger/pipeline", "status": status, "count": 1}
    if delay_ms is not None:
        f["delay_ms"] = delay_ms
    if after_create:
        f["after_create"] = True
    if retry_after is not None:
        f["retry_after"] = retry_after
    GL.post("/_control/fail", f)


def pipelines_of(rid):
    """The pipelines the fake created that carry this request id."""
    return [p for p in GL.get("/_pipelines")
            if ["CHATOPS_REQUEST_ID", rid] in [list(v) for v in p["variables"]]]


def lookups():
    return [q for q in GL.get("/_log") if q["method"] == "GET" and
            re.fullmatch(r"/api/v4/projects/[^/]+/pipelines", q["path"])]


def test_502_after_create(ph):
    """A proxy's 502 after GitLab created the pipeline: one pipeline, found and followed."""
    fail_next(502, after_create=True)
    n_lookups = len(lookups())
    rid = ph.send("UALICE", "lb", "weight blue 30 s-success-1500")
    fin = ph.one(rid, "final", 40)
    mine = pipelines_of(rid)
    check(len(trigger_requests(rid)) == 1, "502 after create: the trigger was sent once, got %d"
          % len(trigger_requests(rid)))
    check(len(mine) == 1, "502 after create: exactly one pipeline, got %d" % len(mine))
    pid = mine[0]["id"] if mine else -1
    check(fin.get("status") == "ok" and "succeeded" in fin.get("text", "") and
          (fin.get("pipeline") or {}).get("id") == pid,
          "the final is the found pipeline's outcome (#%s): %r" % (pid, fin))
    acks = ph.of(rid, "ack", 1, 0)
    check(len(acks) == 1 and (acks[0].get("pipeline") or {}).get("id") == pid,
          "one ack naming #%s: %r" % (pid, acks))
    new = lookups()[n_lookups:]
    q = dict(urllib.parse.parse_qsl(new[0]["query"])) if new else {}
    check(q.get("ref") == "s-success-1500" and q.get("source") == "trigger" and
          q.get("order_by") == "id" and q.get("sort") == "desc" and "updated_after" in q,
          "looked up by ref, source, updated_after, newest first: %r" % q)
    time.sleep(1.5)
    check(len(ph.of(rid, "final", 1, 0)) == 1, "exactly one final")
    check(len(pipelines_of(rid)) == 1, "still one pipeline")
    report("502 after the pipeline was created: no second trigger, the pipeline is followed")


def test_504_after_create_return(ph):
    """trigger_and_return behind a proxy answering 504 after create: one pipeline, its link."""
    fail_next(504, after_create=True)
    rid = ph.send("UBOB", "deploy", "api staging")
    fin = ph.one(rid, "final", 40)
    mine = pipelines_of(rid)
    check(len(trigger_requests(rid)) == 1 and len(mine) == 1,
          "504 after create: one trigger (%d), one pipeline (%d)" % (len(trigger_requests(rid)),
                                                                     len(mine)))
    pid = mine[0]["id"] if mine else -1
    check(fin.get("status") == "ok" and "pipeline #%d created" % pid in fin.get("text", "") and
          (fin.get("pipeline") or {}).get("id") == pid, "final names #%s: %r" % (pid, fin))
    report("504 after the pipeline was created (trigger_and_return): found, not re-sent")


def test_timeout_after_create(ph):
    """GitLab creates the pipeline but answers after the worker's timeout (500 ms here)."""
    fail_next(201, after_create=True, delay_ms=3000)
    rid = ph.send("UBOB", "lb", "weight blue 60 s-success-1500")
    fin = ph.one(rid, "final", 40)
    mine = pipelines_of(rid)
    pid = mine[0]["id"] if mine else -1
    check(len(trigger_requests(rid)) == 1 and len(mine) == 1,
          "timeout after create: one trigger (%d), one pipeline (%d)" %
          (len(trigger_requests(rid)), len(mine)))
    check(fin.get("status") == "ok" and (fin.get("pipeline") or {}).get("id") == pid,
          "the final is #%s's outcome: %r" % (pid, fin))
    report("timeout after the pipeline was created: found, not re-sent")


def test_502_without_create(ph):
    """A 502 before GitLab acted looks the same from here: no second trigger, outcome unknown."""
    fail_next(502)
    rid = ph.send("UALICE", "lb", "weight green 20 s-success-1500")
    fin = ph.one(rid, "final", 40)
    t = fin.get("text", "")
    check(len(trigger_requests(rid)) == 1, "502 without create: the trigger was sent once, got %d"
          % len(trigger_requests(rid)))
    check(len(pipelines_of(rid)) == 0, "no pipeline was created: %r" % pipelines_of(rid))
    check(fin.get("status") == "failed" and "outcome is unknown" in t and rid in t and
          GL.url + "/ops/ansible-lb/-/pipelines" in t,
          "outcome unknown with the request id and the pipelines link: %r" % fin)
    check(not ph.of(rid, "ack", 1, 0), "no ack for a pipeline nobody found")
    report("502 without a pipeline: outcome unknown with link and request id, never a 2nd trigger")


def test_429_retried(ph):
    """A 429 means GitLab did not act: retried, one pipeline."""
    fail_next(429, retry_after="0")
    rid = ph.send("UBOB", "lb", "weight green 40 s-success-1000")
    fin = ph.one(rid, "final", 40)
    check(len(trigger_requests(rid)) == 2, "429 then 201: two sends, got %d"
          % len(trigger_requests(rid)))
    check(len(pipelines_of(rid)) == 1 and fin.get("status") == "ok",
          "one pipeline and its final: %r" % fin)
    report("429 on the trigger is retried")


def test_stop_while_looking(ph):
    """SIGTERM while the worker looks for a lost trigger's pipeline: it exits cleanly and the
    request still ends with one answer and one trigger, also after another worker takes over."""
    fail_next(502)
    n = len(lookups())
    rid = ph.send("UALICE", "lb", "weight blue 50 s-success-1500")
    end = time.time() + 20
    while time.time() < end and len(lookups()) == n:
        time.sleep(0.02)
    check(len(lookups()) > n, "the worker started looking the pipeline up")
    rc = ph.workers[-1].stop()
    check(rc == 0, "worker stopped while looking exits 0, got %r" % rc)
    ph.worker("w2")
    fin = ph.one(rid, "final", 60)
    check(fin.get("status") == "failed" and "unknown" in fin.get("text", ""),
          "the user is told the outcome is unknown: %r" % fin)
    time.sleep(1.5)
    check(len(ph.of(rid, "final", 1, 0)) == 1, "one final")
    check(len(trigger_requests(rid)) == 1 and not pipelines_of(rid),
          "never triggered again: %d trigger(s)" % len(trigger_requests(rid)))
    report("stopped while looking a lost trigger up: clean exit, one answer, one trigger")


def test_reserved_variable_refused():
    """A configured variable named like one the worker sets is a config error at start."""
    ph_cfg = os.path.join(TMP, "reserved.yaml")
    text = config_yaml(topics_for("reserved"), "cqt-plw-reserved-" + RUN, 1500, 200, 1000)
    text = text.replace('        LB_POOL: "{{args.pool}}"\n',
                        '        LB_POOL: "{{args.pool}}"\n        CHAT_INPUT: "{{args.pool}}"\n')
    check("CHAT_INPUT" in text, "config has the reserved variable")
    with open(ph_cfg, "w") as f:
        f.write(text)
    line = text.split("\n").index('        CHAT_INPUT: "{{args.pool}}"') + 1
    env = dict(os.environ, CQT_GL_API=API_TOKEN, CQT_GL_TRIGGER=TRIGGER_TOKEN)
    p = subprocess.Popen([WORKER_BIN, "--config", ph_cfg, "--http-port", "-1"],
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        _, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.terminate()
        _, err = p.communicate()
        err = "(still running after 15 s) " + err
    lines = [x for x in err.splitlines() if x.strip()]
    want = ("chatops-worker: %s:%d:9: commands[\"lb weight\"].pipeline.variables.CHAT_INPUT: reserved "
            "name: the worker sets CHAT_INPUT on every trigger; use another name" % (ph_cfg, line))
    check(p.returncode not in (0, None) and lines == [want],
          "worker refuses the reserved name with one line (rc %r): %r" % (p.returncode, lines))
    report("reserved pipeline variable name refused at start")


def main():
    try:
        ph = Phase("main")
        w = ph.worker("w1")
        rid = test_wait_success_and_variables(ph)
        test_failed(ph)
        test_failed_log_tail_redacted(ph)
        test_manual(ph)
        test_redelivery(ph, rid)
        test_cancel(ph)
        rc = w.stop()
        check(rc == 0, "worker exits 0 on SIGTERM, got %r" % rc)
        ph.close()
        hp = Phase("hook", poll_min=20000, poll_max=20000)
        hp.worker("w1")
        test_hook(hp)
        hp.close()
        amb = Phase("ambig", lease_ms=1500, poll_min=200, poll_max=1000)
        amb.worker("w1")
        test_502_after_create(amb)
        test_504_after_create_return(amb)
        test_timeout_after_create(amb)
        test_502_without_create(amb)
        test_429_retried(amb)
        test_stop_while_looking(amb)
        check(amb.workers[-1].stop() == 0, "worker exits 0 on SIGTERM")
        amb.close()
        test_reserved_variable_refused()
        test_kill9()
    finally:
        GL.stop()
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
