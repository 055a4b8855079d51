#!/usr/bin/env python3
"""bench/pipelines: one chatops-worker tracking N concurrent trigger_and_wait pipelines on
the scripted fake GitLab (tests/fakes/fake_gitlab.py). Pipelines end at random within
[--end-lo, --end-hi] ms; the hooks of even-numbered pipelines are relayed to the
pipeline-events topic (as the ingress would), odd ones end by polling. Prints one JSON
line: finals (and duplicates), worker CPU % over the tracking window, peak RSS (VmHWM),
and end -> final delay p50/p99 for webhook-ended and poll-ended pipelines. See README.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

CONFIG = """
log: {level: info}
kafka:
  brokers: "%(brokers)s"
  partitions: %(partitions)d
  topics: {requests: "%(req)s", results: "%(res)s", audit: "%(aud)s", dlq: "%(dlq)s",
           pipeline_events: "%(hooks)s"}
  groups: {worker: "%(group)s"}
redis: {host: 127.0.0.1, port: %(redis)d, prefix: "bench-%(run)s:"}
worker: {lease_ms: 15000, poll_min_ms: %(pmin)d, poll_max_ms: %(pmax)d, max_inflight: 20000}
gitlab: {base_url: "%(gl)s", api_token: "${BENCH_GL_API}"}
secrets: {lb_trigger: "${BENCH_GL_TRIGGER}"}
people:
  bench: {gitlab_login: bench.gl, slack: [UBENCH], roles: [sre]}
commands:
  lb weight:
    mode: trigger_and_wait
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
      - {name: script, required: true, regex: "s-[a-z0-9-]+"}
    pipeline:
      project: ops%%2Fansible-lb
      ref: "{{args.script}}"
      trigger_token: lb_trigger
      variables: {LB_POOL: "{{args.pool}}", LB_PERCENT: "{{args.percent}}"}
      timeout_s: 900
      progress_interval_s: 30
policy: [{name: all, roles: [sre], commands: ["lb weight"]}]
"""



def now_rfc3339():
    """Now as the ingress writes received_at: RFC 3339, UTC, milliseconds."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)

def tool(args, name):
    return os.path.join(args.build, "bin", name)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def pct(vals, p):
    if not vals:
        return None
    vals = sorted(vals)
    return vals[max(0, min(len(vals) - 1, int(round(p / 100.0 * len(vals))) - 1))]


