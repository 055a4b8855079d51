#!/usr/bin/env python3
"""Worker benchmark (issue 5): direct commands (`flag get NAME`, one GET each) from 1,000
conversations against a fake API that answers after 50 ms, with one worker and then two
in the same consumer group. Two phases per worker count:

  saturate  N requests put on chatops.requests in one burst: commands/s is
            results / (last result - first request), by Kafka message timestamps.
  steady    --warmup-s of load first (not measured), then requests at a fixed rate
            (--rate, below one worker's capacity): p50/p99/max from the request's
            timestamp on chatops.requests to its final result's timestamp on
            chatops.results.

Every line also reports the host's busy cores and CPU per command (all processes), which
shows when the host, not the worker, is the limit.

  bench_worker.py --build BUILD_DIR --brokers HOST:PORT --redis-port N [--n 20000]
                  [--rate 1500] [--partitions 12] [--delay-ms 50]

Needs BUILD_DIR/worker/chatops-worker and BUILD_DIR/bin/cqt-{produce,consume,
produce_result,fake_api}. The fake API is cqt-fake_api (C, libmicrohttpd suspend/resume):
thousands of calls can wait their 50 ms at once, so it is not the limit.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

CONFIG = """
log: {level: info}
kafka:
  brokers: "%(brokers)s"
  partitions: %(partitions)d
  topics: {requests: "%(req)s", results: "%(res)s", audit: "%(aud)s", dlq: "%(dlq)s"}
  groups: {worker: "%(group)s"}
redis: {host: 127.0.0.1, port: %(redis)d, prefix: "bench-%(run)s:"}
people:
  bench: {gitlab_login: bench, slack: [UBENCH], roles: [sre]}
commands:
  flag get:
    mode: direct
    args: [{name: name, required: true, regex: "[a-z0-9_]+"}]
    http: {method: GET, base_url: "http://127.0.0.1:%(api)d/api/v4", path: "/features/{{args.name}}",
           timeout_ms: 5000, reply_pointer: /state, idempotent: true}
policy: [{name: all, roles: [sre], commands: ["flag get"]}]
"""



def now_rfc3339():
    """Now as the ingress writes received_at: RFC 3339, UTC, milliseconds."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)

def tool(args, name):
    return os.path.join(args.build, "bin", name)


def cpu_seconds(pid):
    """user + system CPU seconds a process has used so far (Linux /proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_busy():
    """(busy, total) CPU seconds of the whole host so far, all cores (Linux /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v) - idle) / hz, sum(v) / hz


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def wait_assigned(logs, partitions, timeout=60):
    """Until the workers' logs together report the last assignment covering every partition."""
    end = time.time() + timeout
    while time.time() < end:
        total = 0
        for path in logs:
            last = 0
            with open(path) as f:
                for line in f:
                    if "kafka consumer: assigned" in line:
                        last = int(line.split("assigned ")[1].split(" ")[0])
                    elif "revoked" in line:
                        last = 0
            total += last
        if total == partitions:
            return True
        time.sleep(0.2)
    return False


def run(args, workers, phase, n, rate=None):
    run_id = uuid.uuid4().hex[:6]
    t = {k: "bench.%s.%s" % (run_id, k) for k in ("req", "res", "aud", "dlq")}
    tmp = tempfile.mkdtemp(prefix="bench-worker-")
    cfg = os.path.join(tmp, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG % dict(t, brokers=args.brokers, redis=args.redis_port, run=run_id,
                              group="bench-" + run_id, api=args.api_port,
                              partitions=args.partitions))
    subprocess.run([tool(args, "cqt-produce_result"), "--brokers", args.brokers, "--ensure",
                    ",".join(t.values()), "--partitions", str(args.partitions)],
                   check=True, capture_output=True)
    def make_lines(count, tag):
        out, ids = [], set()
        for i in range(count):
            conv = "C%04d" % (i % 1000)
            rid = str(uuid.uuid4())
            ids.add(rid)
            env = {"v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "slack",
                   "tenant": "T1", "channel": {"id": conv, "name": conv},
                   "user": {"id": "UBENCH", "name": "bench"}, "command": "flag",
                   "text": "get %s%d" % (tag, i), "reply": {"response_url": "https://x", "chat_id": conv},
                   "dedupe_key": "slack:" + rid, "retry_num": 0}
            out.append("slack:T1:%s\t%s" % (conv, json.dumps(env)))
        return out, ids

    lines, measured = make_lines(n, "f")
    # Steady runs warm up first (--warmup-s at the same rate, not counted): new connections,
    # the broker's first writes to fresh partitions and the JIT would otherwise be measured.
    warm = make_lines(int(rate * args.warmup_s), "w")[0] if rate else []
    logs = [os.path.join(tmp, "w%d.log" % k) for k in range(workers)]
    procs = [subprocess.Popen([os.path.join(args.build, "worker", "chatops-worker"), "--config", cfg,
                               "--http-port", "-1", "--id", "bench-%s-%d" % (run_id, k)],
                              stderr=open(logs[k], "w")) for k in range(workers)]
    if not wait_assigned(logs, args.partitions):
        print("warning: partitions not all assigned after 60 s", file=sys.stderr)
    time.sleep(2)
    env = dict(os.environ)
    if rate:
        env["CQT_PRODUCE_RATE"] = str(rate)
    if warm:
        subprocess.run([tool(args, "cqt-produce"), args.brokers, t["req"], "-"],
                       input="\n".join(warm).encode(), check=True, env=env)
        subprocess.run([tool(args, "cqt-consume"), args.brokers, t["res"], str(len(warm)), "15000"],
                       capture_output=True, check=True)
    # The results consumer runs during the load (its start-up would otherwise land on the
    # last second of the run and be measured as worker latency).
    consumer = subprocess.Popen([tool(args, "cqt-consume"), args.brokers, t["res"],
                                 str(n + len(warm)), "15000"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    cpu0 = [cpu_seconds(p.pid) for p in procs]
    host0 = host_busy()
    t_prod = time.time()
    subprocess.run([tool(args, "cqt-produce"), args.brokers, t["req"], "-"],
                   input="\n".join(lines).encode(), check=True, env=env)
    t_prod = time.time() - t_prod
    res = consumer.communicate()[0].splitlines()
    host1 = host_busy()
    req = subprocess.run([tool(args, "cqt-consume"), args.brokers, t["req"], str(n + len(warm)),
                          "5000"], capture_output=True, text=True).stdout.splitlines()
    cpu = [round(cpu_seconds(p.pid) - c0, 2) for p, c0 in zip(procs, cpu0)]
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    sent = {}
    for l in req:
        m = json.loads(l)
        rid = json.loads(m["value"])["id"]
        if rid in measured:
            sent[rid] = m["ts"]
    lat, first, last, statuses = [], None, None, {}
    for l in res:
        m = json.loads(l)
        r = json.loads(m["value"])
        if r.get("step") != "final" or r.get("request_id") not in sent:
            continue
        statuses[r.get("status")] = statuses.get(r.get("status"), 0) + 1
        ts0 = sent[r["request_id"]]
        lat.append(m["ts"] - ts0)
        first = ts0 if first is None else min(first, ts0)
        last = m["ts"] if last is None else max(last, m["ts"])
    if args.dump:
        with open("%s.%d-%s.tsv" % (args.dump, workers, phase), "w") as f:
            for l in res:
                m = json.loads(l)
                r = json.loads(m["value"])
                if r.get("step") == "final" and r.get("request_id") in sent:
                    f.write("%d\t%d\t%s\n" % (sent[r["request_id"]], m["ts"] - sent[r["request_id"]], m.get("partition", "")))
    lat.sort()
    out = {"workers": workers, "phase": phase, "requests": n, "results": len(lat),
           "statuses": statuses, "produce_s": round(t_prod, 2), "worker_cpu_s": cpu}
    # What the whole host spent (broker, Redis, fake API, tools and workers): when the busy
    # cores reach the core count, more workers cannot add throughput on this host.
    busy, total = host1[0] - host0[0], host1[1] - host0[1]
    out["host_busy_cores"] = round(os.cpu_count() * busy / total, 2) if total else None
    if lat:
        out["host_cpu_ms_per_cmd"] = round(1000.0 * busy / len(lat), 3)
    if rate:
        out["rate"] = rate
    if lat:
        span = max(1, last - first) / 1000.0
        out.update({"cmds_per_s": round(len(lat) / span, 1), "p50_ms": percentile(lat, 50),
                    "p99_ms": percentile(lat, 99), "max_ms": lat[-1]})
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=1500)
    ap.add_argument("--steady-n", type=int, default=15000)
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--delay-ms", type=int, default=50)
    ap.add_argument("--warmup-s", type=float, default=2.0,
                    help="steady runs: seconds of load at --rate before the measured part")
    ap.add_argument("--phases", default="saturate,steady",
                    help="comma-separated subset of saturate,steady")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--dump", help="write PREFIX.WORKERS-PHASE.tsv: request ts, latency ms, partition")
    args = ap.parse_args()
    port_file = os.path.join(tempfile.mkdtemp(prefix="bench-api-"), "port")
    api = subprocess.Popen([tool(args, "cqt-fake_api"), port_file, str(args.delay_ms)],
                           stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            args.api_port = int(f.read())
        phases = args.phases.split(",")
        counts = [int(w) for w in args.workers.split(",")]
        sat = {}
        if "saturate" in phases:
            for w in counts:
                sat[w] = run(args, w, "saturate", args.n)
        if "steady" in phases:
            for w in counts:
                run(args, w, "steady", args.steady_n, args.rate)
        one, two = sat.get(1, {}), sat.get(2, {})
        if one.get("cmds_per_s") and two.get("cmds_per_s"):
            print("two/one = %.2fx (target >= 1.8x)" % (two["cmds_per_s"] / one["cmds_per_s"]))
    finally:
        api.terminate()
        print("fake api: %s" % api.communicate()[0].strip())


if __name__ == "__main__":
    main()
