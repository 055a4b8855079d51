#!/usr/bin/env python3
"""Worker benchmark (issue 5): direct commands from 1,000 conversations against a fake API
that answers after 50 ms; reports commands/s and p50/p99 from chatops.requests to
chatops.results (Kafka message timestamps), for one worker and then two.

  bench_worker.py --build BUILD_DIR --brokers HOST:PORT --redis-port N [--n 20000]

Needs chatops-worker, cqt-produce and cqt-consume in BUILD_DIR/bin.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402

CONFIG = """
kafka: {brokers: "%(brokers)s", partitions: 12, topic_requests: "%(req)s", topic_results: "%(res)s",
        topic_audit: "%(aud)s", topic_dlq: "%(dlq)s", worker_group: "%(group)s"}
redis: {host: 127.0.0.1, port: %(redis)d, prefix: "bench-%(run)s:"}
people: [{name: bench, gitlab_login: bench, slack_ids: [UBENCH], roles: [sre]}]
commands:
  - name: flag get
    mode: direct
    args: [{name: name, required: true, regex: "[a-z0-9_]+"}]
    http: {method: GET, base_url: "http://127.0.0.1:%(api)d/api/v4", path: "/features/{{args.name}}",
           timeout_ms: 5000, reply_pointer: /state, idempotent: true}
rules: [{name: all, roles: [sre], commands: ["*"]}]
"""


def run(args, workers):
    run_id = uuid.uuid4().hex[:6]
    t = {k: "bench.%s.%s" % (run_id, k) for k in ("req", "res", "aud", "dlq")}
    tmp = tempfile.mkdtemp(prefix="bench-worker-")
    cfg = os.path.join(tmp, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG % dict(t, brokers=args.brokers, redis=args.redis_port, run=run_id,
                              group="bench-" + run_id, api=args.api_port))
    binp = os.path.join(args.build, "bin")
    subprocess.run([os.path.join(binp, "chatopsctl"), "topics", "ensure", "--config", cfg],
                   capture_output=True)
    lines = []
    for i in range(args.n):
        conv = "C%04d" % (i % 1000)
        rid = str(uuid.uuid4())
        env = {"v": 1, "id": rid, "received_at": "2026-01-01T00:00:00Z", "platform": "slack",
               "tenant": "T1", "channel": {"id": conv, "name": conv}, "user": {"id": "UBENCH"},
               "command": "flag", "text": "get f%d" % i, "reply": {"response_url": "https://x"},
               "dedupe_key": "slack:" + rid}
        lines.append("slack:T1:%s\t%s" % (conv, json.dumps(env)))
    procs = [subprocess.Popen([os.path.join(binp, "chatops-worker"), "--config", cfg,
                               "--http-port", "-1"], stderr=open(os.path.join(tmp, "w%d.log" % k), "w"))
             for k in range(workers)]
    time.sleep(8)  # group join
    subprocess.run([os.path.join(binp, "cqt-produce"), args.brokers, t["req"], "-"],
                   input="\n".join(lines).encode(), check=True)
    res = subprocess.run([os.path.join(binp, "cqt-consume"), args.brokers, t["res"], str(args.n), "10000"],
                         capture_output=True, text=True).stdout.splitlines()
    req = subprocess.run([os.path.join(binp, "cqt-consume"), args.brokers, t["req"], str(args.n), "5000"],
                         capture_output=True, text=True).stdout.splitlines()
    for p in procs:
        p.terminate()
        p.wait()
    sent = {json.loads(json.loads(l)["value"])["id"]: json.loads(l)["ts"] for l in req}
    lat, first, last = [], None, None
    for l in res:
        m = json.loads(l)
        rid = json.loads(m["value"])["request_id"]
        if rid in sent:
            lat.append(m["ts"] - sent[rid])
            first = min(first or sent[rid], sent[rid])
            last = max(last or m["ts"], m["ts"])
    lat.sort()
    if not lat:
        return {"workers": workers, "results": 0}
    return {"workers": workers, "results": len(lat), "cmds_per_s": round(len(lat) / ((last - first) / 1000.0), 1),
            "p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99) - 1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    api = FakeAPI().start()
    api.set_rules([{"prefix": "/api/v4/features/", "delay_ms": 50, "status": 200, "body": {"state": "on"}}])
    args.api_port = api.port
    one = run(args, 1)
    two = run(args, 2)
    print(json.dumps({"one": one, "two": two}))
    if one.get("cmds_per_s") and two.get("cmds_per_s"):
        print("two/one = %.2fx (target >= 1.8x)" % (two["cmds_per_s"] / one["cmds_per_s"]))
    api.stop()


if __name__ == "__main__":
    main()
