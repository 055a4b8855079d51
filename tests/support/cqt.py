"""cqt: what the Python integration tests share. Checks and their summary (every check counts;
report() prints ok/FAIL per test function), the ctest fixture files (the broker's bootstrap
address, Redis's port), and a topic follower/producer built on the cqt-* test tools, Slack and Feishu request signing,
plain HTTP, and `Service`, the one launcher of a chatops binary.
Standard library only; the tests put tests/support on sys.path."""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

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


def now_rfc3339(t=None):
    """Now (or t) as the ingress writes received_at: RFC 3339, UTC, milliseconds. Envelopes a
    test writes itself need a fresh one: the worker refuses requests older than
    worker.max_request_age_s."""
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def wait_for(pred, timeout, step=0.1):
    """Calls pred() until it returns something true or timeout seconds passed; returns its
    last value."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def stack_yaml(brokers, topics, groups, redis_port, prefix, partitions=3):
    """The log, kafka and redis sections a test config starts with (YAML text): topics and
    groups are (name, value) pairs in the order they are written."""
    lines = ["log: {level: info}", "kafka:", '  brokers: "%s"' % brokers,
             "  partitions: %d" % partitions, "  topics:"]
    lines += ['    %s: "%s"' % kv for kv in topics]
    lines += ["  groups:"] + ['    %s: "%s"' % kv for kv in groups]
    lines += ["redis:", "  host: 127.0.0.1", "  port: %d" % redis_port, '  prefix: "%s"' % prefix]
    return "\n".join(lines) + "\n"


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


def topic_dump(brokers, topic, timeout_ms=3000, max_n=0):
    """Every message of topic as JSON objects, read with cqt-topic_dump; raises when it fails."""
    args = [os.path.join(BUILD, "bin", "cqt-topic_dump"), brokers, topic,
            "--timeout-ms", str(timeout_ms)]
    if max_n:
        args += ["--max", str(max_n)]
    p = subprocess.run(args, capture_output=True, timeout=timeout_ms / 1000 + 60)
    if p.returncode != 0:
        raise RuntimeError("topic_dump failed: %s" % p.stderr.decode())
    # split on "\n" only: splitlines() also splits inside values holding U+2028, U+0085...
    return [json.loads(line) for line in p.stdout.decode().split("\n") if line.strip()]


def slack_signature(secret, ts, body):
    """Slack's request signature: "v0=" + hex HMAC-SHA256(secret, "v0:" + ts + ":" + body)."""
    return "v0=" + hmac.new(secret.encode(), b"v0:" + str(ts).encode() + b":" + body,
                            hashlib.sha256).hexdigest()


def slack_sign(secret, body, ts=None):
    """The two Slack headers for body (bytes) signed at ts (default now)."""
    ts = str(int(time.time()) if ts is None else ts)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_signature(secret, ts, body)}


def feishu_signature(encrypt_key, ts, nonce, body):
    """Feishu's event signature: hex SHA-256(timestamp + nonce + encrypt_key + body)."""
    return hashlib.sha256(str(ts).encode() + nonce.encode() + encrypt_key.encode() +
                          body).hexdigest()


def feishu_encrypt(encrypt_key, plaintext):
    """Feishu's event encryption: base64(iv + AES-256-CBC(key = SHA-256(encrypt_key), PKCS#7)),
    by the openssl CLI (the tests use the standard library only)."""
    key = hashlib.sha256(encrypt_key.encode()).hexdigest()
    iv = os.urandom(16)
    out = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", key, "-iv", iv.hex()],
                         input=plaintext, capture_output=True, check=True).stdout
    return base64.b64encode(iv + out).decode()


# ---- issue 18: the signatures of DingTalk, Webex and Discord (docs/platforms.md)

def dingtalk_sign(secret, ts_ms=None):
    """DingTalk's callback headers: timestamp (ms, default now) and sign =
    base64(HMAC-SHA256(secret, timestamp + "\n" + secret))."""
    ts = str(int(time.time() * 1000) if ts_ms is None else ts_ms)
    mac = hmac.new(secret.encode(), (ts + "\n" + secret).encode(), hashlib.sha256)
    return {"timestamp": ts, "sign": base64.b64encode(mac.digest()).decode()}


def webex_signature(secret, body):
    """Webex's X-Spark-Signature: hex HMAC-SHA1(secret, body)."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def ed25519_der(seed_hex):
    """The PKCS#8 DER of an Ed25519 private key from its 32-byte seed (hex)."""
    return bytes.fromhex("302e020100300506032b657004220420" + seed_hex)


def discord_sign(seed_hex, body, ts=None):
    """Discord's interaction headers: X-Signature-Timestamp (default now) and the Ed25519
    X-Signature-Ed25519 over timestamp + body, by the openssl CLI."""
    import tempfile
    ts = str(int(time.time()) if ts is None else ts)
    with tempfile.TemporaryDirectory() as d:
        key, msg = os.path.join(d, "k.der"), os.path.join(d, "m.bin")
        with open(key, "wb") as f:
            f.write(ed25519_der(seed_hex))
        with open(msg, "wb") as f:
            f.write(ts.encode() + body)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-keyform", "DER",
                              "-rawin", "-in", msg], capture_output=True, check=True).stdout
    return {"X-Signature-Timestamp": ts, "X-Signature-Ed25519": sig.hex()}


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers with lower-case names, body bytes); an HTTP error status is returned,
    not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


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


SERVICE_BINARIES = {"ingress": ("ingress", "chatops-ingress"),
                    "worker": ("worker", "chatops-worker"),
                    "notifier": ("notifier", "chatops-notifier")}


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Service:
    """One chatops service (ingress, worker or notifier) started as deployed: its binary with
    --config, stdout+stderr into LOGDIR/NAME.log, default signal dispositions (SIGPIPE
    included: restore_signals stays on, nothing is ignored for it). The one launcher of the
    integration tests, the fault suite (tests/faults) and the corpus replayer.
      args: extra arguments (e.g. ["--id", "w1"]); env: extra environment (a None value
      removes that variable).
    Worker and notifier get --http-port http_port (default 0: any free port, admin_port()
    reads it from the log; -1: no admin listener; None: no flag, the config decides); the
    ingress listens on `port` (a free one unless given)."""

    def __init__(self, kind, cfg, name, logdir, args=(), env=None, port=None, http_port=0):
        sub, exe = SERVICE_BINARIES[kind]
        self.kind, self.name, self.cfg = kind, name, cfg
        self.log_path = os.path.join(logdir, name + ".log")
        argv = [os.path.join(BUILD, sub, exe), "--config", cfg]
        self.port = None
        self.admin = None
        if kind == "ingress":
            self.port = port if port is not None else free_port()
            self.admin = free_port()  # its admin listener: /readyz, /metrics
            argv += ["--port", str(self.port), "--admin-port", str(self.admin)]
        elif http_port is not None:
            argv += ["--http-port", str(http_port)]
        argv += list(args)
        self.argv = argv
        self.env = dict(os.environ, **(env or {}))
        for k in [k for k, v in self.env.items() if v is None]:
            del self.env[k]
        self.start()

    def start(self):
        """(Re)starts the process with the same arguments, appending to the same log."""
        self.log = open(self.log_path, "ab")
        self.log_from = self.log.tell()  # this run's lines start here
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env, restore_signals=True)
        self._admin = None
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def logs(self, since_start=False):
        """The log (all runs), or only the current run's lines."""
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self.log_from)
            return f.read().decode("utf-8", "replace")

    def grep(self, pat):
        """The log lines (all runs) that match the regular expression pat."""
        return [ln for ln in self.logs().splitlines() if re.search(pat, ln)]

    def wait_for(self, pat, timeout=30):
        """True once a log line matches pat; False when the time ran out."""
        end = time.time() + timeout
        while time.time() < end:
            if self.grep(pat):
                return True
            time.sleep(0.05)
        return False

    def metrics(self):
        """The /metrics text of its admin listener; "" when there is none or it does not answer."""
        port = self.admin_port()
        if not port:
            return ""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""

    def admin_port(self, timeout=30):
        """The admin port (/readyz, /metrics): the worker's/notifier's from its log, the
        ingress's as given at start."""
        if self.kind == "ingress":
            return self.admin
        end = time.time() + timeout
        while self._admin is None and time.time() < end and self.alive():
            m = re.search(r"admin http listening on port (\d+)", self.logs(since_start=True))
            if m:
                self._admin = int(m.group(1))
            else:
                time.sleep(0.05)
        return self._admin

    def wait_ready(self, timeout=60):
        """True once /readyz answers 200; False when it died or the time ran out."""
        end = time.time() + timeout
        while time.time() < end and self.alive():
            port = self.admin_port(max(end - time.time(), 0.1))
            if port:
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port,
                                                timeout=2) as r:
                        if r.status == 200:
                            return True
                except OSError:
                    pass
            time.sleep(0.05)
        return False

    def kill(self, sig=9):
        """Sends sig; for SIGKILL also reaps. Returns the exit status when it ended."""
        if self.alive():
            self.proc.send_signal(sig)
        if sig == 9:
            return self.proc.wait()
        return self.proc.poll()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig (SIGTERM), waits (SIGKILL after timeout); returns the exit status."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode
