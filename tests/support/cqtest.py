"""cqtest.py: Python helpers for the integration tests and the bench (standard library only):
the fixture stack's addresses, a chatops-ingress started from a written config, Slack and
Feishu request signing, Feishu AES encryption (via the openssl CLI) and cqt-topic_dump."""
import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


class Checks:
    """check(cond, what) counting like cqtest.h; done() prints the summary, returns exit code."""

    def __init__(self):
        self.checks = 0
        self.failures = 0

    def __call__(self, cond, what):
        self.checks += 1
        if not cond:
            self.failures += 1
            print("FAIL %s" % what, file=sys.stderr, flush=True)
        return cond

    def done(self):
        print("%d passed, %d failed" % (self.checks - self.failures, self.failures), flush=True)
        return 1 if self.failures else 0


def build_dir():
    d = os.environ.get("CQ_BUILD_DIR")
    if not d:
        sys.exit("CQ_BUILD_DIR not set (run under ctest)")
    return d


def stack_file(rel):
    d = os.environ.get("CQ_STACK_DIR") or sys.exit("CQ_STACK_DIR not set (run under ctest)")
    with open(os.path.join(d, rel)) as f:
        return f.read().strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def slack_sign(secret, body, ts=None):
    """Returns the two Slack headers for body (bytes) signed at ts (default now)."""
    ts = str(int(time.time()) if ts is None else ts)
    base = b"v0:" + ts.encode() + b":" + body
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def feishu_sign(encrypt_key, body, ts=None, nonce=None):
    ts = str(int(time.time()) if ts is None else ts)
    nonce = nonce or uuid.uuid4().hex[:16]
    sig = hashlib.sha256(ts.encode() + nonce.encode() + encrypt_key.encode() + body).hexdigest()
    return {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": sig}


def feishu_encrypt(encrypt_key, plaintext):
    """Feishu's scheme: base64(iv + AES-256-CBC(key = SHA-256(encrypt_key), PKCS#7))."""
    key = hashlib.sha256(encrypt_key.encode()).hexdigest()
    iv = os.urandom(16)
    out = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", key, "-iv", iv.hex()],
                         input=plaintext, capture_output=True, check=True).stdout
    return base64.b64encode(iv + out).decode()


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, headers dict lower-case, body bytes); never raises on HTTP errors."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def topic_dump(brokers, topic, timeout_ms=3000, max_n=0):
    tool = os.path.join(build_dir(), "bin", "cqt-topic_dump")
    args = [tool, brokers, topic, "--timeout-ms", str(timeout_ms)]
    if max_n:
        args += ["--max", str(max_n)]
    p = subprocess.run(args, capture_output=True, timeout=timeout_ms / 1000 + 60)
    if p.returncode != 0:
        raise RuntimeError("topic_dump failed: %s" % p.stderr.decode())
    # split on "\n" only: splitlines() also splits inside values holding U+2028, U+0085...
    return [json.loads(line) for line in p.stdout.decode().split("\n") if line.strip()]


def yaml_config(brokers, topics, secrets_dir, port=0, budget_ms=2000, extra=""):
    """A minimal valid config for the ingress (JSON is YAML; secrets via file:)."""
    return """
log: {level: debug}
kafka:
  brokers: "%(brokers)s"
  produce_timeout_ms: %(budget)d
  partitions: 3
  topics: {requests: "%(req)s", pipeline_events: "%(pipe)s"}
ingress: {listen: 127.0.0.1, port: %(port)d, threads: 2}
limits: {max_body: 4k, max_text: 200}
slack: {enabled: true, signing_secret: "file:%(d)s/slack"}
feishu:
  enabled: true
  verification_token: "file:%(d)s/fs_token"
  encrypt_key: "file:%(d)s/fs_key"
  bot_open_id: ou_bot
gitlab: {webhook_token: "file:%(d)s/gl_token"}
%(extra)s
""" % {"brokers": brokers, "budget": budget_ms, "req": topics["requests"],
       "pipe": topics["pipeline_events"], "port": port, "d": secrets_dir, "extra": extra}


class Ingress:
    """A running chatops-ingress with a config written to a temp dir."""

    SECRETS = {"slack": "slack-secret-for-tests", "fs_token": "fs-verification-token",
               "fs_key": "fs-encrypt-key", "gl_token": "gitlab-hook-token"}

    def __init__(self, brokers, topics, budget_ms=2000, extra="", config_text=None):
        self.dir = tempfile.mkdtemp(prefix="cqt-ingress-")
        for name, value in self.SECRETS.items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(value)
        self.port = free_port()
        self.admin_port = free_port()  # /readyz and /metrics live on the admin listener
        self.cfg = os.path.join(self.dir, "ingress.yaml")
        with open(self.cfg, "w") as f:
            f.write(config_text or yaml_config(brokers, topics, self.dir, self.port, budget_ms,
                                               extra))
        self.log_path = os.path.join(self.dir, "ingress.log")
        self.log = open(self.log_path, "wb")
        exe = os.path.join(build_dir(), "ingress", "chatops-ingress")
        self.proc = subprocess.Popen([exe, "--config", self.cfg, "--port", str(self.port),
                                      "--admin-port", str(self.admin_port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = "http://127.0.0.1:%d" % self.port
        self.admin = "http://127.0.0.1:%d" % self.admin_port

    def wait_ready(self, timeout=60, want=200):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("ingress exited %d:\n%s" % (self.proc.returncode,
                                                               self.logs()))
            try:
                st, _, _ = http("GET", self.admin + "/readyz", timeout=2)
                if st == want:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def post(self, path, body, headers=None, timeout=10):
        return http("POST", self.base + path, body, headers, timeout)

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=15, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode
