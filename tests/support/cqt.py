"""cqt: what the Python integration tests share. Checks and their summary (every check counts;
report() prints ok/FAIL per test function), the ctest fixture files (the broker's bootstrap
address, Redis's port), and a topic follower/producer built on the cqt-* test tools.
Standard library only; the tests put tests/support on sys.path."""
import json
import os
import subprocess
import sys
import threading
import time

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")

VERBOSE = False  # print every check, not only the failed ones
checks = 0
failures = 0
_reported = 0


def check(cond, what):
    """Counts one assertion; prints it when it fails (or always, with VERBOSE)."""
    global checks, failures
    checks += 1
    if not cond:
        failures += 1
    if VERBOSE:
        print("%s %s" % ("ok  " if cond else "FAIL", what), flush=True)
    elif not cond:
        print("FAIL %s" % what, file=sys.stderr, flush=True)
    return cond


def report(name):
    """ok/FAIL for a test function: FAIL when any check since the last report failed."""
    global _reported
    print("%s %s" % ("ok  " if failures == _reported else "FAIL", name), flush=True)
    _reported = failures


def summary(where=None):
    """The last line of a test run; returns its exit status."""
    print("%d passed, %d failed%s" % (checks - failures, failures,
                                      " (logs in %s)" % where if where else ""), flush=True)
    return 1 if failures else 0


def stack_file(rel):
    """A file the ctest fixtures wrote under CQ_STACK_DIR (kafka/bootstrap, redis/port)."""
    base = os.environ.get("CQ_STACK_DIR")
    if not base:
        sys.exit("CQ_STACK_DIR not set (run under ctest)")
    path = os.path.join(base, rel)
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        sys.exit("fixture file %s missing (%s): did the fixture start?" % (path, e))


def produce(brokers, topic, key, value):
    """One message through cqt-produce (acks=all); a failure is a failed check."""
    r = subprocess.run([os.path.join(BUILD, "bin", "cqt-produce"), brokers, topic, key],
                       input=value.encode(), capture_output=True)
    check(r.returncode == 0, "cqt-produce ok: %s" % r.stderr.decode())


class Tail:
    """Follows a topic with cqt-consume in the background; values parsed as JSON."""

    def __init__(self, brokers, topic):
        self.msgs = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([os.path.join(BUILD, "bin", "cqt-consume"), brokers, topic,
                                      "0", "3600000"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                m = json.loads(line)
                m["json"] = json.loads(m["value"])
            except ValueError:
                m = {"value": line, "json": None}
            m["seen"] = time.time()
            with self.lock:
                self.msgs.append(m)

    def find(self, pred):
        with self.lock:
            return [m["json"] for m in self.msgs if m["json"] is not None and pred(m["json"])]

    def seen_at(self, pred):
        """When the first message matching pred arrived here (time.time()), or None."""
        with self.lock:
            t = [m["seen"] for m in self.msgs if m["json"] is not None and pred(m["json"])]
        return t[0] if t else None

    def wait(self, pred, n=1, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            got = self.find(pred)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        return self.find(pred)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
