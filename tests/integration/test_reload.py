#!/usr/bin/env python3
"""Live config reload (issue 14) with the real binaries, the real Kafka and Redis fixtures
and the fake GitLab API: SIGHUP makes the worker decide the next command with the new
policy and send the rotated file: secret, without a restart; keys that need a restart are
named in one warning line and keep their value; a broken file changes nothing, logs the
file:line error and counts chatops_config_reload_failures_total.
"""
import json
import os
import re
import signal
import sys
import tempfile
import time
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
import cqt  # noqa: E402
from cqt import Tail, check, now_rfc3339, report, stack_file  # noqa: E402
from fake_api import FakeAPI  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TOPICS = {k: "cqt.reload.%s.%s" % (RUN, k) for k in ("requests", "results", "audit", "dlq")}
TMP = tempfile.mkdtemp(prefix="cqt-reload-")
API = FakeAPI().start()
BASE = "http://127.0.0.1:%d/api/v4" % API.port


def worker_yaml(flag_roles, partitions=3, extra=""):
    return """
kafka:
  brokers: "%(brokers)s"
  partitions: %(partitions)d
  topics: {requests: "%(requests)s", results: "%(results)s", audit: "%(audit)s", dlq: "%(dlq)s"}
  groups: {worker: "cqt-reload-%(run)s"}
redis: {host: 127.0.0.1, port: %(redis)d, prefix: "cqt-reload-%(run)s:"}
secrets:
  gitlab_token: "file:token.txt"
people:
  alice: {gitlab_login: alice.gl, slack: [UALICE], roles: [sre]}
  bob: {gitlab_login: bob.gl, slack: [UBOB], roles: [dev]}
channels:
  ops: {platform: slack, id: COPS}
commands:
  flag get:
    description: Show a feature flag
    mode: direct
    args:
      - {name: name, required: true, regex: "[a-z][a-z0-9_]*"}
    http:
      method: GET
      base_url: "%(base)s"
      path: "/features/{{args.name}}"
      headers:
        PRIVATE-TOKEN: "{{secrets.gitlab_token}}"
      timeout_ms: 3000
      reply_template: "{{response.name}} is {{response.state}}"
      idempotent: true
policy:
  - {name: flags-read, roles: [%(roles)s], commands: [flag get]}
%(extra)s""" % {"brokers": BROKERS, "redis": REDIS_PORT, "run": RUN, "base": BASE,
                "partitions": partitions, "roles": ", ".join(flag_roles), "extra": extra,
                **TOPICS}


def write(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # as an editor or a ConfigMap update does: never half a file


def send(user, text):
    rid = str(uuid.uuid4())
    cqt.produce(BROKERS, TOPICS["requests"], "slack:T1:COPS", json.dumps({
        "v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "slack",
        "tenant": "T1", "channel": {"id": "COPS", "name": "ops"},
        "user": {"id": user, "name": user.lower()}, "command": "flag", "text": text,
        "reply": {"response_url": "https://hooks.example/x", "chat_id": "COPS"},
        "dedupe_key": "slack:" + rid, "retry_num": 0}))
    return rid


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^%s(?:\{\})? (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def wait_log(svc, pattern, n=1, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if len(re.findall(pattern, svc.logs())) >= n:
            return True
        time.sleep(0.05)
    return False


def result_of(results, rid, timeout=30):
    got = results.wait(lambda m: m.get("request_id") == rid or m.get("id") == rid, timeout=timeout)
    return got[-1] if got else None


def worker_reload():
    cfg = os.path.join(TMP, "worker.yaml")
    token = os.path.join(TMP, "token.txt")
    write(token, "tok-one-%s\n" % RUN)
    write(cfg, worker_yaml(["sre"]))
    for t in TOPICS.values():
        cqt.produce(BROKERS, t, "init", '{"init":true}')  # creates the topics
    results = Tail(BROKERS, TOPICS["results"])
    w = cqt.Service("worker", cfg, "worker", TMP, args=["--id", "reload-" + RUN])
    try:
        check(w.wait_ready(), "worker ready")
        port = w.admin_port()

        r = result_of(results, send("UBOB", "get before"))
        check(r is not None and r.get("status") == "denied",
              "before the reload bob (dev) is denied: %s" % (r and r.get("status")))

        # The policy lets dev read flags now; the token file was rotated; two keys that
        # need a restart changed as well.
        write(token, "tok-two-%s\n" % RUN)
        write(cfg, worker_yaml(["sre", "dev"], partitions=5,
                               extra="worker: {lease_ms: 20000, max_request_age_s: 600}\n"))
        w.kill(signal.SIGHUP)
        check(wait_log(w, r"config reloaded from"), "the worker logs the reload")
        check(w.alive(), "SIGHUP does not end the worker")
        warn = [ln for ln in w.logs().splitlines() if "need a restart" in ln]
        check(len(warn) == 1, "one warning line names the restart-only keys: %r" % warn)
        check(warn and "kafka.partitions" in warn[0] and "worker.lease_ms" in warn[0],
              "the warning names kafka.partitions and worker.lease_ms: %r" % warn)
        check(warn and "max_request_age_s" not in warn[0] and "policy" not in warn[0],
              "reloadable keys are not in the warning")
        check(warn and "5" not in warn[0].split("keep their current value:")[-1].replace(
            "kafka.partitions", ""), "the warning names keys, not values")

        API.reset()
        r = result_of(results, send("UBOB", "get after"))
        check(r is not None and r.get("status") == "ok",
              "after the reload bob's next command runs without a restart: %s" % r)
        calls = API.requests("/api/v4/features/after")
        check(len(calls) == 1 and calls[0]["headers"].get("PRIVATE-TOKEN") == "tok-two-" + RUN,
              "the rotated file: secret is sent after the reload")
        check(metric(port, "chatops_config_reloads_total") == 1, "chatops_config_reloads_total 1")
        check(metric(port, "chatops_config_reload_failures_total") in (0, None),
              "no reload failure counted yet")

        # A broken file (bob denied again plus an out-of-range limit) changes nothing.
        broken = worker_yaml(["sre"]) + "limits:\n  max_args: -5\n"
        write(cfg, broken)
        line = broken.splitlines().index("  max_args: -5") + 1
        w.kill(signal.SIGHUP)
        check(wait_log(w, r"config reload failed"), "the failed reload is logged")
        failed = [ln for ln in w.logs().splitlines() if "config reload failed" in ln]
        check(failed and ("worker.yaml:%d:" % line) in failed[-1] and "max_args" in failed[-1],
              "the error names file:line and the key: %r" % failed[-1:])
        check(metric(port, "chatops_config_reload_failures_total") == 1,
              "chatops_config_reload_failures_total counts it")
        check(metric(port, "chatops_config_reloads_total") == 2, "chatops_config_reloads_total 2")
        API.reset()
        r = result_of(results, send("UBOB", "get still"))
        check(r is not None and r.get("status") == "ok",
              "after the failed reload the previous config stays (bob still allowed): %s" % r)
        calls = API.requests("/api/v4/features/still")
        check(len(calls) == 1 and calls[0]["headers"].get("PRIVATE-TOKEN") == "tok-two-" + RUN,
              "the secret of the config in use stays")
        check("tok-two" not in w.logs() and "tok-one" not in w.logs(),
              "secrets never appear in the log")
        check(w.stop() == 0, "the worker drains and exits 0 after reloads")
    finally:
        if w.alive():
            w.stop()
        results.stop()


worker_reload()
API.stop()
report("reload")
sys.exit(cqt.summary(TMP))
