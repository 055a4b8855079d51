"""faultlib: the fault suite's harness (standard library only). A Stack is the real ingress,
workers and notifiers (tests/support/cqt.Service, as deployed: no signal ignored) on Kafka and
Redis (the ctest fixtures, or private ones started with scripts/kafka.sh / scripts/redis.sh
when the test kills them), with the fakes (fake Slack for replies, fake API for direct calls,
fake GitLab for pipelines) in this process. A Load sends signed Slack slash commands, each with
its own trigger_id and a tag (fx<N>) in its arguments, so that every record a fake keeps can
be traced back to the command that caused it. Counts come from the fakes' own records:

  sent        commands sent (distinct trigger ids; platform re-sends are not counted again)
  acked       commands the ingress answered 200 "queued"
  executed    side effects the fake API / fake GitLab received (duplicates counted)
  answered    final replies the fake Slack accepted (duplicates counted)
  duplicates  commands executed or answered more than once
  lost        acked commands never answered with a final

A test fails unless lost = 0, duplicates = 0, every command that was not acked got the
documented error ("... was NOT run ... Please retry.", or an "outcome unknown" answer) and
none of those told "NOT run" ran anyway.
"""
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
import cqt  # noqa: E402
import fake_gitlab  # noqa: E402
from fake_api import FakeAPI  # noqa: E402
from fake_feishu import FakeFeishu  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

BUILD = cqt.BUILD
SCRIPTS = os.path.join(SRC, "scripts")
FINAL_LABELS = ("Succeeded", "Failed", "Denied", "Invalid command", "Timed out")
TAG_RE = re.compile(r"\bfx(\d+)\b")
SLACK_SECRET = "fault-slack-signing-secret"
SECRETS = {"slack_secret": SLACK_SECRET, "bot_token": "xoxb-fault-token",
           "api_token": "fault-api-token", "trig": "fault-trigger-token",
           "hook": "corpus-gitlab-hook-token", "fs_token": "corpus-feishu-verification-token",
           "fs_key": "corpus-feishu-encrypt-key", "fs_secret": "s3cret",
           # issue 18 (the corpus's DingTalk, Mattermost and Webex cases)
           "dt_secret": "corpus-dingtalk-secret", "mm_token": "corpus-mattermost-token",
           "wx_secret": "corpus-webex-secret"}
CHANNELS = ["CF%02d" % i for i in range(12)]


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def wait_for(pred, timeout, step=0.05):
    """pred() until truthy or timeout; returns its last value."""
    end = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= end:
            return v
        time.sleep(step)


