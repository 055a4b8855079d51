#!/usr/bin/env python3
"""bench_notifier: results delivered per second by chatops-notifier to the fake Slack.

Phase 1 (throughput): a fresh topic is pre-filled with --count results (distinct requests
and channels, response_url on the fake), then --copies notifiers start and the clock runs
from the first to the last accepted post. Phase 2 (latency): --rate results/s for
--seconds are produced while the notifiers run; p50/p99 = sink-accepted - produced.
--sink fast (default) is fast_sink.py (pre-forked asyncio, ~13x the test fake's capacity) so
the notifier is what is measured; --sink fake uses tests/fakes/fake_slack.py.
Needs the Kafka + Redis of scripts/ (CQ_STACK_DIR) and a build (CQ_BUILD_DIR):
  CQ_STACK_DIR=build/stack CQ_BUILD_DIR=build bench/notifier/bench_notifier.py --copies 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "fakes"))
sys.path.insert(0, HERE)
from fake_slack import FakeSlack  # noqa: E402
from fast_sink import FastSink  # noqa: E402


def stack_file(rel):
    with open(os.path.join(os.environ["CQ_STACK_DIR"], rel)) as f:
        return f.read().strip()


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def result(slack, i):
    rid = str(uuid.uuid4())
    return json.dumps({"v": 1, "request_id": rid, "step": "final", "status": "ok",
                       "platform": "slack", "text": "bench result %d" % i, "seq": 0,
                       "command": "status web", "user_name": "bench",
                       "reply": {"response_url": slack.response_url(rid), "chat_id": "C%d" % i},
                       "produced_at": now_rfc3339()})


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--sink", choices=("fast", "fake"), default="fast")
    ap.add_argument("--sink-procs", type=int, default=2)
    a = ap.parse_args()
    build = os.environ["CQ_BUILD_DIR"]
    tool = os.path.join(build, "bin", "cqt-produce_result")
    notifier = os.path.join(build, "notifier", "chatops-notifier")
    brokers, redis_port = stack_file("kafka/bootstrap"), int(stack_file("redis/port"))
    run = uuid.uuid4().hex[:8]
    topic, dlq = "bench.notifier.results." + run, "bench.notifier.dlq." + run
    subprocess.run([tool, "--brokers", brokers, "--ensure", topic + "," + dlq,
                    "--partitions", "6"], check=True, capture_output=True)
    slack = FastSink(a.sink_procs).start() if a.sink == "fast" else FakeSlack().start()
    count = slack.count if a.sink == "fast" else (lambda: len(slack.requests("/response/")))
    tmp = tempfile.mkdtemp(prefix="bench-notifier-")
    cfg = os.path.join(tmp, "n.yaml")
    with open(cfg, "w") as f:
        f.write("""log:
  level: warn
kafka:
  brokers: "%s"
  topics:
    results: "%s"
    dlq: "%s"
  groups:
    notifier: "bench-%s"
redis:
  port: %d
  prefix: "bench:%s:"
slack:
  enabled: true
  signing_secret: "${B_SIGN}"
  bot_token: "${B_BOT}"
  api_base: "%s/api"
""" % (brokers, topic, dlq, run, redis_port, run, slack.url))
    env = dict(os.environ, B_SIGN="x", B_BOT="xoxb-test-token")

    lines = "\n".join(result(slack, i) for i in range(a.count)) + "\n"
    subprocess.run([tool, "--brokers", brokers, "--topic", topic], input=lines.encode(),
                   check=True, capture_output=True)
    procs = [subprocess.Popen([notifier, "--config", cfg, "--http-port", "-1"], env=env,
                              stderr=open(os.path.join(tmp, "n%d.log" % i), "w"))
             for i in range(a.copies)]
    try:
        end = time.time() + 300
        while count() < a.count and time.time() < end:
            time.sleep(0.05)
        reqs = slack.requests("/response/")
        ts = sorted(e["t"] for e in reqs)
        span = ts[-1] - ts[0] if len(ts) > 1 else float("nan")
        thr = (len(ts) - 1) / span if span else float("nan")
        print("sink=%s copies=%d prefilled=%d delivered=%d in %.2fs -> %.0f results/s" %
              (a.sink, a.copies, a.count, len(ts), span, thr))

        time.sleep(2)  # stragglers of phase 1 (timeouts retried) must not count below
        if a.sink == "fast":
            slack.reset()
        else:
            slack.control({"reset": True})
        p = subprocess.Popen([tool, "--brokers", brokers, "--topic", topic],
                             stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
        n = a.rate * a.seconds
        produced = {}
        t0 = time.time()
        for i in range(n):
            r = result(slack, i)
            produced[json.loads(r)["request_id"]] = time.time()
            p.stdin.write((r + "\n").encode())
            p.stdin.flush()
            delay = t0 + (i + 1) / a.rate - time.time()
            if delay > 0:
                time.sleep(delay)
        p.stdin.close()
        p.wait()
        end = time.time() + 60
        while count() < n and time.time() < end:
            time.sleep(0.05)
        got = [e for e in slack.requests("/response/")
               if e["path"][len("/response/"):] in produced]
        lat = [e["t"] - produced[e["path"][len("/response/"):]] for e in got
               if e["path"][len("/response/"):] in produced]
        print("copies=%d steady %d/s for %ds: delivered %d/%d, produced->accepted "
              "p50=%.1f ms p99=%.1f ms max=%.1f ms" %
              (a.copies, a.rate, a.seconds, len(got), n, pct(lat, 0.5) * 1000,
               pct(lat, 0.99) * 1000, max(lat) * 1000 if lat else float("nan")))
    finally:
        for pr in procs:
            pr.terminate()
        for pr in procs:
            pr.wait(30)
        slack.stop()


if __name__ == "__main__":
    main()
