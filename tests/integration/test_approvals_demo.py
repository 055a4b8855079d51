#!/usr/bin/env python3
"""The approval demo as a user would run it (issue 16): scripts/run.sh --detach starts the stack
with examples/ops.yaml (private topics, groups and Redis prefix, on the fixture Kafka/Redis) and
the demo fakes; carol (release) sends `/ops deploy web production` with `chatopsctl send`, which
asks for an approval and shows the request id; bob (sre) approves with `chatopsctl approve REQ`
(a signed block_actions, as Slack posts it); carol's `send` then shows the pipeline link.
carol cannot approve her own request.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import cqt  # noqa: E402
from cqt import check, stack_file  # noqa: E402
from test_e2e import free_base  # noqa: E402

cqt.VERBOSE = True
RUN = os.path.join(SRC, "scripts", "run.sh")
CTL = os.path.join(cqt.BUILD, "tools", "chatopsctl")
UNIQ = "%d%04d" % (os.getpid(), int(time.time() * 1000) % 10000)


def private_config(tmp):
    with open(os.path.join(SRC, "examples", "ops.yaml")) as f:
        text = f.read()
    for t in ("requests", "results", "audit", "pipeline-events", "dlq"):
        text = text.replace("chatops.%s\n" % t, "apd%s.%s\n" % (UNIQ, t))
    text = text.replace("worker: chatops-worker", "worker: apd%s-worker" % UNIQ)
    text = text.replace("notifier: chatops-notifier", "notifier: apd%s-notifier" % UNIQ)
    text = text.replace('prefix: "chatops:"', 'prefix: "apd%s:"' % UNIQ)
    path = os.path.join(tmp, "demo.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    with tempfile.TemporaryDirectory(prefix="cq-apdemo-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "CHATOPS_CONFIG"}
        env.update(CQ_RUN_DIR=os.path.join(tmp, "run"), CQ_BUILD_DIR=cqt.BUILD,
                   CQ_DEMO_PORT_BASE=str(free_base()),
                   CQ_KAFKA_BROKERS=stack_file("kafka/bootstrap"),
                   CQ_REDIS_PORT=stack_file("redis/port"), CQ_REDIS_HOST="127.0.0.1")
        env.pop("CQ_INGRESS_PORT", None)
        p = subprocess.run([RUN, "--config", private_config(tmp), "--detach"], env=env,
                           capture_output=True, text=True, timeout=540)
        try:
            if not check(p.returncode == 0, "run.sh --detach starts the stack\n%s" % p.stderr[-2000:]):
                return cqt.summary()
            cenv = {k: v for k, v in env.items() if not k.startswith("CQ_") or k == "CQ_RUN_DIR"}
            carol = subprocess.Popen([CTL, "send", "--as", "carol", "--channel", "ops-prod",
                                      "--timeout", "60", "/ops deploy web production"],
                                     env=cenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
            # the request id: in the ingress's answer ("req 1a2b3c4d") and, whole, in the
            # approval request; read it from the audit log of the worker through chatopsctl
            rid = None
            end = time.time() + 30
            while not rid and time.time() < end:
                a = subprocess.run([CTL, "audit", "list", "--max", "50"], env=cenv,
                                   capture_output=True, text=True, timeout=60)
                m = re.findall(r"decision  ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                               r"[0-9a-f]{12})  carol@slack  deploy ", a.stdout)
                rid = m[-1] if m else None
                if not rid:
                    time.sleep(0.5)
            check(rid is not None, "the deploy request was decided (audit list)")
            own = subprocess.run([CTL, "approve", rid or "0", "--as", "carol", "--channel",
                                  "ops-prod"], env=cenv, capture_output=True, text=True,
                                 timeout=60)
            check("cannot approve your own" in own.stdout,
                  "carol cannot approve her own request:\n%s%s" % (own.stdout, own.stderr))
            bob = subprocess.run([CTL, "approve", rid or "0", "--as", "bob", "--channel",
                                  "ops-prod"], env=cenv, capture_output=True, text=True,
                                 timeout=60)
            check(bob.returncode == 0 and "You approved" in bob.stdout,
                  "bob approves from chatopsctl:\n%s%s" % (bob.stdout, bob.stderr))
            out, err = carol.communicate(timeout=90)
            check("needs the approval of 1 person (role sre)" in out and "approve %s" % rid in out,
                  "carol is told it needs an approval, with the request id:\n%s" % out)
            check("approved by bob" in out, "carol sees bob's approval")
            check(carol.returncode == 0 and "/ops/deploy/-/pipelines/" in out,
                  "then the pipeline link (%s)\n%s" % (err.strip(), out))
            # the fake GitLab's record of the trigger: the approvers as a pipeline variable
            st, _, body = cqt.http("GET", "http://127.0.0.1:%s/_log" % env["CQ_DEMO_PORT_BASE"])
            trig = [e for e in json.loads(body or b"[]") if e.get("path", "").endswith(
                "/trigger/pipeline") and ["variables[CHATOPS_REQUEST_ID]", rid] in e.get("form", [])]
            check(len(trig) == 1 and ["variables[CHATOPS_APPROVERS]", "bob"] in trig[0]["form"],
                  "one trigger, with CHATOPS_APPROVERS=bob: %s" % trig)
        finally:
            subprocess.run([RUN, "--stop"], env=env, capture_output=True, timeout=180)
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
