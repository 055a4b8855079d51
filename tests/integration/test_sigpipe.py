#!/usr/bin/env python3
"""The three services survive a peer closing a socket under them (issue 19, item 13).

Each binary is started as deployed: from this harness with SIGPIPE at its default
disposition (Python's subprocess restores it in the child; the test checks that too), so a
write to a socket whose peer is gone would kill a service that does not ignore SIGPIPE
itself (exit by signal 13, status 141 in a shell). Checks:
- every service ignores SIGPIPE (bit 13 of SigIgn in /proc/PID/status), though its parent
  did not;
- the worker and the notifier keep running, and get ready again, while their Redis
  connections are killed over and over (CLIENT KILL on exactly their connections) during a
  burst of requests the worker handles through Redis;
- the ingress keeps running while clients reset their connections before reading the
  answers (admin /metrics and webhook requests).
Standard library only.
"""
import json
import os
import socket
import struct
import sys
import tempfile
import time
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import check, free_port, stack_file  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TMP = tempfile.mkdtemp(prefix="cqt-sigpipe-")
SIGPIPE_BIT = 1 << (13 - 1)


def redis(*args):
    """One command on a fresh connection (RESP); returns the raw reply."""
    with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=5) as s:
        msg = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        s.sendall(msg)
        s.settimeout(2)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if data.endswith(b"\r\n") and (data[:1] in b"+-:" or len(data) > 4):
                    break
        except socket.timeout:
            pass
        return data


def http_get(port, path, timeout=3):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""
    finally:
        c.close()


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1], 16)
    return 0


def redis_ports_of(pid):
    """Local ports of pid's TCP connections to Redis (from /proc: socket inodes -> tcp table)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return []
    ports = []
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    local, remote, inode = p[1], p[2], p[9]
                    if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == REDIS_PORT:
                        ports.append(int(local.rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


CONFIG = """
log: {level: info}
kafka:
  brokers: "%(brokers)s"
  topics: {requests: "cqt.sigpipe.%(run)s.req", results: "cqt.sigpipe.%(run)s.res",
           audit: "cqt.sigpipe.%(run)s.audit", pipeline_events: "cqt.sigpipe.%(run)s.pipe",
           dlq: "cqt.sigpipe.%(run)s.dlq"}
  groups: {worker: "cqt-sigpipe-w-%(run)s", notifier: "cqt-sigpipe-n-%(run)s"}
redis: {host: 127.0.0.1, port: %(redis)d, prefix: "cqt:sigpipe:%(run)s:"}
ingress: {listen: 127.0.0.1}
slack:
  enabled: true
  signing_secret: "${CQT_SIGPIPE_SLACK}"
  bot_token: "${CQT_SIGPIPE_BOT}"
  api_base: "http://127.0.0.1:9/api"
""" % {"brokers": BROKERS, "run": RUN, "redis": REDIS_PORT}


def service(kind, cfg, **kw):
    """A service through the shared launcher (cqt.Service; restore_signals: the child starts
    with SIGPIPE at SIG_DFL), without the CQ_* overrides of the environment this runs in."""
    env = {k: None for k in os.environ
           if k.startswith("CQ_") and k not in ("CQ_SOURCE_DIR", "CQ_BUILD_DIR", "CQ_STACK_DIR")}
    env.update(CQT_SIGPIPE_SLACK="sigpipe-test-secret", CQT_SIGPIPE_BOT="xoxb-test")
    return cqt.Service(kind, cfg, kind, TMP, env=env, **kw)


def exit_text(svc):
    rc = svc.proc.poll()
    if rc is None:
        return "running"
    return "killed by signal %d" % -rc if rc < 0 else "exit %d" % rc


def wait_ready(svc, port, timeout=60):
    end = time.time() + timeout
    while time.time() < end and svc.alive():
        if http_get(port, "/readyz")[0] == 200:
            return True
        time.sleep(0.2)
    return False


def request_envelope(i):
    rid = str(uuid.uuid4())
    return rid, json.dumps({
        "v": 1, "id": rid, "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": "slack", "tenant": "T1", "channel": {"id": "C1", "name": "ops"},
        "user": {"id": "U%d" % i, "name": "u%d" % i}, "command": "help", "text": "",
        "reply": {"response_url": "http://127.0.0.1:9/r/%d" % i},
        "dedupe_key": "slack:sigpipe-%s-%d" % (RUN, i), "retry_num": 0})


def reset_connect(port, payload):
    """Sends payload and resets the connection (RST) without reading the answer."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(payload)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass


def main():
    cfg = os.path.join(TMP, "config.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    check(status_field(os.getpid(), "SigIgn") & SIGPIPE_BIT,
          "the harness itself ignores SIGPIPE (Python does), so this checks the children")
    wport, nport = free_port(), free_port()
    svcs = [service("worker", cfg, http_port=wport, args=["--id", "sigpipe-" + RUN]),
            service("notifier", cfg, http_port=nport), service("ingress", cfg)]
    worker, notifier, ingress = svcs
    iport, iadmin = ingress.port, ingress.admin_port()
    try:
        for svc, port in ((worker, wport), (notifier, nport), (ingress, iadmin)):
            if not check(wait_ready(svc, port), "%s ready (%s)" % (svc.name, exit_text(svc))):
                return cqt.summary(TMP)
        for svc in svcs:
            ign = status_field(svc.proc.pid, "SigIgn")
            check(ign & SIGPIPE_BIT, "%s ignores SIGPIPE (SigIgn %016x)" % (svc.name, ign))
        cqt.report("services_ignore_sigpipe")

        # a burst of requests the worker claims in Redis, with its and the notifier's Redis
        # connections killed again and again meanwhile
        topic = "cqt.sigpipe.%s.req" % RUN
        kills = 0
        for i in range(30):
            rid, env = request_envelope(i)
            cqt.produce(BROKERS, topic, "slack:T1:C1", env)
            for svc in (worker, notifier):
                for p in redis_ports_of(svc.proc.pid):
                    # the filter form answers with the number of clients killed
                    if redis("CLIENT", "KILL", "ADDR", "127.0.0.1:%d" % p).startswith(b":1"):
                        kills += 1
        check(kills >= 10, "killed the services' Redis connections %d times" % kills)
        time.sleep(1.0)  # let them meet the dead connections and reconnect
        for svc, port in ((worker, wport), (notifier, nport)):
            check(svc.alive(), "%s alive after its Redis connections were killed (%s)"
                  % (svc.name, exit_text(svc)))
            check(wait_ready(svc, port, 30), "%s ready again (Redis reconnected)" % svc.name)
        cqt.report("redis_connections_killed")

        # clients that reset before reading the answer
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 50
        for _ in range(50):
            reset_connect(iadmin, big)
            reset_connect(iport, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
        time.sleep(0.5)
        check(ingress.alive(), "ingress alive after clients reset mid-answer (%s)" % exit_text(ingress))
        check(http_get(iadmin, "/readyz")[0] == 200, "ingress still answers")
        cqt.report("clients_reset")
    finally:
        for svc in svcs:
            rc = svc.stop()
            check(rc == 0, "%s exits 0 on SIGTERM (got %r)" % (svc.name, rc))
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
