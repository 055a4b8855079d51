#!/usr/bin/env python3
"""Live config reload (issue 14) with the real binaries, the real Kafka and Redis fixtures
and the fake GitLab API: SIGHUP makes the worker decide the next command with the new
policy and send the rotated file: secret, without a restart; keys that need a restart are
named in one warning line and keep their value; a broken file changes nothing, logs the
file:line error and counts chatops_config_reload_failures_total. The ingress (MHD thread
pool) verifies the next request with a rotated Slack signing secret, and reloads under load
answer every request; the notifier reloads too.
"""
import hashlib
import hmac
import http.client
import json
import os
import threading
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
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


def worker_yaml(flag_roles, partitions=3, extra="", cmd="flag get"):
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
  %(cmd)s:
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
  - {name: flags-read, roles: [%(roles)s], commands: ["%(cmd)s"]}
%(extra)s""" % {"brokers": BROKERS, "redis": REDIS_PORT, "run": RUN, "base": BASE,
                "partitions": partitions, "roles": ", ".join(flag_roles), "extra": extra, "cmd": cmd,
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

        # A job in flight across a reload that removes its command finishes with the config
        # it started with (its reference keeps that config; ASan would see a use after free).
        write(cfg, worker_yaml(["sre", "dev"], partitions=5,
                               extra="worker: {lease_ms: 20000, max_request_age_s: 600}\n"))
        w.kill(signal.SIGHUP)
        check(wait_log(w, r"config reloaded from", n=2), "reloaded the good file again")
        API.reset()
        API.set_rules([{"method": "GET", "prefix": "/api/v4/features/slow", "delay_ms": 2500,
                        "status": 200, "body": {"name": "slow", "state": "on"}}])
        rid = send("UBOB", "get slow")
        end = time.time() + 20
        while not API.requests("/api/v4/features/slow") and time.time() < end:
            time.sleep(0.05)
        check(bool(API.requests("/api/v4/features/slow")), "the slow call is in flight")
        write(cfg, worker_yaml(["sre", "dev"], partitions=5, cmd="flag show",
                               extra="worker: {lease_ms: 20000, max_request_age_s: 600}\n"))
        w.kill(signal.SIGHUP)
        check(wait_log(w, r"config reloaded from", n=3), "reloaded while the call is in flight")
        r = result_of(results, rid)
        check(r is not None and r.get("status") == "ok" and "slow is on" in (r.get("text") or ""),
              "the job in flight finished with its own config's reply template: %s" % r)
        r = result_of(results, send("UBOB", "get gone"))
        check(r is not None and r.get("status") != "ok",
              "the next request sees the new commands (flag get is gone): %s" % (r and r.get("status")))
        API.set_rules([])
        check("tok-two" not in w.logs() and "tok-one" not in w.logs(),
              "secrets never appear in the log")
        check(w.stop() == 0, "the worker drains and exits 0 after reloads")
    finally:
        if w.alive():
            w.stop()
        results.stop()


def slack_post(port, secret, text="flag get x"):
    body = urllib.parse.urlencode({
        "team_id": "T0", "channel_id": "COPS", "channel_name": "ops", "user_id": "UALICE",
        "user_name": "alice", "command": "/ops", "text": text,
        "response_url": "https://hooks.slack.com/commands/T0/1/abc",
        "trigger_id": "trig." + uuid.uuid4().hex}).encode()
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body,
                           hashlib.sha256).hexdigest()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/slack/commands", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def ingress_yaml(max_text=200):
    return """
kafka:
  brokers: "%(brokers)s"
  topics: {requests: "%(requests)s"}
