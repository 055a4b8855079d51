#!/usr/bin/env python3
"""scripts/run.sh as a newcomer runs it, detached into a private run dir: it starts its own
Kafka and Redis, the demo GitLab/Slack/Feishu (on CQ_DEMO_PORT_BASE, with a derived config),
the ingress, two workers and the notifier; every service answers /readyz 200 and every fake
its /_log; RUN_DIR/env lets chatopsctl find the stack; `run.sh --stop` leaves no process.
"""
import glob
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import check, free_port  # noqa: E402
cqt.VERBOSE = True
RUN = os.path.join(SRC, "scripts", "run.sh")


def free_run_of(n):
    """A base port with n free ports after it (the demo fakes use BASE..BASE+6)."""
    for _ in range(200):
        base = free_port()
        if base + n >= 65535:
            continue
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise RuntimeError("no run of free ports")


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purpose
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def main():
    with tempfile.TemporaryDirectory(prefix="cq-run-") as run_dir:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CQ_KAFKA") and not k.startswith("CQ_REDIS")}
        ingress_port, base = free_port(), free_run_of(7)
        env.update(CQ_RUN_DIR=run_dir, CQ_BUILD_DIR=BUILD, CQ_INGRESS_PORT=str(ingress_port),
                   CQ_DEMO_PORT_BASE=str(base))
        t0 = time.time()
        p = subprocess.run([RUN, "--detach"], env=env, capture_output=True, text=True,
                           timeout=540)
        took = time.time() - t0
        started = check(p.returncode == 0, "run.sh --detach exits 0 (%.0f s)%s" % (
            took, "" if p.returncode == 0 else ":\n" + p.stderr[-3000:] + p.stdout[-1000:]))
        try:
            if started:
                check("ingress      http://127.0.0.1:%d" % ingress_port in p.stdout,
                      "prints where the ingress listens (CQ_INGRESS_PORT)")
                for what in ("Kafka", "Redis", "worker1", "worker2", "notifier",
                             "demo GitLab", "demo Slack", "demo Feishu", "logs"):
                    check(what in p.stdout, "prints %s" % what)
                with open(os.path.join(run_dir, "ports")) as f:
                    ports = dict(ln.strip().split("=", 1) for ln in f if "=" in ln)
                for name in ("ingress-admin", "worker1", "worker2", "notifier"):
                    check(name in ports and status_of("http://127.0.0.1:%s/readyz"
                                                      % ports[name]) == 200,
                          "%s answers /readyz 200" % name)
                for name, port in (("fake-gitlab", base), ("fake-slack", base + 1),
                                   ("fake-feishu", base + 2), ("fake-mattermost", base + 3),
                                   ("fake-discord", base + 4), ("fake-webex", base + 5),
                                   ("fake-dingtalk", base + 6)):
                    check(status_of("http://127.0.0.1:%d/_log" % port) == 200,
                          "%s listens on %d (CQ_DEMO_PORT_BASE)" % (name, port))
                with open(os.path.join(run_dir, "config.yaml")) as f:
                    derived = f.read()
                check("127.0.0.1:%d/api/v10" % (base + 4) in derived
                      and "127.0.0.1:%d/v1" % (base + 5) in derived, "the derived config points "
                      "Discord and Webex at their demo fakes")
                check("127.0.0.1:%d/api" % (base + 1) in derived
                      and "127.0.0.1:%d/open-apis" % (base + 2) in derived
                      and "127.0.0.1:%d\n" % base in derived.replace(" ", "\n"),
                      "derived config points at the moved fakes")
                envf = os.path.join(run_dir, "env")
                st = os.stat(envf)
                check(stat.S_IMODE(st.st_mode) == 0o600, "RUN_DIR/env is private (0600)")
                with open(envf) as f:
                    kv = dict(ln.rstrip("\n").split("=", 1) for ln in f if "=" in ln)
                check(kv.get("CQ_INGRESS_PORT") == str(ingress_port)
                      and kv.get("CHATOPS_CONFIG", "").endswith("config.yaml")
                      and kv.get("CQ_KAFKA_BROKERS"), "RUN_DIR/env names the stack")
                # chatopsctl finds the stack through CQ_RUN_DIR alone
                cenv = {k: v for k, v in env.items() if k != "CHATOPS_CONFIG"}
                c = subprocess.run([os.path.join(BUILD, "tools", "chatopsctl"), "pipelines"],
                                   env=cenv, capture_output=True, text=True, timeout=60)
                check(c.returncode == 0, "chatopsctl pipelines works with CQ_RUN_DIR only (%s)"
                      % c.stderr.strip())
        finally:
            pids = []
            for f in glob.glob(os.path.join(run_dir, "pids", "*.pid")) + \
                    glob.glob(os.path.join(run_dir, "kafka", "*.pid")) + \
                    glob.glob(os.path.join(run_dir, "redis", "*.pid")):
                try:
                    with open(f) as fh:
                        pids.append((os.path.basename(f), int(fh.read().strip())))
                except (OSError, ValueError):
                    pass
            s = subprocess.run([RUN, "--stop"], env=env, capture_output=True, text=True,
                               timeout=180)
            check(s.returncode == 0, "run.sh --stop exits 0")
            if started:
                check(len(pids) >= 9, "pid files for kafka, redis, 3 fakes, 4 services (%d)"
                      % len(pids))
            deadline = time.time() + 10
            while time.time() < deadline and any(alive(pid) for _, pid in pids):
                time.sleep(0.2)
            left = [n for n, pid in pids if alive(pid)]
            check(not left, "every process is gone after --stop (left: %s)" % left)
            for _, pid in pids:  # never leave strays behind, even on failure
                if alive(pid):
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
            check(not os.path.exists(os.path.join(run_dir, "env")), "--stop removes RUN_DIR/env")
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
