#!/usr/bin/env python3
"""End-to-end benchmark (issue 13): signed Slack slash commands into the real chatops-ingress,
Kafka, the worker in direct mode against a fake API (C, fixed added latency), the notifier
posting to the response_url of each command, which points at the sink of cq-e2e-load (C),
Redis for the run-once claims. The Bolt peer (app_e2e.js) gets the same load and the same
sink. Phases (--phases, comma-separated):

  e2e     open-loop offered rates (--rates) on chatops, then a search (bisection) for the
          highest rate at which p99 (due time of the signed request -> reply at the sink)
          stays < 100 ms with every reply there once; CPU per command per process
  bolt    the same on the Bolt peer
  scale   1, 2, 4 workers, each in its own cgroup v1 cpu cgroup capped at --quota cores,
          then 1, 2 notifiers capped the same way: delivered commands/s at saturation
  cold    exec -> /readyz 200 for each service (broker and Redis up), --cold-n times each

Prints one JSON line per measurement and a summary table at the end (also --json FILE).
Needs BUILD/ingress/chatops-ingress, BUILD/worker/chatops-worker,
BUILD/notifier/chatops-notifier, BUILD/bin/cqt-fake_api, BUILD/bin/cqt-produce_result,
BUILD/bin/cq-e2e-load. Standard library only.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CGROOT = "/sys/fs/cgroup/cpu"

CONFIG = """
log: {level: warn}
kafka:
  brokers: "%(brokers)s"
  partitions: %(partitions)d%(kafka_extra)s
  topics: {requests: "%(t)s.requests", results: "%(t)s.results", audit: "%(t)s.audit",
           pipeline_events: "%(t)s.pipeline-events", dlq: "%(t)s.dlq"}
  groups: {worker: "%(t)s-worker", notifier: "%(t)s-notifier"}
%(props)sredis: {host: 127.0.0.1, port: %(redis)d, prefix: "%(t)s:"}
ingress: {listen: 127.0.0.1, port: %(ingress_port)d, admin_port: %(admin_port)d}
notifier: {slack_channel_interval_ms: 0}
slack: {enabled: true, signing_secret: "file:%(secret_file)s", command: /ops}
people:
  bench: {gitlab_login: bench, slack: [UBENCH], roles: [sre]}
commands:
  flag get:
    mode: direct
    args: [{name: name, required: true, regex: "[a-z0-9_]+"}]
    http: {method: GET, base_url: "http://127.0.0.1:%(api)d/api/v4", path: "/features/{{args.name}}",
           headers: {PRIVATE-TOKEN: x}, timeout_ms: 5000, idempotent: true,
           reply_template: "`{{response.name}}` is {{response.state}}"}
policy: [{name: all, roles: [sre], commands: ["flag get"]}]
"""


def kafka_properties(a):
    """--kafka-property K=V as the config's kafka.properties line (every service's clients)."""
    if not a.kafka_property:
        return ""
    kv = [x.split("=", 1) for x in a.kafka_property]
    return "  properties: {%s}\n" % ", ".join('"%s": "%s"' % (k, v) for k, v in kv)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


_taken = set()


def free_port():
    """A free port below the ephemeral range (32768+), so the many outgoing connections of a
    run cannot take it between this check and the service's bind; never the same twice."""
    for _ in range(1000):
        p = random.randint(20000, 32000)
        if p in _taken:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        _taken.add(p)
        return p
    raise RuntimeError("no free port in 20000-32000")