ingress: {listen: 127.0.0.1, threads: 4}
limits: {max_text: %(max_text)d}
slack: {enabled: true, signing_secret: "file:slack.txt"}
""" % {"brokers": BROKERS, "max_text": max_text, **TOPICS}


def accepted(answer):
    status, body = answer
    return status == 200 and "not verified" not in body.lower() and "signature" not in body.lower()


def ingress_reload():
    cfg = os.path.join(TMP, "ingress.yaml")
    secret = os.path.join(TMP, "slack.txt")
    one, two = "slack-one-" + RUN, "slack-two-" + RUN
    write(secret, one + "\n")
    write(cfg, ingress_yaml())
    ing = cqt.Service("ingress", cfg, "ingress", TMP)
    try:
        check(ing.wait_ready(), "ingress ready")
        a = slack_post(ing.port, one)
        check(accepted(a), "the first signing secret is accepted: %r" % (a,))
        b = slack_post(ing.port, two)
        check(b[0] == 401, "a request signed with the next secret is refused before: %r" % (b,))

        write(secret, two + "\n")  # Kubernetes rotates the mounted secret file
        ing.kill(signal.SIGHUP)
        check(wait_log(ing, r"config reloaded from"), "the ingress logs the reload")
        a = slack_post(ing.port, two)
        check(accepted(a), "after SIGHUP the rotated signing secret is accepted: %r" % (a,))
        b = slack_post(ing.port, one)
        check(b[0] == 401, "after SIGHUP the old signing secret is refused: %r" % (b,))

        # Reloads while requests run on the MHD pool threads: every request is answered.
        answers, stop = [], threading.Event()

        def client():
            while not stop.is_set():
                try:
                    answers.append(slack_post(ing.port, two)[0])
                except OSError as e:
                    answers.append(str(e))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(20):
            write(cfg, ingress_yaml(max_text=200 + i))
            ing.kill(signal.SIGHUP)
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        check(wait_log(ing, r"config reloaded from", n=21), "every SIGHUP reloaded")
        check(len(answers) > 20 and all(x == 200 for x in answers),
              "requests during reloads are all answered 200 (%d, others: %r)" % (
                  len(answers), [x for x in answers if x != 200][:5]))
        check(ing.alive(), "the ingress is alive after 21 reloads")
        port = ing.admin_port()
        check(metric(port, "chatops_config_reloads_total") == 21, "chatops_config_reloads_total 21")
        check(one not in ing.logs() and two not in ing.logs(), "secrets never appear in the log")
        check(ing.stop() == 0, "the ingress drains and exits 0")
    finally:
        if ing.alive():
            ing.stop()


def notifier_reload():
    cfg = os.path.join(TMP, "notifier.yaml")
    write(cfg, worker_yaml(["sre"]))
    n = cqt.Service("notifier", cfg, "notifier", TMP)
    try:
        check(n.wait_ready(), "notifier ready")
        port = n.admin_port()
        write(cfg, worker_yaml(["sre"]) + "notifier: {max_attempts: 3}\n")
        # chatopsctl reload: finds the services started with this file through /proc
        ctl = os.path.join(cqt.BUILD, "tools", "chatopsctl")
        p = subprocess.run([ctl, "--config", cfg, "reload"], capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 0 and ("chatops-notifier (pid %d)" % n.pid) in p.stdout
              and p.stdout.count("SIGHUP sent") == 1,
              "chatopsctl reload signals the notifier started with that file, only it: %r"
              % (p.stdout + p.stderr))
        check(wait_log(n, r"config reloaded from"), "the notifier logs the reload")
        other = os.path.join(TMP, "unused.yaml")
        write(other, worker_yaml(["sre"]))
        p = subprocess.run([ctl, "--config", other, "reload"], capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 1 and "no chatops service" in p.stderr,
              "chatopsctl reload with a file no service uses: exit 1 (%r)" % p.stderr)
        write(cfg, "kafka: [broken\n")
        p = subprocess.run([ctl, "--config", cfg, "reload"], capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 1 and "notifier.yaml:" in p.stderr and "SIGHUP" not in p.stdout,
              "chatopsctl reload refuses a broken file before signalling: %r" % p.stderr)
        n.kill(signal.SIGHUP)
        check(wait_log(n, r"config reload failed.*notifier.yaml:\d+"),
              "the notifier logs the failed reload with file:line")
        check(metric(port, "chatops_config_reload_failures_total") == 1,
              "the notifier counts the failure")
        check(n.alive(), "the notifier runs on with its config")
        check(n.stop() == 0, "the notifier drains and exits 0")
    finally:
        if n.alive():
            n.stop()


worker_reload()
report("reload: worker")
ingress_reload()
report("reload: ingress")
notifier_reload()
report("reload: notifier")
API.stop()
sys.exit(cqt.summary(TMP))
