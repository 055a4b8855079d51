#!/usr/bin/env python3
"""Redis with ACLs, as a managed Redis runs it (issue 14): a private redis-server whose
default user is off and whose only user is `cqsvc` with a password (scripts/redis.sh + ACL
SETUSER). Checks, through the real worker and notifier binaries:
- with redis.username + redis.password (a file: secret) and redis.db they get ready, and the
  worker's Redis records land in that database; `chatopsctl pipelines` connects the same way;
- with a wrong password each starts, logs one clear "AUTH rejected" line (never the password),
  answers /readyz 503 and stays alive (no hang, no exit), and exits 0 on SIGTERM;
- redis.tls: true, a rediss:// host, sentinels without master_name: refused at start with a
  one-line reason (exit status 2 or 1, no hang).
Standard library only; the shared Kafka fixture, its own Redis.
"""
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "faults"))
import faultlib as fl  # noqa: E402

cqt = fl.cqt
USER_PW = "acl-svc-pass-9f3e"
WRONG_PW = "acl-wrong-pass-77a1"


def redis_cli(port, *args, user="cqsvc", pw=USER_PW):
    p = subprocess.run(["redis-cli", "-p", str(port), "--user", user, "--pass", pw,
                        "--no-auth-warning"] + list(args), capture_output=True, text=True,
                       timeout=10)
    return p.stdout.strip()


def readyz(svc):
    port = svc.admin_port(20)
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def main():
    rdir = fl.tempfile.mkdtemp(prefix="cqt-redis-acl-")
    red = fl.PrivateRedis(rdir)
    st = None
    try:
        subprocess.run(["redis-cli", "-p", str(red.port), "ACL", "SETUSER", "cqsvc", "on",
                        ">" + USER_PW, "~*", "&*", "+@all"], check=True, capture_output=True)
        subprocess.run(["redis-cli", "-p", str(red.port), "ACL", "SETUSER", "default", "off"],
                       check=True, capture_output=True)
        for name, pw in (("good_pw", USER_PW), ("bad_pw", WRONG_PW)):
            with open(os.path.join(rdir, name), "w") as f:
                f.write(pw)
        where = ('host: 127.0.0.1, port: %d, username: cqsvc, password: "file:%s/good_pw", '
                 'db: 5' % (red.port, rdir))
        st = fl.Stack("redis-acl", redis_port=red.port, redis_where=where)
        w = st.add("worker")
        n = st.add("notifier")
        cqt.check(True, "worker and notifier ready with AUTH cqsvc <password> + SELECT 5")
        dbs = redis_cli(red.port, "INFO", "keyspace")
        cqt.check("db5:" in dbs and "db0:" not in dbs,
                  "the services' records are in db 5 only (%s)" % dbs.replace("\n", " "))

        ctl = subprocess.run([os.path.join(fl.BUILD, "tools", "chatopsctl"), "--config", st.cfg,
                              "pipelines"], capture_output=True, text=True, timeout=30)
        cqt.check(ctl.returncode == 0 and "no pipelines in flight" in ctl.stdout,
                  "chatopsctl pipelines connects as cqsvc to db 5 (rc %d: %s)"
                  % (ctl.returncode, (ctl.stdout + ctl.stderr).strip()[:200]))

        bad = st.variant("bad", drop=("good_pw",),
                         replace={"good_pw": "redis: {%s, prefix: \"fq%s:\"}" % (
                             where.replace("good_pw", "bad_pw"), st.run)})
        t0 = time.time()
        bw = st.add("worker", "worker_badpw", cfg=bad, ready=False)
        bn = st.add("notifier", "notifier_badpw", cfg=bad, ready=False)
        fl.wait_for(lambda: "AUTH rejected" in bw.logs() and "AUTH rejected" in bn.logs(), 20)
        time.sleep(1.0)  # a few reconnect attempts more: still alive, still not ready
        for s in (bw, bn):
            logs = s.logs()
            line = next((ln for ln in logs.splitlines() if "AUTH rejected" in ln), "")
            cqt.check("WRONGPASS" in line or "invalid username-password" in line,
                      "%s: one clear line: %s" % (s.name, line[:200]))
            cqt.check(s.alive(), "%s still running (no exit, no hang)" % s.name)
            cqt.check(readyz(s) == 503, "%s /readyz 503 within %.1f s" % (s.name,
                                                                          time.time() - t0))
            cqt.check(WRONG_PW not in logs and USER_PW not in logs,
                      "%s: no password in its log" % s.name)
            cqt.check(st.stop_service(s) == 0, "%s exits 0 on SIGTERM" % s.name)
        cqt.check(w.alive() and n.alive(), "the well-configured services are unaffected")

        refused = {
            "tls": ("redis: {host: 127.0.0.1, port: %d, tls: true}" % red.port, "hiredis"),
            "rediss": ('redis: {host: "rediss://127.0.0.1", port: %d}' % red.port, "hiredis"),
            "no_master_name": ('redis: {sentinels: ["127.0.0.1:26379"]}', "master_name"),
            "bad_sentinel": ('redis: {sentinels: ["127.0.0.1"], master_name: cq}',
                             "not host:port"),
        }
        for name, (line, want) in refused.items():
            cfg = st.variant(name, drop=("redis: {",), replace={"redis: {": line})
            s = st.add("worker", "worker_" + name, cfg=cfg, ready=False)
            try:
                rc = s.proc.wait(15)
            except subprocess.TimeoutExpired:
                rc = None
            logs = s.logs().strip().splitlines()
            s.ended = True
            cqt.check(rc not in (None, 0) and any(want in ln for ln in logs),
                      "%s refused at start (rc %s): %s" % (name, rc,
                                                           logs[-1][:220] if logs else ""))
        for s in (w, n):
            cqt.check(st.stop_service(s) == 0, "%s exits 0 on SIGTERM" % s.name)
        return cqt.summary(st.dir)
    finally:
        if st:
            st.close()
        red.stop()


if __name__ == "__main__":
    sys.exit(main())
