#!/usr/bin/env python3
"""Kafka over SASL_SSL (issue 14), on the kafka_sasl fixture (scripts/kafka.sh start
--sasl-ssl: a throwaway CA, SCRAM users made at format time and PLAIN for the same user):
  - the end-to-end slice (ingress -> Kafka -> worker -> notifier, test_e2e's Slack scenarios
    through scripts/run.sh) runs with every client on the SASL_SSL listener, the password
    read from a file: secret, and no log line carries it;
  - a wrong password: the service keeps running, says so in one error line that names the
    problem and not the secret, and /readyz answers 503 (no hang, no crash);
  - the SCRAM-SHA-512 user made at format time: the worker gets ready with it (librdkafka
    >= 2.6.1), or the error line names librdkafka#4895 (older librdkafka);
  - a property librdkafka refuses is a file:line:col error from `chatopsctl config check`
    and from a service's start.
The mechanism is SCRAM-SHA-512 where librdkafka can use it against this Kafka 4.x broker
(2.6.1 and later, librdkafka#4895), PLAIN otherwise (Debian 12 ships 2.0.2)."""
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_e2e  # noqa: E402  (its scenarios, private config and launcher settings)
from test_e2e import BUILD, CTL, RUN  # noqa: E402
import cqt  # noqa: E402
from cqt import check, stack_file  # noqa: E402


def mechanism():
    """SCRAM-SHA-512 when the linked librdkafka can do it against Kafka 4.x, else PLAIN."""
    try:
        v = subprocess.run(["pkg-config", "--modversion", "rdkafka"], capture_output=True,
                           text=True, timeout=10).stdout.strip()
        parts = tuple(int(x) for x in v.split(".")[:3])
    except (OSError, ValueError, subprocess.SubprocessError):
        parts = (0,)
    return "SCRAM-SHA-512" if parts >= (2, 6, 1) else "PLAIN"


def security_block(password_file, mech):
    stack = os.environ["CQ_STACK_DIR"]
    return ("  security_protocol: sasl_ssl\n"
            "  sasl:\n"
            "    mechanism: %s\n"
            "    username: %s\n"
            "    password: \"file:%s\"\n"
            "  ssl:\n"
            "    ca_location: %s\n"
            % (mech, stack_file("kafka_sasl/sasl_username"), password_file,
               os.path.join(stack, "kafka_sasl", "tls", "ca.pem")))


def with_security(path, block, extra=""):
    """The config at path with block (and extra) added under its top-level kafka: key."""
    with open(path) as f:
        text = f.read()
    text = text.replace("\nkafka:\n", "\nkafka:\n" + block + extra, 1)
    with open(path, "w") as f:
        f.write(text)
    return path


def e2e_over_sasl_ssl(tmp, mech, password):
    run_dir = os.path.join(tmp, "run")
    cfg = with_security(test_e2e.private_config(tmp), security_block(
        os.path.join(os.environ["CQ_STACK_DIR"], "kafka_sasl", "sasl_password"), mech))
    env = {k: v for k, v in os.environ.items() if k != "CHATOPS_CONFIG"}
    env.update(CQ_RUN_DIR=run_dir, CQ_BUILD_DIR=BUILD,
               CQ_DEMO_PORT_BASE=str(test_e2e.free_base()),
               CQ_KAFKA_BROKERS=stack_file("kafka_sasl/sasl_ssl"),
               CQ_REDIS_PORT=stack_file("redis/port"), CQ_REDIS_HOST="127.0.0.1")
    env.pop("CQ_INGRESS_PORT", None)
    p = subprocess.run([RUN, "--config", cfg, "--detach"], env=env, capture_output=True,
                       text=True, timeout=540)
    try:
        if not check(p.returncode == 0, "run.sh --detach starts the stack over SASL_SSL (%s)\n%s"
                     % (mech, p.stderr[-2500:] if p.returncode else "")):
            return
        cenv = {k: v for k, v in env.items() if not k.startswith("CQ_") or k == "CQ_RUN_DIR"}
        req = test_e2e.scenarios(cenv, "slack", ("ops", "ops-prod", "dev"))
        seen = test_e2e.traced(os.path.join(run_dir, "logs"), req or "-")
        check(seen == {"ingress", "worker", "notifier"},
              "over SASL_SSL, request %s went ingress -> worker -> notifier (%s)"
              % (req, sorted(s for s in seen if s)))
        # chatopsctl's own librdkafka clients take the same settings (dlq reads the topic)
        d = subprocess.run([CTL, "--config", cfg, "dlq", "list"], env=env, capture_output=True,
                           text=True, timeout=60)
        check(d.returncode == 0, "chatopsctl dlq list reads the DLQ over SASL_SSL (%s)"
              % d.stderr.strip()[-500:])
    finally:
        subprocess.run([RUN, "--stop"], env=env, capture_output=True, timeout=180)
    logs = os.path.join(run_dir, "logs")
    leaked = [n for n in os.listdir(logs) if password in open(os.path.join(logs, n),
                                                              errors="replace").read()]
    check(not leaked, "no service log carries the SASL password (%s)" % leaked)
    cqt.report("e2e_over_sasl_ssl")


