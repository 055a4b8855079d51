#!/usr/bin/env python3
"""Smoke check of bench/e2e (issue 13), not a benchmark: the benchmark's own driver puts
100 signed slash commands/s for 2 s through the real ingress, worker (direct mode, fake API)
and notifier on the fixture Kafka and Redis, and every reply must reach the load tool's sink
once, with the API's answer in it, every command acknowledged 2xx. It keeps the load tool
and the driver working; no timing is asserted (the benchmark is bench/e2e/run.sh).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import cqt  # noqa: E402
from cqt import check, stack_file  # noqa: E402

SRC = cqt.SRC
BUILD = cqt.BUILD


def main():
    brokers = stack_file("kafka/bootstrap")
    redis_port = stack_file("redis/port")
    p = subprocess.run([sys.executable, os.path.join(SRC, "bench", "e2e", "bench_e2e.py"),
                        "--build", BUILD, "--brokers", brokers, "--redis-port", redis_port,
                        "--phases", "e2e", "--rates", "100", "--seconds", "2", "--warmup", "1",
                        "--bisect", "0", "--prewarm", "0", "--check"],
                       capture_output=True, text=True, timeout=240)
    check(p.returncode == 0, "bench_e2e.py --check exits 0 (rc %d)\n%s" % (
        p.returncode, p.stderr[-3000:]))
    runs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    check(len(runs) == 1, "one measured run (%d)" % len(runs))
    for r in runs:
        check(r["measured"] == 200 and r["sent"] == 300,
              "300 commands sent, 200 measured (%d, %d)" % (r["sent"], r["measured"]))
        check(r["acks_2xx"] == r["sent"], "every command acknowledged 2xx (%d of %d)" % (
            r["acks_2xx"], r["sent"]))
        check(r["replies"] == r["measured"] and r["lost"] == 0,
              "every measured command's reply reached the sink (%d of %d)" % (
                  r["replies"], r["measured"]))
        check(r["duplicated"] == 0, "no reply posted twice (%d)" % r["duplicated"])
        check(r["good"] == r["replies"] and r["bad_body"] == 0,
              "every reply carries the API's answer (%d bad)" % r["bad_body"])
        check(r["sink_posts"] == r["sent"], "the sink got one post per command sent, warm-up "
              "included (%d for %d)" % (r["sink_posts"], r["sent"]))
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