class PrivateKafka:
    """A broker of this test only (scripts/kafka.sh, its own dir): the tests that stop it.
    proxy: a tests/support/tcpproxy.py Handle that clients must go through: the broker gets an
    EXTERNAL listener advertising the proxy's port (kafka.sh start --advertise-port), and the
    proxy forwards to that listener, so every client connection crosses the proxy."""

    def __init__(self, root, proxy=None):
        self.dir = os.path.join(root, "kafka")
        self.proxied = None
        if not proxy:
            self._sh("start")
            return
        self._sh("start", extra=["--advertise-port", str(proxy.port)])
        with open(os.path.join(self.dir, "external")) as f:
            proxy.target(f.read().strip())
        self.proxied = "127.0.0.1:%d" % proxy.port

    def _sh(self, what, timeout=300, extra=()):
        p = subprocess.run([os.path.join(SCRIPTS, "kafka.sh"), what, self.dir] + list(extra),
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("kafka.sh %s failed:\n%s" % (what, p.stderr[-2000:]))
        return p.stdout.strip()

    @property
    def bootstrap(self):
        if self.proxied:
            return self.proxied
        with open(os.path.join(self.dir, "bootstrap")) as f:
            return f.read().strip()

    def stop(self):
        self._sh("stop")

    def kill9(self):
        with open(os.path.join(self.dir, "kafka.pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)

    def resume(self):
        self._sh("resume")


class PrivateRedis:
    """A Redis of this test only (scripts/redis.sh, AOF everysec, its own dir)."""

    def __init__(self, root):
        self.dir = os.path.join(root, "redis")
        self._sh("start")
        with open(os.path.join(self.dir, "port")) as f:
            self.port = int(f.read())

    def _sh(self, what):
        p = subprocess.run([os.path.join(SCRIPTS, "redis.sh"), what, self.dir],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("redis.sh %s failed:\n%s" % (what, p.stderr[-2000:]))

    def pid(self):
        with open(os.path.join(self.dir, "redis.pid")) as f:
            return int(f.read())

    def snapshot(self):
        """Copies the AOF as it is now: rollback() after a kill makes Redis come back with
        only these writes, as a host crash loses what appendfsync everysec had not synced."""
        import shutil
        snap = os.path.join(self.dir, "aof-snapshot")
        shutil.rmtree(snap, ignore_errors=True)
        shutil.copytree(os.path.join(self.dir, "appendonlydir"), snap)

    def rollback(self):
        import shutil
        aof = os.path.join(self.dir, "appendonlydir")
        shutil.rmtree(aof)
        shutil.copytree(os.path.join(self.dir, "aof-snapshot"), aof)

    def kill9(self):
        os.kill(self.pid(), signal.SIGKILL)
        wait_for(lambda: not os.path.exists("/proc/%d" % self.pid()) or
                 open("/proc/%d/stat" % self.pid()).read().split(")")[-1].split()[0] == "Z",
                 10)

    def resume(self):
        self._sh("resume")

    def stop(self):
        self._sh("stop")


class FakeGitLab:
    """fake_gitlab's server in this process. after_create: {"status": 502, "count": N} answers
    the next N triggers with that status AFTER the pipeline was created (a proxy's 502)."""

    def __init__(self, trigger_token, api_token):
        self.state = fake_gitlab.State(trigger_token, api_token)
        self.after_create = {"status": 502, "count": 0}
        self.ac_lock = threading.Lock()  # fake_gitlab answers triggers under state.lock
        base = fake_gitlab.make_handler(self.state)
        outer = self

        class Handler(base):
            def _trigger(self, project, form):
                orig = self._send

                def send(status, obj, *a, **kw):
                    with outer.ac_lock:
                        ac = outer.after_create
                        if status == 201 and ac["count"] > 0:
                            ac["count"] -= 1
                            return orig(ac["status"], "<html>502 Bad Gateway</html>",
                                        "text/html")
                    return orig(status, obj, *a, **kw)
                self._send = send
                try:
                    return super()._trigger(project, form)
                finally:
                    self._send = orig

        self.server = fake_gitlab.Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, contains, status, count, retry_after=None):
        with self.state.lock:
            f = {"contains": contains, "status": status, "count": count}
            if retry_after:
                f["retry_after"] = str(retry_after)
            self.state.fails.append(f)

    def triggers(self):
        with self.state.lock:
            return [e for e in self.state.log
                    if e["method"] == "POST" and e["path"].endswith("/trigger/pipeline")]

    def pipelines(self):
        """Pipelines created (a trigger answered by an injected failure created none)."""
        with self.state.lock:
            return [dict(p) for p in self.state.pipelines.values()]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def config_yaml(brokers, redis_port, run, d, api_url, gitlab_url, slack_url, feishu_url,
                extra="", kafka_extra="", redis_where=None):
    chans = "\n".join("  c%02d: {platform: slack, id: %s}" % (i, c)
                      for i, c in enumerate(CHANNELS))
    return """
log: {level: info}
kafka:
  brokers: "%(brokers)s"
  partitions: 6
  produce_timeout_ms: 2500
%(kafka_extra)s
  topics:
    requests: "fq.%(run)s.requests"
    results: "fq.%(run)s.results"
    audit: "fq.%(run)s.audit"
    pipeline_events: "fq.%(run)s.pipeline-events"
    dlq: "fq.%(run)s.dlq"
  groups: {worker: "fq-%(run)s-worker", notifier: "fq-%(run)s-notifier"}
redis: {%(redis_where)s, prefix: "fq%(run)s:"}
ingress: {listen: 127.0.0.1, port: 0, threads: 1}
limits: {max_body: 8k, max_text: 500}
worker: {lease_ms: 3000, poll_min_ms: 300, poll_max_ms: 1000}
notifier: {max_attempts: 30, backoff_base_ms: 100, backoff_max_ms: 2000,
           slack_channel_interval_ms: 0, http_timeout_ms: 5000}
slack:
  enabled: true
  signing_secret: "file:%(d)s/slack_secret"
  bot_token: "file:%(d)s/bot_token"
  api_base: "%(slack)s/api"
  command: /ops
feishu:
  enabled: true
  app_id: cli_test
  app_secret: "file:%(d)s/fs_secret"
  verification_token: "file:%(d)s/fs_token"
  encrypt_key: "file:%(d)s/fs_key"
  bot_open_id: ou_corpus_bot
  api_base: "%(feishu)s/open-apis"
dingtalk: {enabled: true, app_secret: "file:%(d)s/dt_secret"}
mattermost: {enabled: true, tokens: {corpus: "file:%(d)s/mm_token"}}
discord: {enabled: true, application_id: "1",
          public_key: d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a}
webex: {enabled: true, webhook_secret: "file:%(d)s/wx_secret", bot_person_id: p-corpus-bot}
gitlab:
  base_url: "%(gitlab)s"
  api_token: "file:%(d)s/api_token"
  webhook_token: "file:%(d)s/hook"
secrets:
  api: "file:%(d)s/api_token"
  trig: "file:%(d)s/trig"
people:
  alice: {gitlab_login: alice, slack: [UALICE], feishu: [ou_alice], roles: [sre]}
channels:
%(chans)s
  corpus-slack: {platform: slack, id: CC00}
  corpus-slack-events: {platform: slack, id: CC01}
  corpus-feishu: {platform: feishu, id: oc_corpus}
commands:
  flag set:
    description: a non-idempotent direct call
    usage: flag set NAME
    mode: direct
    args:
      - {name: name, required: true, regex: "fx[0-9]+"}
    http:
      method: POST
      base_url: "%(api)s"
      path: "/api/v4/features/{{args.name}}"
      headers: {PRIVATE-TOKEN: "{{secrets.api}}"}
      body: "value=on"
      body_type: form
      timeout_ms: 8000
      reply_template: "{{response.name}} is {{response.state}}"
  echo:
    description: free text into a path, a query, a header and a body (hostile input)
    usage: echo TEXT
    mode: direct
    args:
      - {name: text, required: true}
    http:
      method: POST
      base_url: "%(api)s/api/v4/echo"
      path: "/{{args.text}}"
      query: "q={{args.text}}"
      headers: {X-Text: "{{args.text}}"}
      body: '{"text": "{{args.text}}"}'
      timeout_ms: 5000
      reply_template: "echoed {{response.name}}"
  pipe:
    description: a tracked pipeline (trigger_and_wait)
    usage: pipe TAG
    mode: trigger_and_wait
    args:
      - {name: tag, required: true, regex: "fx[0-9]+"}
    pipeline:
      project: ops%%2Ffaults
      ref: s-success-4000
      trigger_token: trig
      variables: {TAG: "{{args.tag}}", CHATOPS_REQUEST: "{{request.id}}"}
      timeout_s: 300
      progress_interval_s: 0
policy:
  - {name: all, roles: [sre], commands: ["*"]}
%(extra)s
""" % {"brokers": brokers, "redis": redis_port, "run": run, "d": d, "api": api_url,
       "gitlab": gitlab_url, "slack": slack_url, "feishu": feishu_url, "chans": chans,
       "extra": extra, "kafka_extra": kafka_extra,
       "redis_where": redis_where or "host: 127.0.0.1, port: %d" % redis_port}


class Stack:
    """Fakes + config + topics; services are added with add(). private: "kafka" and/or
    "redis" to start private servers (needed when the test stops or kills them)."""

    def __init__(self, name, private=(), extra_config="", redis_port=None, kafka_proxy=None,
                 kafka_extra="", redis_where=None):
        self.name = name
        self.run = uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix="cqf-%s-" % name)
        self.kafka = PrivateKafka(self.dir, kafka_proxy) if "kafka" in private else None
        self.redis = PrivateRedis(self.dir) if "redis" in private else None
        self.brokers = self.kafka.bootstrap if self.kafka else cqt.stack_file("kafka/bootstrap")
        self.redis_port = redis_port or (self.redis.port if self.redis else
                                         int(cqt.stack_file("redis/port")))
        for k, v in SECRETS.items():
            with open(os.path.join(self.dir, k), "w") as f:
                f.write(v)
        self.slack = FakeSlack(token=SECRETS["bot_token"]).start()
        self.feishu = FakeFeishu(app_secret=SECRETS["fs_secret"]).start()
        self.api = FakeAPI().start()
        self.gitlab = FakeGitLab(SECRETS["trig"], SECRETS["api_token"])
        self.extra_config = extra_config
        self.kafka_extra = kafka_extra  # more lines of the kafka: map, e.g. "  key: value"
        self.redis_where = redis_where  # replaces "host: ..., port: ..." in the redis: map
        self.cfg = os.path.join(self.dir, "config.yaml")
        self.write_config()
        p = subprocess.run([os.path.join(BUILD, "tools", "chatopsctl"), "--config", self.cfg,
                            "topics", "ensure"], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("topics ensure failed: %s" % p.stderr)
        self.services = []
        self.ingress = None
        self.t0 = time.time()

    def write_config(self, redis_port=None):
        with open(self.cfg, "w") as f:
            f.write(config_yaml(self.brokers, redis_port or self.redis_port, self.run, self.dir,
                                "http://127.0.0.1:%d" % self.api.port, self.gitlab.url,
                                self.slack.url, self.feishu.url, self.extra_config,
                                self.kafka_extra, self.redis_where))

    def variant(self, name, drop=(), replace=None):
        """A copy of the config without the lines containing any of drop, or with them
        replaced by replace[d] at the same indentation (e.g. the Feishu encrypt_key replaced
        by require_encrypt_key: false, for an ingress that authenticates Feishu by token)."""
        path = os.path.join(self.dir, name + ".yaml")
        replace = replace or {}
        with open(self.cfg) as f, open(path, "w") as g:
            for line in f:
                hit = next((d for d in drop if d in line), None)
                if hit is None:
                    g.write(line)
                elif hit in replace:
                    indent = line[:len(line) - len(line.lstrip())]
                    g.write(indent + replace[hit] + "\n")
        return path

    def add(self, kind, name=None, args=(), ready=True, cfg=None):
        name = name or "%s%d" % (kind, 1 + sum(1 for s in self.services if s.kind == kind))
        if kind == "worker":
            args = ["--id", "%s-%s" % (name, self.run)] + list(args)
        s = cqt.Service(kind, cfg or self.cfg, name, self.dir, args=args)
        self.services.append(s)
        if kind == "ingress":
            self.ingress = s
        if ready and not s.wait_ready(90):
            raise RuntimeError("%s not ready:\n%s" % (name, s.logs()[-3000:]))
        return s

    def standard(self, workers=2, notifiers=1):
        self.add("ingress")
        for _ in range(workers):
            self.add("worker")
        for _ in range(notifiers):
            self.add("notifier")
        return self

    def log_count(self, pattern, kinds=("worker", "notifier", "ingress")):
        """Lines matching the regex pattern in the logs of the services of these kinds."""
        rx = re.compile(pattern)
        return sum(1 for s in self.services if s.kind in kinds
                   for line in s.logs().splitlines() if rx.search(line))

    def crashed(self):
        """Services that died on their own (not by the test's kill/stop)."""
        return [s for s in self.services if not s.alive() and not getattr(s, "ended", False)]

    def kill(self, s, sig=signal.SIGKILL):
        s.ended = True
        rc = s.kill(sig)
        log("sent signal %d to %s (pid %d) -> %s" % (sig, s.name, s.pid, rc))
        return rc

    def stop_service(self, s):
        s.ended = True
        rc = s.stop()
        log("stopped %s -> %s" % (s.name, rc))
        return rc

    def close(self):
        for s in self.services:
            if s.alive():
                s.stop()
        for f in (self.slack, self.feishu, self.api, self.gitlab):
            try:
                f.stop()
            except Exception:  # noqa: BLE001 - best effort at the end
                pass
        if self.kafka:
            self.kafka.stop()
        if self.redis:
            self.redis.stop()

    # ---- the load --------------------------------------------------------------------------

    def slash(self, tag, text, trigger, retry=0, channel=None, timeout=15):
        fields = {"token": "legacy", "team_id": "TFAULT", "team_domain": "faults",
                  "channel_id": channel or CHANNELS[tag % len(CHANNELS)], "channel_name": "ops",
                  "user_id": "UALICE", "user_name": "alice", "command": "/ops", "text": text,
                  "response_url": self.slack.response_url("fx%d" % tag),
                  "trigger_id": trigger}
        body = urllib.parse.urlencode(fields).encode()
        h = cqt.slack_sign(SLACK_SECRET, body)
        h["Content-Type"] = "application/x-www-form-urlencoded"
        if retry:
            h["X-Slack-Retry-Num"] = str(retry)
            h["X-Slack-Retry-Reason"] = "http_timeout"
        try:
            st, _, out = cqt.http("POST", "http://127.0.0.1:%d/slack/commands" %
                                  self.ingress.port, body, h, timeout=timeout)
            return st, out.decode("utf-8", "replace")
        except OSError as e:
            return 0, "connection error: %s" % e


class Load:
    """n commands (text_of(i) -> "flag set fx<i>"), rate per second, `conc` at once.
    resend: fraction of commands the "platform" sends again (same trigger id,
    X-Slack-Retry-Num: 1) after the first answer."""

    def __init__(self, stack, n, text_of=None, rate=40, conc=8, resend=0.0, first=0):
        self.stack, self.n, self.rate, self.conc = stack, n, rate, conc
        self.text_of = text_of or (lambda i: "flag set fx%d" % i)
        self.tags = list(range(first, first + n))
        self.triggers = {i: "%s.%d.%s" % (stack.run, i, uuid.uuid4().hex[:8]) for i in self.tags}
        self.answers = {}   # tag -> [(status, text)] in send order
        self.resend = set(self.tags[::int(1 / resend)]) if resend else set()
        self.lock = threading.Lock()
        self.sent_count = 0
        self.thread = None

    def _one(self, i):
        st, text = self.stack.slash(i, self.text_of(i), self.triggers[i])
        with self.lock:
            self.answers.setdefault(i, []).append((st, text))
        if i in self.resend:
            st2, text2 = self.stack.slash(i, self.text_of(i), self.triggers[i], retry=1)
            with self.lock:
                self.answers[i].append((st2, text2))

    def _run(self):
        with concurrent.futures.ThreadPoolExecutor(self.conc) as ex:
            t0 = time.time()
            futs = []
            for k, i in enumerate(self.tags):
                delay = t0 + k / float(self.rate) - time.time()
                if delay > 0:
                    time.sleep(delay)  # pacing of the load itself, not a wait for a result
                futs.append(ex.submit(self._one, i))
                with self.lock:
                    self.sent_count = k + 1
            for f in futs:
                f.result()

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def run(self):
        return self.start().join()

    def join(self, timeout=600):
        self.thread.join(timeout)
        return self

    def sent_so_far(self):
        with self.lock:
            return self.sent_count


def _final_text(body):
    try:
        msg = json.loads(body)
    except ValueError:
        return None
    t = msg.get("text") or ""
    return t if t.startswith(FINAL_LABELS) else None


class Counts:
    """What the fakes recorded, per tag, for the commands of one or more Loads."""

    def __init__(self, stack, loads):
        self.stack = stack
        self.loads = loads if isinstance(loads, list) else [loads]
        self.refresh()

    def refresh(self):
        tags, answers, resend = [], {}, set()
        for ld in self.loads:
            with ld.lock:
                tags += ld.tags
                answers.update({k: list(v) for k, v in ld.answers.items()})
            resend |= ld.resend
        self.tags = tags
        # acked = the acknowledgement "queued: <command> · req <id>"; "outcome unknown ... may
        # have been queued" is not one (it may run once, or never)
        self.acked = {i for i, a in answers.items() if any(
            st == 200 and "queued:" in t and "NOT run" not in t and "unknown" not in t.lower()
            for st, t in a)}
        self.refused = {i: a for i, a in answers.items() if i not in self.acked}
        self.executed = {}
        for r in self.stack.api.requests("/api/v4/features/"):
            m = TAG_RE.search(r["path"])
            if m and r["method"] == "POST":
                k = int(m.group(1))
                self.executed[k] = self.executed.get(k, 0) + 1
        for p in self.stack.gitlab.pipelines():
            for k, v in p["variables"]:
                m = TAG_RE.fullmatch(v) if k == "TAG" else None
                if m:
                    self.executed[int(m.group(1))] = self.executed.get(int(m.group(1)), 0) + 1
        self.answered = {}
        self.unknown_finals = {}  # finals saying the outcome is unknown (documented answers)
        for e in self.stack.slack.requests():
            if e["status"] != 200 or e["method"] != "POST":
                continue
            if e["path"].startswith("/api/") and '"ok":true' not in e.get("answer", ""):
                continue
            t = _final_text(e["body"])
            m = TAG_RE.search(t or "")
            if m:
                k = int(m.group(1))
                # "outcome unknown" is its own answer (its own once-key): after a Redis crash
                # that lost the last second (everysec) it may follow the true final; counted
                # apart, and a duplicate only when it comes twice
                body = e["body"] if isinstance(e["body"], str) else str(e["body"])
                d = self.unknown_finals if re.search(r"outcome (is )?unknown", body) \
                    else self.answered
                d[k] = d.get(k, 0) + 1
        self.lost = sorted(i for i in self.acked
                           if not self.answered.get(i) and not self.unknown_finals.get(i))
        self.dups = sorted(i for i in tags if self.executed.get(i, 0) > 1 or
                           self.answered.get(i, 0) > 1 or self.unknown_finals.get(i, 0) > 1)
        # the documented answers when the queue did not confirm: "was NOT run ... Please
        # retry" (then it must not run), or "outcome unknown" (it may have run, once)
        self.notrun = {i for i, a in self.refused.items()
                       if any("was NOT run" in t and "retry" in t for _, t in a)}
        self.unknown = {i for i, a in self.refused.items()
                        if any("unknown" in t.lower() for _, t in a)}
        self.undocumented = sorted(set(self.refused) - self.notrun - self.unknown)
        self.notrun_ran = sorted(i for i in self.notrun if self.executed.get(i))
        self.resend = resend
        return self

    def line(self):
        return ("sent %d acked %d executed %d answered %d duplicates %d lost %d"
                " (finals 'outcome unknown': %d; not acked: %d 'NOT run', %d 'outcome unknown')"
                ) % (len(self.tags), len(self.acked), sum(self.executed.values()),
                     sum(self.answered.values()), len(self.dups), len(self.lost),
                     sum(self.unknown_finals.values()), len(self.notrun), len(self.unknown))

    def settled(self):
        """Every acked command answered with a final."""
        return not self.refresh().lost


def finish(stack, loads, name, settle_timeout=120, quiet_s=2.0, expect_all_acked=False):
    """Waits until every acked command is answered (or settle_timeout), then until the fakes
    stay quiet for quiet_s (so late duplicates show), prints the counts line and the reasons,
    checks the promises; returns the exit status."""
    loads = loads if isinstance(loads, list) else [loads]
    for ld in loads:
        ld.join()
    c = Counts(stack, loads)
    t0 = time.time()
    wait_for(c.settled, settle_timeout, 0.2)
    settle_s = time.time() - t0

    def activity():
        return (len(stack.slack.requests()), len(stack.api.requests()),
                len(stack.gitlab.triggers()))
    last, since = activity(), time.time()
    end = time.time() + 60
    while time.time() < end and time.time() - since < quiet_s:
        time.sleep(0.1)
        now = activity()
        if now != last:
            last, since = now, time.time()
    c.refresh()
    log(name)
    print(c.line(), flush=True)
    # every fault's counts, collected per build tree for scripts/test.sh and reliability.md
    with open(os.path.join(BUILD, "faults-counts.txt"), "a") as f:
        f.write("%-28s %s\n" % (os.path.basename(sys.argv[0])[5:-3], c.line()))
    log("settled in %.1f s; not acked %d (documented error for all but %d); platform re-sends "
        "%d; total run %.0f s" % (settle_s, len(c.refused), len(c.undocumented), len(c.resend),
                                  time.time() - stack.t0))
    cqt.check(not c.lost, "lost = 0 (acked, never answered: %s)" % _few(c.lost, c))
    cqt.check(not c.dups, "duplicates = 0 (%s)" % _few(c.dups, c))
    cqt.check(not c.undocumented, "every command not acked got the documented 'was NOT run' "
              "error (%s)" % _few(c.undocumented, c))
    cqt.check(not c.notrun_ran, "no command answered 'NOT run' ran anyway (%s)"
              % _few(c.notrun_ran, c))
    if expect_all_acked:
        cqt.check(not c.refused, "every command acked (%d not: %s)" % (
            len(c.refused), _few(sorted(c.refused), c)))
    dead = stack.crashed()
    cqt.check(not dead, "no service died on its own (%s)" % ", ".join(
        "%s rc %s" % (s.name, s.proc.returncode) for s in dead))
    # the survivors drain and exit 0 on SIGTERM (under ASan also: no leak)
    for s in stack.services:
        if s.alive():
            rc = stack.stop_service(s)
            cqt.check(rc == 0, "%s exits 0 on SIGTERM (rc %s)" % (s.name, rc))
    return cqt.summary(stack.dir)


def _few(tags, c, n=5):
    out = []
    for i in tags[:n]:
        a = [t[:120] for _, t in c.refused.get(i, [])] if i in c.refused else ""
        out.append("fx%d executed %d answered %d%s" % (i, c.executed.get(i, 0),
                                                      c.answered.get(i, 0),
                                                      " said %r" % a if a else ""))
    return "; ".join(out) + (" ... %d more" % (len(tags) - n) if len(tags) > n else "")


def main(test):
    """Runs test() -> exit status, with the stack's logs kept on failure."""
    t0 = time.time()
    try:
        rc = test()
    except Exception as e:  # noqa: BLE001 - any harness error is a failed test with its reason
        import traceback
        traceback.print_exc()
        cqt.check(False, "harness: %s" % e)
        rc = 1
    log("runtime %.0f s" % (time.time() - t0))
    sys.exit(rc)