def minimal_config(tmp, name, block, extra=""):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("kafka:\n  brokers: \"%s\"\n%s%s"
                "redis:\n  host: 127.0.0.1\n  port: %s\n"
                % (stack_file("kafka_sasl/sasl_ssl"), block, extra, stack_file("redis/port")))
    return path


def readyz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wrong_password(tmp, mech):
    bad = os.path.join(tmp, "wrong_password")
    secret = "WRONG-s3cr3t-%d" % os.getpid()
    with open(bad, "w") as f:
        f.write(secret + "\n")
    cfg = minimal_config(tmp, "wrong.yaml", security_block(bad, mech))
    logdir = os.path.join(tmp, "wrong-logs")
    os.makedirs(logdir)
    svcs = [cqt.Service("ingress", cfg, "ingress", logdir),
            cqt.Service("worker", cfg, "worker", logdir)]
    try:
        t0 = time.time()
        line = {}
        while time.time() - t0 < 20 and len(line) < len(svcs):
            for s in svcs:
                m = re.search(r'^.*"level":"error".*authentication failed.*$', s.logs(), re.M)
                if m:
                    line.setdefault(s.name, (m.group(0), time.time() - t0))
            time.sleep(0.2)
        for s in svcs:
            got = line.get(s.name)
            check(got is not None, "%s: a wrong password is an error line within 20 s (%.1f s)"
                  % (s.name, got[1] if got else -1))
            if got:
                check("SASL authentication error" in got[0] and secret not in got[0],
                      "%s: the line names the problem, not the secret: %s" % (s.name, got[0]))
            log = s.logs()
            check(secret not in log, "%s: the secret is in no log line" % s.name)
            n = len(re.findall(r"authentication failed", log))
            check(n == 1, "%s: one such line at start, not one per client and retry (%d)"
                  % (s.name, n))
            check(s.alive(), "%s keeps running (it may recover once the secret is fixed)"
                  % s.name)
            port = s.admin_port(5)
            t = time.time()
            status = readyz(port) if port else None
            check(status == 503 and time.time() - t < 2,
                  "%s: /readyz answers 503 at once (%s in %.2f s)"
                  % (s.name, status, time.time() - t))
    finally:
        for s in svcs:
            s.stop()
    cqt.report("wrong_password")


def scram_users(tmp, mech):
    """The fixture's SCRAM-SHA-512 user with its right password: ready where librdkafka can do
    SCRAM with Kafka 4.x; with an older librdkafka the error line says why (librdkafka#4895)
    instead of only "invalid credentials", which would send an operator after the password."""
    pw = os.path.join(os.environ["CQ_STACK_DIR"], "kafka_sasl", "sasl_password")
    cfg = minimal_config(tmp, "scram.yaml", security_block(pw, "SCRAM-SHA-512"))
    logdir = os.path.join(tmp, "scram-logs")
    os.makedirs(logdir)
    s = cqt.Service("worker", cfg, "worker", logdir)
    try:
        if mech.startswith("SCRAM"):
            check(s.wait_ready(30), "SCRAM-SHA-512 with the fixture's user: the worker is ready")
        else:
            end = time.time() + 20
            while time.time() < end and "librdkafka#4895" not in s.logs():
                time.sleep(0.2)
            log = s.logs()
            check("SCRAM-SHA-512" in log and "librdkafka#4895" in log and
                  "librdkafka before 2.6.1 cannot do SCRAM with Kafka 4.x" in log,
                  "SCRAM with librdkafka < 2.6.1 against Kafka 4.x: the error line names the "
                  "librdkafka bug, not only invalid credentials")
            port = s.admin_port(5)
            check(port and readyz(port) == 503, "and /readyz is 503")
    finally:
        s.stop()
    cqt.report("scram_users")


def refused_property(tmp, mech):
    pw = os.path.join(os.environ["CQ_STACK_DIR"], "kafka_sasl", "sasl_password")
    cfg = minimal_config(tmp, "refused.yaml", security_block(pw, mech),
                         "  properties:\n    linger.ms: \"5\"\n    socket.keepalive.enabel: "
                         "\"true\"\n")
    want = ("%s:12:5: kafka.properties[\"socket.keepalive.enabel\"]: librdkafka refuses it: "
            "No such configuration property: \"socket.keepalive.enabel\"" % cfg)
    p = subprocess.run([CTL, "config", "check", cfg], capture_output=True, text=True, timeout=30)
    check(p.returncode != 0 and want in p.stderr,
          "chatopsctl config check: the refused property at file:line:col\n%s" % p.stderr)
    p = subprocess.run([os.path.join(BUILD, "worker", "chatops-worker"), "--config", cfg,
                        "--http-port", "0"], capture_output=True, text=True, timeout=30)
    check(p.returncode != 0 and want in p.stderr,
          "the worker refuses to start with the same one-line error (exit %d)\n%s"
          % (p.returncode, p.stderr))
    cqt.report("refused_property")


def main():
    mech = mechanism()
    print("SASL mechanism: %s" % mech, flush=True)
    password = stack_file("kafka_sasl/sasl_password")
    with tempfile.TemporaryDirectory(prefix="cq-sasl-") as tmp:
        refused_property(tmp, mech)
        wrong_password(tmp, mech)
        scram_users(tmp, mech)
        e2e_over_sasl_ssl(tmp, mech, password)
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