def cpu_ms(pid):
    """user + system CPU ms of a process (all its threads) so far, from /proc/PID/stat."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def jvm_gc(pid):
    """(young collections, their ms, full collections, their ms) of a JVM so far (jstat -gc;
    every collection of the bench broker's serial collector stops the whole broker), or None
    without jstat."""
    if pid is None or not shutil.which("jstat"):
        return None
    try:
        out = subprocess.run(["jstat", "-gc", str(pid)], capture_output=True, text=True,
                             timeout=10).stdout.split("\n")
        g = dict(zip(out[0].split(), out[1].split()))
        return (int(g["YGC"]), float(g["YGCT"]) * 1000, int(g["FGC"]), float(g["FGCT"]) * 1000)
    except (OSError, subprocess.SubprocessError, KeyError, IndexError, ValueError):
        return None


def host_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def http_status(port, path, timeout=0.5):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        st = c.getresponse().status
        c.close()
        return st
    except (OSError, http.client.HTTPException):
        return None


def wait_ready(port, path="/readyz", timeout=60.0, proc=None):
    """Seconds until GET path answers 200 (polled every 2 ms), or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            return None
        if http_status(port, path) == 200:
            return time.monotonic() - t0
        time.sleep(0.002)
    return None


class Cgroups:
    """One cgroup v1 cpu cgroup per capped process, under CGROOT/cq-e2e-PID."""

    def __init__(self):
        self.base = os.path.join(CGROOT, "cq-e2e-%d" % os.getpid())
        self.made = []
        self.error = None
        try:
            os.makedirs(self.base, exist_ok=True)
            with open(os.path.join(self.base, "cpu.cfs_quota_us"), "w") as f:
                f.write("-1")
        except OSError as e:
            self.error = "cgroup v1 cpu controller not writable at %s (%s): cannot cap " \
                         "processes, scale-out figures would be uncapped" % (CGROOT, e)

    def cap(self, name, pid, cores, period_us=100000):
        d = os.path.join(self.base, name)
        os.makedirs(d, exist_ok=True)
        self.made.append(d)
        with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
            f.write(str(period_us))
        with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(int(cores * period_us)))
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(pid))
        return d

    @staticmethod
    def stat(d):
        out = {}
        with open(os.path.join(d, "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                out[k] = int(v)
        return out

    def cleanup(self):
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError:
                pass
        try:
            os.rmdir(self.base)
        except OSError:
            pass


class Stack:
    """Fresh topics, groups and Redis prefix; an ingress, W workers and N notifiers."""

    def __init__(self, a, tmp, api_port, workers=1, notifiers=1, partitions=8):
        self.a, self.tmp = a, tmp
        self.t = "e2e%s" % uuid.uuid4().hex[:8]
        self.port, self.admin = free_port(), free_port()
        self.procs = {}
        self.http = {}  # service name -> its admin port (/metrics)
        secret_file = os.path.join(tmp, "slack_secret")
        with open(secret_file, "w") as f:
            f.write(SECRET)
        self.cfg = os.path.join(tmp, "%s.yaml" % self.t)
        with open(self.cfg, "w") as f:
            f.write(CONFIG % dict(brokers=a.brokers, partitions=partitions, t=self.t,
                                  redis=a.redis_port, ingress_port=self.port,
                                  admin_port=self.admin, secret_file=secret_file, api=api_port,
                                  kafka_extra="" if a.report_delay_ms is None else
                                  "\n  report_delay_ms: %d" % a.report_delay_ms,
                                  props=kafka_properties(a)))
        topics = ",".join("%s.%s" % (self.t, k) for k in
                          ("requests", "results", "audit", "pipeline-events", "dlq"))
        subprocess.run([os.path.join(a.build, "bin", "cqt-produce_result"), "--brokers",
                        a.brokers, "--ensure", topics, "--partitions", str(partitions)],
                       check=True, capture_output=True)
        self.n_workers, self.n_notifiers = workers, notifiers

    def start(self, name, argv, ready_port):
        logf = open(os.path.join(self.tmp, "%s-%s.log" % (self.t, name)), "w")
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stderr=logf, stdout=logf)
        self.procs[name] = p
        return p, ready_port, t0

    def up(self):
        b = self.a.build
        starts = [self.start("ingress", [os.path.join(b, "ingress", "chatops-ingress"), "--config",
                                         self.cfg], self.admin)]
        for k in range(self.n_workers):
            hp = free_port()
            self.http["worker%d" % k] = hp
            starts.append(self.start("worker%d" % k, [
                os.path.join(b, "worker", "chatops-worker"), "--config", self.cfg, "--http-port",
                str(hp), "--id", "%s-w%d" % (self.t, k)], hp))
        for k in range(self.n_notifiers):
            hp = free_port()
            self.http["notifier%d" % k] = hp
            starts.append(self.start("notifier%d" % k, [
                os.path.join(b, "notifier", "chatops-notifier"), "--config", self.cfg,
                "--http-port", str(hp)], hp))
        for p, port, _ in starts:
            if wait_ready(port, proc=p) is None:
                self.down()
                raise RuntimeError("a service never became ready (%s); logs in %s"
                                   % (p.args[0], self.tmp))
        return self

    def pids(self):
        return {k: p.pid for k, p in self.procs.items()}

    def down(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# The per-hop histograms a rate run reads from the services' /metrics (before and after), in
# the order a command meets them; the ack and the sink are the load tool's own stamps.
HOPS = (
    ("worker queue", "worker", "chatops_worker_queue_seconds", ""),
    ("worker run", "worker", "chatops_worker_request_seconds", ""),
    ("worker api call", "worker", "chatops_worker_action_seconds", ""),
    ("notifier queue", "notifier", "chatops_notifier_queue_seconds", 'platform="slack"'),
    ("notifier post", "notifier", "chatops_notifier_post_seconds", 'platform="slack"'),
)


def scrape(ports):
    """{(metric, labels): {le: cumulative count}} summed over the services' /metrics."""
    out = {}
    for port in ports:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
        except OSError:
            continue
        for line in text.splitlines():
            if "_bucket{" not in line:
                continue
            name, rest = line.split("{", 1)
            labels, value = rest.rsplit("} ", 1)
            parts = [x for x in labels.split(",") if not x.startswith("le=")]
            le = [x for x in labels.split(",") if x.startswith("le=")][0][4:-1]
            key = (name[:-len("_bucket")], ",".join(parts))
            le = float("inf") if le == "+Inf" else float(le)
            out.setdefault(key, {})
            out[key][le] = out[key].get(le, 0) + float(value)
    return out


def hist_quantile(before, after, q):
    """q-quantile in ms of the observations between two scrapes of one histogram (linear
    within a bucket, like Prometheus' histogram_quantile); None without observations."""
    les = sorted(after)
    d = [after[le] - before.get(le, 0) for le in les]
    if not d or d[-1] <= 0:
        return None
    rank, prev_le, prev_c = q * d[-1], 0.0, 0.0
    for le, c in zip(les, d):
        if c >= rank:
            if le == float("inf"):
                return round(prev_le * 1000, 1)
            frac = (rank - prev_c) / (c - prev_c) if c > prev_c else 1.0
            return round((prev_le + (le - prev_le) * frac) * 1000, 1)
        prev_le, prev_c = le, c
    return None


def hops(before, after):
    out = {}
    for name, _, metric, labels in HOPS:
        a_, b_ = after.get((metric, labels)), before.get((metric, labels), {})
        if a_:
            out[name] = {"p50_ms": hist_quantile(b_, a_, 0.5), "p99_ms": hist_quantile(b_, a_, 0.99),
                         "n": int(a_[float("inf")] - b_.get(float("inf"), 0))}
    return out


def run_load(a, url, rate, seconds, warmup, sink_port, pids, tag, drain_s=10.0, dump=None,
             extra=()):
    """One cq-e2e-load run; CPU of every process in pids over the run."""
    cpu0 = {k: cpu_ms(p) for k, p in pids.items()}
    gc0 = jvm_gc(pids.get("kafka broker"))
    h0 = host_busy()
    argv = [os.path.join(a.build, "bin", "cq-e2e-load"), "--url", url, "--secret", SECRET,
            "--rate", str(rate), "--seconds", str(seconds), "--warmup", str(warmup),
            "--sink-port", str(sink_port), "--tag", tag, "--drain-s", str(drain_s),
            "--channels", str(a.channels)]
    if dump:
        argv += ["--dump", dump]
    argv += list(extra)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate()
    h1 = host_busy()
    cpu1 = {k: cpu_ms(pid) for k, pid in pids.items()}
    gc1 = jvm_gc(pids.get("kafka broker"))
    if p.returncode != 0:
        raise RuntimeError("cq-e2e-load failed (%d)" % p.returncode)
    r = json.loads(out)
    sent = r["sent"]
    r["cpu_us_per_cmd"] = {k: round((cpu1[k] - cpu0[k]) * 1000.0 / sent, 1)
                           for k in pids if cpu0[k] is not None and cpu1[k] is not None}
    r["cpu_us_per_cmd"]["load tool (sender)"] = round(r["cpu_sender_ms"] * 1000.0 / sent, 1)
    r["cpu_us_per_cmd"]["slack sink"] = round(r["cpu_sink_ms"] * 1000.0 / sent, 1)
    if gc0 and gc1:  # the broker's stop-the-world pauses over the run (warm-up included)
        d = [b_ - a_ for a_, b_ in zip(gc0, gc1)]
        r["broker_gc"] = {"young": d[0], "young_ms": round(d[1], 1), "full": d[2],
                          "full_ms": round(d[3], 1),
                          "pauses_per_1000_cmds": round((d[0] + d[2]) * 1000.0 / sent, 2)}
    busy, tot = h1[0] - h0[0], h1[1] - h0[1]
    r["host_busy_cores"] = round(os.cpu_count() * busy / tot, 2) if tot else None
    return r


def passes(r):
    return (r["p99_ms"] >= 0 and r["p99_ms"] < 100.0 and r["lost"] == 0 and r["duplicated"] == 0
            and r["acks_other"] == 0 and r["ack_errors"] == 0 and r["bad_body"] == 0)


class Search:
    """One system's rates: the offered rates in order (stopping after a failure above 500/s:
    higher rates would only fail harder), then bisection between the best pass and the
    first failure. step() runs one measurement, so two systems can take turns."""

    def __init__(self, a, name, url, pids, results, metrics_ports=(), extra=()):
        self.a, self.name, self.url, self.pids, self.results = a, name, url, pids, results
        self.metrics_ports, self.extra = metrics_ports, extra
        self.sink = free_port()
        self.by_rate = {}
        self.todo = list(a.rates)
        self.bisects = 0

    def prewarm(self):
        a = self.a
        if a.prewarm > 0:  # the broker's / Node's JIT, fresh connections: not measured
            log("%-8s prewarm %d/s for %.0f s" % (self.name, a.prewarm_rate, a.prewarm))
            run_load(a, self.url, a.prewarm_rate, a.prewarm, 0, self.sink, self.pids,
                     "%sw-%s" % (self.name[0], uuid.uuid4().hex[:4]))
            time.sleep(a.settle)

    def measure(self, rate):
        a, rate = self.a, int(rate)
        tag = "%s%d-%s" % (self.name[0], rate, uuid.uuid4().hex[:4])
        dump = os.path.join(a.dump_dir, "%s-%d.tsv" % (self.name, rate)) if a.dump_dir else None
        m0 = scrape(self.metrics_ports) if self.metrics_ports else None
        r = run_load(a, self.url, rate, a.seconds, a.warmup, self.sink, self.pids, tag,
                     drain_s=a.drain, dump=dump, extra=self.extra)
        if m0 is not None:  # warm-up included: the histograms cannot tell it apart
            r["hops"] = hops(m0, scrape(self.metrics_ports))
        r["system"] = self.name
        r["pass"] = passes(r)
        print(json.dumps(r), flush=True)
        log("%-8s %5d/s  p50 %7.1f  p99 %7.1f  p99.9 %7.1f ms  lost %d dup %d  host %.2f "
            "cores busy  %s" % (self.name, rate, r["p50_ms"], r["p99_ms"], r["p999_ms"],
                                r["lost"], r["duplicated"], r["host_busy_cores"] or -1,
                                "PASS" if r["pass"] else "fail"))
        self.results.append(r)
        self.by_rate[rate] = r
        time.sleep(a.settle)
        return r

    def bounds(self):
        ok = [x for x in self.by_rate if self.by_rate[x]["pass"]]
        lo = max(ok) if ok else 0
        hi = min([x for x in self.by_rate if not self.by_rate[x]["pass"] and x > lo],
                 default=None)
        return lo, hi

    def step(self):
        """One more measurement; False when this system's search is over."""
        if self.todo:
            rate = self.todo.pop(0)
            r = self.measure(rate)
            if not r["pass"] and rate > 500:
                self.todo = []
            return True
        lo, hi = self.bounds()
        if self.bisects >= self.a.bisect or hi is None or hi - lo <= max(50, lo // 10):
            return False
        self.bisects += 1
        self.measure((lo + hi) // 2)
        return True

    def summary(self):
        lo, hi = self.bounds()
        return {"sustained": lo, "first_fail": hi, "by_rate": self.by_rate}


def start_api(a, tmp):
    pf = os.path.join(tmp, "api.port")
    p = subprocess.Popen([os.path.join(a.build, "bin", "cqt-fake_api"), pf, str(a.api_delay_ms)],
                         stdout=subprocess.DEVNULL)
    for _ in range(500):
        if os.path.exists(pf):
            break
        time.sleep(0.01)
    with open(pf) as f:
        return p, int(f.read())


def external_pids(a):
    out = {}
    for name, path in (("kafka broker", a.kafka_pid_file), ("redis", a.redis_pid_file)):
        if path and os.path.exists(path):
            with open(path) as f:
                out[name] = int(f.read().strip())
    return out


def start_bolt(a, tmp, api_port):
    """The Bolt peer copied to tmp, npm ci'd and started; (process, port) or None."""
    src = a.bolt_dir
    if not src or not os.path.isdir(src):
        log("bolt: skipped: the peer is not at %s (set CQ_BOLT_DIR)" % src)
        return None
    d = os.path.join(tmp, "bolt")
    shutil.copytree(src, d)
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            os.chmod(os.path.join(root, n), 0o755)
    shutil.rmtree(os.path.join(d, "node_modules"), ignore_errors=True)
    subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=d, check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    env = dict(os.environ, PORT=str(port), SLACK_SIGNING_SECRET=SECRET,
               API_URL="http://127.0.0.1:%d/api/v4/features/new_ui" % api_port)
    logf = open(os.path.join(tmp, "bolt.log"), "w")
    t0 = time.monotonic()
    p = subprocess.Popen(["node", os.path.join(d, "app_e2e.js")], env=env, stdout=logf,
                         stderr=logf)
    # Bolt has no /readyz: its first HTTP answer (404 on GET /) means it listens
    while time.monotonic() - t0 < 60 and http_status(port, "/") is None:
        if p.poll() is not None:
            raise RuntimeError("the Bolt peer exited; see %s" % logf.name)
        time.sleep(0.002)
    a.bolt_first_answer_s = round(time.monotonic() - t0, 3)
    return p, port


def phase_rates(a, tmp, api, summary, results, systems):
    """chatops and Bolt both up, taking turns at each rate (and each bisection step), so a
    change in what else runs on the shared host falls on both alike."""
    api_proc, api_port = api
    st, bolt, searches = None, None, []
    try:
        if "chatops" in systems:
            st = Stack(a, tmp, api_port).up()
            pids = dict(st.pids(), **external_pids(a))
            pids["fake api"] = api_proc.pid
            searches.append(Search(a, "chatops", "http://127.0.0.1:%d/slack/commands" % st.port,
                                   pids, results, metrics_ports=list(st.http.values())))
        if "bolt" in systems:
            bolt = start_bolt(a, tmp, api_port)
            if bolt:
                summary["bolt_first_answer_s"] = a.bolt_first_answer_s
                searches.append(Search(a, "bolt", "http://127.0.0.1:%d/slack/events" % bolt[1],
                                       {"bolt (node)": bolt[0].pid, "fake api": api_proc.pid},
                                       results))
            else:
                summary["bolt"] = None
        if "harness" in systems:  # load tool -> fake API -> the load tool posts to its sink
            searches.append(Search(a, "harness", "http://127.0.0.1:%d/relay" % api_port,
                                   {"fake api": api_proc.pid}, results, extra=("--relay", "1")))
        time.sleep(a.settle)
        for s_ in searches:
            s_.prewarm()
        active = list(searches)
        while active:
            active = [s_ for s_ in active if s_.step()]
        for s_ in searches:
            summary[s_.name] = s_.summary()
    finally:
        if st:
            st.down()
        if bolt:
            bolt[0].terminate()
            bolt[0].wait()


def keeps_up(r, rate):
    """The system kept up with `rate`: replies delivered during the window at >= 95 % of the
    offered rate, p99 under a second (no growing backlog), nothing lost or duplicated."""
    return (r["delivered_per_s_in_window"] >= 0.95 * rate and 0 <= r["p99_ms"] < 1000.0
            and r["lost"] == 0 and r["duplicated"] == 0 and r["acks_other"] == 0
            and r["ack_errors"] == 0)


def sustain(a, tmp, api, workers, notifiers, capped, cg, start):
    """The highest offered rate (commands/s) that `workers` workers and `notifiers` notifiers,
    those of role `capped` each in its own capped cgroup, keep up with: rates from `start`
    up by --scale-growth until one is not kept up with, then --scale-bisect bisection steps."""
    api_proc, api_port = api
    quota = a.quota if capped == "worker" else a.notifier_quota
    st = Stack(a, tmp, api_port, workers=workers, notifiers=notifiers,
               partitions=a.partitions).up()
    dirs, steps = [], []
    try:
        for name, pid in st.pids().items():
            if name.startswith(capped):
                dirs.append(cg.cap("%s-%s" % (st.t, name), pid, quota))
        time.sleep(a.settle + 2)  # the consumer group settles on its members
        pids = dict(st.pids(), **external_pids(a))
        pids["fake api"] = api_proc.pid
        sink = free_port()
        url = "http://127.0.0.1:%d/slack/commands" % st.port

        def step(rate, retry=True):
            rate = int(rate)
            s0 = [Cgroups.stat(d) for d in dirs]
            tag = "s%s%d%d-%d-%s" % (capped[0], workers, notifiers, rate, uuid.uuid4().hex[:4])
            r = run_load(a, url, rate, a.scale_seconds, a.scale_warmup, sink, pids, tag,
                         drain_s=a.drain)
            s1 = [Cgroups.stat(d) for d in dirs]
            r["throttled_periods_pct"] = [
                round(100.0 * (y["nr_throttled"] - x["nr_throttled"]) /
                      max(1, y["nr_periods"] - x["nr_periods"]), 1) for x, y in zip(s0, s1)]
            r["keeps_up"] = keeps_up(r, rate)
            r.update(system="chatops", workers=workers, notifiers=notifiers, capped=capped,
                     quota_cores=quota)
            print(json.dumps(r), flush=True)
            log("scale    %d worker(s) %d notifier(s), %s capped at %.2f core: %4d/s offered, "
                "%6.1f/s delivered (%6.1f/s put out), p99 %7.1f ms, throttled %s %%, host %.2f cores "
                "busy: %s" % (
                    workers, notifiers, capped, quota, rate, r["delivered_per_s_in_window"],
                    r.get("output_per_s_in_window", -1),
                    r["p99_ms"], r["throttled_periods_pct"], r["host_busy_cores"] or -1,
                    "keeps up" if r["keeps_up"] else "falls behind"))
            steps.append(r)
            time.sleep(a.settle)
            if (not r["keeps_up"] and retry and a.scale_retry and r["lost"] == 0
                    and r["duplicated"] == 0
                    and r["delivered_per_s_in_window"] >= 0.9 * rate):
                # A near miss (>= 90 % delivered, nothing lost) is measured once more: one 6 s
                # window is noisy, and a search that only bisects below its first failure
                # would otherwise be fixed by it (2 workers read 361.7/s against 361.95).
                log("scale    near miss at %d/s: measured once more" % rate)
                return step(rate, retry=False)
            return r["keeps_up"]

        if a.scale_prewarm > 0:
            # Unmeasured: a fresh stack's first traffic pays for the consumer group's first
            # fetches, new connections and topic metadata; without this the first measured
            # step (n x half of one's rate) could fail on that alone and cap the search.
            run_load(a, url, int(max(a.scale_start, 0.5 * start)), a.scale_prewarm, 0, sink, pids,
                     "s%s%d%dw-%s" % (capped[0], workers, notifiers, uuid.uuid4().hex[:4]),
                     drain_s=a.drain)
            time.sleep(a.settle)
        lo, hi, rate = 0, None, start
        while hi is None and len(steps) < 12:
            if step(rate):
                lo = int(rate)
                rate = rate * a.scale_growth
            else:
                hi = int(rate)
        for _ in range(a.scale_bisect):
            if hi is None or hi - lo <= max(10, lo // 20):
                break
            mid = (lo + hi) // 2
            if step(mid):
                lo = mid
            else:
                hi = mid
        best = [r for r in steps if r["offered_rate"] == lo and r["keeps_up"]]
        return {"sustained": lo, "first_behind": hi,
                "throttled_pct": best[0]["throttled_periods_pct"] if best else None,
                "host_busy_cores": best[0]["host_busy_cores"] if best else None,
                "steps": [(int(r["offered_rate"]), round(r["delivered_per_s_in_window"], 1),
                           r["keeps_up"]) for r in steps]}, steps
    finally:
        st.down()


def phase_scale(a, tmp, api, summary, results):
    cg = Cgroups()
    if cg.error:
        log("scale: " + cg.error)
        summary["scale"] = {"error": cg.error}
        return
    out = {"quota_cores": a.quota, "notifier_quota_cores": a.notifier_quota}
    try:
        for role, counts, other in (("worker", a.scale_workers, a.scale_notifiers_fixed),
                                    ("notifier", a.scale_notifiers, a.scale_workers_fixed)):
            base = None
            for n in counts:
                # start below what n capped processes can do: n times half of what one
                # sustained (or --scale-start for the first)
                start = a.scale_start if base is None else max(a.scale_start, 0.5 * n * base)
                if role == "worker":
                    s_, steps = sustain(a, tmp, api, n, other, "worker", cg, start)
                else:
                    s_, steps = sustain(a, tmp, api, other, n, "notifier", cg, start)
                results.extend(steps)
                base = s_["sustained"] if base is None else base
                s_["ratio"] = round(s_["sustained"] / base, 2) if base else None
                out["%s_%d" % (role, n)] = s_
                log("scale    %d %s(s) capped: sustained %d/s (%sx one)" % (
                    n, role, s_["sustained"], s_["ratio"]))
    finally:
        cg.cleanup()
    summary["scale"] = out


def phase_cold(a, tmp, api, summary, results):
    api_proc, api_port = api
    out = {}
    for k in range(a.cold_n):
        st = Stack(a, tmp, api_port)
        b = a.build
        hp_w, hp_n = free_port(), free_port()
        for name, argv, port in (
                ("ingress", [os.path.join(b, "ingress", "chatops-ingress"), "--config", st.cfg],
                 st.admin),
                ("worker", [os.path.join(b, "worker", "chatops-worker"), "--config", st.cfg,
                            "--http-port", str(hp_w)], hp_w),
                ("notifier", [os.path.join(b, "notifier", "chatops-notifier"), "--config",
                              st.cfg, "--http-port", str(hp_n)], hp_n)):
            p, _, t0 = st.start(name, argv, port)
            dt = wait_ready(port, proc=p)
            out.setdefault(name, []).append(round(dt * 1000, 1) if dt is not None else None)
        st.down()
    summary["cold_start_ms"] = out
    log("cold     exec -> /readyz 200 (ms): %s" % json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--kafka-pid-file")
    ap.add_argument("--redis-pid-file")
    ap.add_argument("--bolt-dir")
    ap.add_argument("--phases", default="cold,e2e,bolt,scale")
    ap.add_argument("--rates", default="250,500,1000,2000")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--bisect", type=int, default=3)
    ap.add_argument("--prewarm", type=float, default=45.0,
                    help="seconds of load before each system's rates (not measured)")
    ap.add_argument("--prewarm-rate", type=int, default=400)
    ap.add_argument("--drain", type=float, default=30.0,
                    help="seconds after the last send a reply may still come (else lost)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when a reply was lost (rates phases) or duplicated (any)")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--channels", type=int, default=1000)
    ap.add_argument("--api-delay-ms", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--quota", type=float, default=0.05, help="cores per capped worker")
    ap.add_argument("--notifier-quota", type=float, default=0.02,
                    help="cores per capped notifier (it needs ~1/3 of a worker's CPU per "
                         "command: at 0.05 two would need more than the host's rest carries)")
    ap.add_argument("--scale-start", type=float, default=80.0,
                    help="first offered commands/s with one capped process")
    ap.add_argument("--scale-growth", type=float, default=1.25)
    ap.add_argument("--scale-bisect", type=int, default=3)
    ap.add_argument("--scale-seconds", type=float, default=6.0)
    ap.add_argument("--scale-warmup", type=float, default=2.0)
    ap.add_argument("--scale-retry", type=int, default=1,
                    help="measure a near miss (>= 90 %% delivered, nothing lost) once more")
    ap.add_argument("--scale-prewarm", type=float, default=8.0,
                    help="seconds of unmeasured load at half the first rate before each "
                         "configuration's search")
    ap.add_argument("--scale-workers", default="1,2,4")
    ap.add_argument("--scale-notifiers", default="1,2")
    ap.add_argument("--scale-workers-fixed", type=int, default=2,
                    help="uncapped workers while the notifiers are measured")
    ap.add_argument("--scale-notifiers-fixed", type=int, default=2,
                    help="uncapped notifiers while the workers are measured")
    ap.add_argument("--cold-n", type=int, default=3)
    ap.add_argument("--report-delay-ms", type=int,
                    help="kafka.report_delay_ms for the services (default: the config default)")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--kafka-property", action="append", default=[], metavar="KEY=VALUE",
                    help="a librdkafka property for every service's Kafka clients (repeatable; "
                         "kafka.properties in their config)")
    ap.add_argument("--dump-dir", help="per-request TSV of each rate run (cq-e2e-load --dump)")
    a = ap.parse_args()
    a.rates = [int(x) for x in a.rates.split(",") if x]
    a.scale_workers = [int(x) for x in a.scale_workers.split(",") if x]
    a.scale_notifiers = [int(x) for x in a.scale_notifiers.split(",") if x]
    phases = [p for p in a.phases.split(",") if p]
    summary, results = {"host_cores": os.cpu_count(), "api_delay_ms": a.api_delay_ms}, []
    tmp = tempfile.mkdtemp(prefix="cq-e2e-")
    api = start_api(a, tmp)
    try:
        systems = [x for x, ph in (("chatops", "e2e"), ("bolt", "bolt"), ("harness", "harness"))
                   if ph in phases]
        done_rates = False
        for ph in phases:
            if ph in ("e2e", "bolt", "harness"):
                if not done_rates:
                    phase_rates(a, tmp, api, summary, results, systems)
                    done_rates = True
                continue
            {"scale": phase_scale, "cold": phase_cold}[ph](a, tmp, api, summary, results)
    finally:
        api[0].terminate()
        api[0].wait()
    report(summary)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summary, "results": results}, f, indent=1, default=str)
    shutil.rmtree(tmp, ignore_errors=True)
    # every reply counted: lost (not there within --drain after the last send) in the rate
    # runs; duplicated anywhere (the saturation runs stop with a backlog: no loss count there)
    lost = sum(r["lost"] for r in results if "capped" not in r)
    dup = sum(r["duplicated"] for r in results)
    replies = sum(r["replies"] for r in results)
    print("replies  %d counted at the sink: %d lost in the rate runs, %d duplicated, %d bad "
          "bodies" % (replies, lost, dup, sum(r["bad_body"] for r in results)))
    if a.check and (lost or dup):
        print("check    FAILED: replies lost or duplicated")
        return 1
    return 0


def report(s):
    print("\n== summary ==")
    c, b = s.get("chatops"), s.get("bolt")
    for name, x in (("chatops", c), ("bolt", b), ("harness", s.get("harness"))):
        if not x:
            continue
        print("%-8s sustained %s cmds/s at p99 < 100 ms (first failing rate %s)" % (
            name, x["sustained"], x["first_fail"]))
        for rate in sorted(x["by_rate"]):
            r = x["by_rate"][rate]
            print("  %5d/s  p50 %7.1f  p99 %7.1f  p99.9 %7.1f  max %7.1f ms  replies %d/%d "
                  "lost %d dup %d  acks!2xx %d  %s" % (
                      rate, r["p50_ms"], r["p99_ms"], r["p999_ms"], r["max_ms"], r["replies"],
                      r["measured"], r["lost"], r["duplicated"], r["acks_other"] + r["ack_errors"],
                      "pass" if r["pass"] else "FAIL"))
            print("           ack p50 %.1f p99 %.1f ms  sender late mean %s max %s ms" % (
                r.get("ack_p50_ms", -1), r.get("ack_p99_ms", -1), r.get("send_lag_mean_ms"),
                r.get("send_lag_max_ms")))
            gc = r.get("broker_gc")
            if gc:
                print("           broker GC pauses: %d young (%.0f ms), %d full (%.0f ms) = %.2f "
                      "per 1,000 commands" % (gc["young"], gc["young_ms"], gc["full"],
                                              gc["full_ms"], gc["pauses_per_1000_cmds"]))
            for hop, v in r.get("hops", {}).items():
                print("           %-16s p50 %6s  p99 %6s ms  (n %d)" % (hop, v["p50_ms"],
                                                                       v["p99_ms"], v["n"]))
    if c and b:
        sr = c["sustained"] / b["sustained"] if b["sustained"] else float("inf")
        p_c = c["by_rate"].get(500, {}).get("p99_ms")
        p_b = b["by_rate"].get(500, {}).get("p99_ms")
        print("ratio    sustained chatops/bolt = %.2fx (target >= 1)   p99 at 500/s chatops/bolt"
              " = %s (target <= 0.5)" % (sr, "%.2f" % (p_c / p_b) if p_c and p_b else "n/a"))
    if c:
        r = c["by_rate"].get(500) or next(iter(c["by_rate"].values()))
        print("cpu us/command at %d/s (chatops): %s" % (r["offered_rate"], json.dumps(
            r["cpu_us_per_cmd"])))
    if b:
        r = b["by_rate"].get(500) or next(iter(b["by_rate"].values()))
        print("cpu us/command at %d/s (bolt): %s" % (r["offered_rate"], json.dumps(
            r["cpu_us_per_cmd"])))
    sc = s.get("scale")
    if sc and "error" in sc:
        print("scale    not measured: %s" % sc["error"])
    elif sc:
        print("scale    each capped worker at %.2f core, notifier at %.2f (own cgroup v1 cpu "
              "cgroup); sustained = highest offered rate kept up with (>= 95 %% delivered in the "
              "window, p99 < 1 s)" % (sc["quota_cores"], sc["notifier_quota_cores"]))
        for key in sorted(k for k in sc if not k.endswith("quota_cores")):
            x = sc[key]
            print("  %-10s sustained %5d/s  ratio %5sx  first behind %s  throttled %s %%  "
                  "host busy %s cores" % (key, x["sustained"], x["ratio"], x["first_behind"],
                                          x["throttled_pct"], x["host_busy_cores"]))
        print("  targets: worker_2 >= 1.8x, worker_4 >= 3.4x, notifier_2 >= 1.8x")
    if "cold_start_ms" in s:
        print("cold     exec -> /readyz 200 ms: %s (target < 100)" % json.dumps(s["cold_start_ms"]))
    if "bolt_first_answer_s" in s:
        print("bolt     exec -> first HTTP answer: %.3f s" % s["bolt_first_answer_s"])


if __name__ == "__main__":
    sys.exit(main())
