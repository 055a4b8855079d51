#!/usr/bin/env python3
"""Per-command costs of the worker and the notifier at a fixed offered rate, counted rather than
timed (issue 13): the stack of bench_e2e.py (its Stack and run_load with cq-e2e-load) with one
ingress, --workers workers and one notifier, against a running broker and Redis; after
--prewarm s of load, --seconds s at RATE commands/s are measured. Per command sent, for each
worker and notifier: CPU us (/proc/PID/stat), voluntary and involuntary context switches
(summed over /proc/PID/task/*), and with perf (unless --noperf) all syscalls and the chief ones
by name, for the process and per thread (perf stat --per-thread with syscall tracepoints;
perf's own overhead inflates CPU, so compare CPU with --noperf). Prints one JSON object.

  bench/e2e/costs.py BUILD BROKERS REDIS_PORT RATE [--seconds 10] [--noperf] [--cap 0.05]
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_e2e as b  # noqa: E402

SYSCALLS = ("epoll_ctl", "epoll_wait", "epoll_pwait", "write", "read", "futex", "poll", "ppoll",
            "recvmsg", "sendmsg", "sendto", "recvfrom", "ioctl")


def ctxsw(pid):
    v = n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        v += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        n += int(line.split()[1])
        except OSError:
            pass
    return v, n


def perf_counts(path, sent):
    total, byth = collections.Counter(), collections.defaultdict(collections.Counter)
    with open(path) as f:
        for line in f:
            x = line.strip().split(",")
            if len(x) > 4 and x[1] and x[1][0].isdigit():
                name = x[3].replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter",
                                                                       "syscalls")
                total[name] += float(x[1])
                byth[x[0]][name] += float(x[1])
    per = {k: round(v / sent, 2) for k, v in total.items() if v}
    threads = {t: {k: round(v / sent, 2) for k, v in c.items() if v / sent >= 0.05}
               for t, c in byth.items() if c["syscalls"] / sent >= 0.2}
    return per, threads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("brokers")
    ap.add_argument("redis_port", type=int)
    ap.add_argument("rate", type=int)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--prewarm", type=float, default=6.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--noperf", action="store_true")
    ap.add_argument("--cap", type=float, default=0.0, help="cap each worker at this many cores")
    x = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cq-costs-")
    a = types.SimpleNamespace(build=x.build, brokers=x.brokers, redis_port=x.redis_port,
                              channels=1000, api_delay_ms=20)
    api_proc, api_port = b.start_api(a, tmp)
    st = b.Stack(a, tmp, api_port, workers=x.workers, notifiers=1).up()
    cg = None
    try:
        pids = {k: p for k, p in st.pids().items() if k != "ingress"}
        if x.cap > 0:
            cg = b.Cgroups()
            if cg.error:
                raise RuntimeError(cg.error)
            for k, p in pids.items():
                if k.startswith("worker"):
                    cg.cap("%s-%s" % (st.t, k), p, x.cap)
        url = "http://127.0.0.1:%d/slack/commands" % st.port
        sink = b.free_port()
        time.sleep(2)
        b.run_load(a, url, x.rate, x.prewarm, 0, sink, pids, "cw%d" % x.rate, drain_s=5)
        time.sleep(1)
        s0 = {k: (b.cpu_ms(p), ctxsw(p)) for k, p in pids.items()}
        ev = ["raw_syscalls:sys_enter"] + ["syscalls:sys_enter_" + n for n in SYSCALLS]
        perfs = {} if x.noperf else {k: subprocess.Popen(
            ["perf", "stat", "--per-thread", "-x,", "-o", os.path.join(tmp, "perf-%s" % k), "-e",
             ",".join(ev + ["context-switches"]), "-p", str(p)], stderr=subprocess.DEVNULL)
            for k, p in pids.items()}
        r = b.run_load(a, url, x.rate, x.seconds, 0, sink, pids, "cm%d" % x.rate, drain_s=5)
        for p in perfs.values():
            p.send_signal(2)
            p.wait()
        s1 = {k: (b.cpu_ms(p), ctxsw(p)) for k, p in pids.items()}
        sent = r["sent"]
        res = {"rate": x.rate, "sent": sent, "lost": r["lost"], "duplicated": r["duplicated"],
               "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}
        for k in pids:
            (c0, (v0, n0)), (c1, (v1, n1)) = s0[k], s1[k]
            res[k] = {"cpu_us": round((c1 - c0) * 1000.0 / sent, 1),
                      "voluntary_cs": round((v1 - v0) / sent, 2),
                      "involuntary_cs": round((n1 - n0) / sent, 2)}
            if k in perfs:
                res[k]["syscalls"], res[k]["by_thread"] = perf_counts(
                    os.path.join(tmp, "perf-%s" % k), sent)
        print(json.dumps(res, indent=1))
    finally:
        st.down()
        api_proc.terminate()
        api_proc.wait()
        if cg:
            cg.cleanup()
        subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