class Consumer:
    """cqt-consume in the background; every message (ts, value as JSON)."""

    def __init__(self, args, topic):
        self.msgs = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([tool(args, "cqt-consume"), args.brokers, topic, "0",
                                      "3600000"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                m = json.loads(line)
                m["json"] = json.loads(m["value"])
            except ValueError:
                continue
            with self.lock:
                self.msgs.append(m)

    def snapshot(self):
        with self.lock:
            return list(self.msgs)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def relay_hooks(args, gl_url, topic, stop):
    """Every 100 ms: hooks of ended even-numbered pipelines -> the pipeline-events topic."""
    since, relayed = 0, 0
    while not stop.is_set():
        h = get("%s/_hooks?since=%d" % (gl_url, since))
        since = h["next"]
        lines = ["%d\t%s" % (b["object_attributes"]["id"], json.dumps(b)) for b in h["hooks"]
                 if b["object_attributes"]["id"] % 2 == 0]
        if lines:
            subprocess.run([tool(args, "cqt-produce"), args.brokers, topic, "-"],
                           input="\n".join(lines).encode(), check=True, capture_output=True)
            relayed += len(lines)
        time.sleep(0.1)
    print("relayed %d hooks" % relayed, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--end-lo", type=int, default=60000)
    ap.add_argument("--end-hi", type=int, default=180000)
    ap.add_argument("--poll-min", type=int, default=15000)
    ap.add_argument("--poll-max", type=int, default=60000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rate", type=int, default=250, help="requests/s produced (0 = burst)")
    args = ap.parse_args()

    run = uuid.uuid4().hex[:6]
    t = {k: "bench.pl.%s.%s" % (run, k) for k in ("req", "res", "aud", "dlq", "hooks")}
    tmp = tempfile.mkdtemp(prefix="bench-pipelines-")
    gl = subprocess.Popen([sys.executable, os.path.join(SRC, "tests", "fakes", "fake_gitlab.py"), "0"],
                          stdout=subprocess.PIPE, text=True)
    gl_url = "http://127.0.0.1:%d" % int(gl.stdout.readline())
    cfg = os.path.join(tmp, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG % dict(t, brokers=args.brokers, redis=args.redis_port, run=run,
                              group="bench-pl-" + run, partitions=args.partitions, gl=gl_url,
                              pmin=args.poll_min, pmax=args.poll_max))
    subprocess.run([tool(args, "cqt-produce_result"), "--brokers", args.brokers, "--ensure",
                    ",".join(t.values()), "--partitions", str(args.partitions)],
                   check=True, capture_output=True)
    results = Consumer(args, t["res"])
    hooks = Consumer(args, t["hooks"])
    log = os.path.join(tmp, "worker.log")
    w = subprocess.Popen([os.path.join(args.build, "worker", "chatops-worker"), "--config", cfg,
                          "--http-port", "-1", "--id", "bench-pl-" + run], stderr=open(log, "w"),
                         env=dict(os.environ, BENCH_GL_API="api-secret",
                                  BENCH_GL_TRIGGER="trig-secret"))
    time.sleep(3)
    ref = "s-rand-%d-%d" % (args.end_lo, args.end_hi)
    lines = []
    for i in range(args.n):
        conv = "C%05d" % i
        rid = str(uuid.uuid4())
        env = {"v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "slack",
               "tenant": "T1", "channel": {"id": conv, "name": conv},
               "user": {"id": "UBENCH", "name": "bench"}, "command": "lb",
               "text": "weight blue %d %s" % (i % 101, ref),
               "reply": {"response_url": "https://x", "chat_id": conv},
               "dedupe_key": "slack:" + rid, "retry_num": 0}
        lines.append("slack:T1:%s\t%s" % (conv, json.dumps(env)))
    stop = threading.Event()
    relay = threading.Thread(target=relay_hooks, args=(args, gl_url, t["hooks"], stop))
    relay.start()
    t0 = time.time()
    cpu0 = cpu_seconds(w.pid)
    penv = dict(os.environ)
    if args.rate > 0:
        penv["CQT_PRODUCE_RATE"] = str(args.rate)
    subprocess.run([tool(args, "cqt-produce"), args.brokers, t["req"], "-"],
                   input="\n".join(lines).encode(), check=True, env=penv)
    deadline = t0 + args.end_hi / 1000.0 + args.poll_max / 1000.0 + 120
    acked_at = None
    while time.time() < deadline:
        msgs = results.snapshot()
        finals = {m["json"]["request_id"] for m in msgs if m["json"].get("step") == "final"}
        acks = {m["json"]["request_id"] for m in msgs if m["json"].get("step") == "ack"}
        if acked_at is None and len(acks) >= args.n:
            acked_at = time.time() - t0
        if len(finals) >= args.n:
            break
        time.sleep(1)
    wall = time.time() - t0
    cpu = cpu_seconds(w.pid) - cpu0
    hwm = vm_hwm_mb(w.pid)
    stop.set()
    relay.join()
    time.sleep(2)
    w.terminate()
    w.wait()
    pipes = {p["id"]: p for p in get(gl_url + "/_pipelines")}
    gl.terminate()
    results.stop()
    hooks.stop()

    hook_ts = {}
    for m in hooks.snapshot():
        pid = m["json"]["object_attributes"]["id"]
        hook_ts.setdefault(pid, m["ts"])
    finals_by_rid, statuses = {}, {}
    for m in results.snapshot():
        r = m["json"]
        if r.get("step") != "final":
            continue
        finals_by_rid.setdefault(r["request_id"], []).append((m["ts"], r))
    d_hook, d_hook_relay, d_poll = [], [], []
    dups = 0
    for rid, fl in finals_by_rid.items():
        if len({json.dumps(r, sort_keys=True) for _, r in fl}) > 1:
            dups += 1
        ts, r = min(fl, key=lambda x: x[0])
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        pid = (r.get("pipeline") or {}).get("id")
        p = pipes.get(pid)
        if not p or not p.get("ended_at"):
            continue
        if pid % 2 == 0 and pid in hook_ts:
            d_hook.append(ts - p["ended_at"])
            d_hook_relay.append(ts - hook_ts[pid])
        else:
            d_poll.append(ts - p["ended_at"])
    out = {"n": args.n, "finals": len(finals_by_rid), "different_duplicate_finals": dups,
           "statuses": statuses, "all_acked_s": acked_at and round(acked_at, 1),
           "wall_s": round(wall, 1), "worker_cpu_s": round(cpu, 1),
           "worker_cpu_pct": round(100.0 * cpu / wall, 1), "worker_peak_rss_mb": hwm and round(hwm, 1),
           "hook_ended": len(d_hook), "hook_end_to_final_ms": {"p50": pct(d_hook, 50), "p99": pct(d_hook, 99)},
           "hook_event_to_final_ms": {"p50": pct(d_hook_relay, 50), "p99": pct(d_hook_relay, 99)},
           "poll_ended": len(d_poll), "poll_end_to_final_ms": {"p50": pct(d_poll, 50), "p99": pct(d_poll, 99)},
           "rate": args.rate, "poll_min_ms": args.poll_min, "poll_max_ms": args.poll_max, "worker_log": log}
    print(json.dumps(out), flush=True)
    return 0 if len(finals_by_rid) == args.n and dups == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
