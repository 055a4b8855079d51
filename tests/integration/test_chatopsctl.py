#!/usr/bin/env python3
"""chatopsctl end to end against real Kafka/Redis (the ctest fixtures) and stand-ins for the
ingress: --help, exit codes, `config check` on examples/ops.yaml and on broken configs
(file:line:col in one line), `topics ensure`, `send` (a mock ingress verifies the Slack v0
signature and decrypts/verifies the Feishu event with the openssl CLI, then "replies" through
the fake Slack/Feishu the way the notifier does), `pipelines` from tracker-shaped Redis keys,
and `dlq list` / `dlq replay` on a private DLQ topic (letters of both schema versions), and
`audit list` on a private audit topic.
"""
import hashlib
import hmac
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CQ_BUILD_DIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import check, stack_file  # noqa: E402
cqt.VERBOSE = True
STACK = os.environ.get("CQ_STACK_DIR")
CTL = os.path.join(BUILD, "tools", "chatopsctl")
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_feishu import FakeFeishu  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402

UNIQ = "%d%04d" % (os.getpid(), int(time.time() * 1000) % 10000)
SECRETS = {
    "SLACK_SIGNING_SECRET": "ctl-slack-signing", "SLACK_BOT_TOKEN": "xoxb-ctl",
    "FEISHU_APP_SECRET": "ctl-feishu-app-secret", "FEISHU_VERIFICATION_TOKEN": "ctl-vt",
    "FEISHU_ENCRYPT_KEY": "ctl encrypt key", "GITLAB_API_TOKEN": "ctl-api",
    "GITLAB_WEBHOOK_TOKEN": "ctl-hook", "LB_TRIGGER_TOKEN": "ctl-lb",
    "DEPLOY_TRIGGER_TOKEN": "ctl-deploy",
    # issue 18's platforms, enabled in examples/ops.yaml
    "DINGTALK_APP_SECRET": "ctl-dt", "MATTERMOST_COMMAND_TOKEN": "ctl-mm-cmd",
    "MATTERMOST_BOT_TOKEN": "ctl-mm-bot", "DISCORD_BOT_TOKEN": "ctl-dc-bot",
    "WEBEX_WEBHOOK_SECRET": "ctl-wx-hook", "WEBEX_BOT_TOKEN": "ctl-wx-bot",
}


def env(**extra):
    e = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("CQ_")
         and k != "CHATOPS_CONFIG"}
    e.update(SECRETS)
    e["CQ_RUN_DIR"] = "/nonexistent-run-dir"  # never pick up a developer's .stack/env
    e.update(extra)
    return e


def ctl(*args, timeout=120, **extra):
    p = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=timeout,
                       env=env(**extra))
    return p.returncode, p.stdout, p.stderr


# ------------------------------------------------------------------ usage and exit codes

def test_usage():
    rc, out, err = ctl("--help")
    check(rc == 0, "--help exits 0")
    for word in ("config check", "topics ensure", "send", "--as", "--channel", "--platform",
                 "pipelines", "dlq list", "dlq replay", "exit codes"):
        check(word in out, "--help mentions %r" % word)
    check("audit list" in out, "--help mentions 'audit list'")
    rc, out, err = ctl()
    check(rc == 2 and "usage:" in err, "no command: exit 2 with usage on stderr")
    rc, out, err = ctl("frobnicate")
    check(rc == 2 and err.count("\n") == 1 and "unknown command 'frobnicate'" in err,
          "unknown command: exit 2, one line (%r)" % err)
    rc, out, err = ctl("--bogus", "pipelines")
    check(rc == 2 and err.count("\n") == 1 and "--bogus" in err, "unknown option: exit 2")
    rc, out, err = ctl("config", "check")
    check(rc == 2 and err.count("\n") == 1, "config check without FILE: exit 2")
    rc, out, err = ctl("dlq", "shred")
    check(rc == 2 and err.count("\n") == 1, "dlq with a bad sub-command: exit 2 (%r)" % err)
    rc, out, err = ctl("send")
    check(rc == 2 and err.count("\n") == 1, "send without text: exit 2")
    rc, out, err = ctl("send", "--platform", "irc", "/ops help")
    check(rc == 2 and "slack or feishu" in err, "send --platform irc: exit 2")


# ------------------------------------------------------------------ config check

EXAMPLE = os.path.join(SRC, "examples", "ops.yaml")


def line_of(text, needle):
    return text[:text.index(needle)].count("\n") + 1


def test_config_check(tmp):
    rc, out, err = ctl("config", "check", EXAMPLE)
    check(rc == 0 and "ok" in out and err == "", "config check examples/ops.yaml exits 0 (%s)"
          % (err.strip() or out.strip()))
    with open(EXAMPLE) as f:
        base = f.read()
    cases = [
        # (name, transformed text, marker whose line the error must name, words in the message)
        ("unknown key", base.replace("\nkafka:\n", "\nkafak:\n", 1), "kafak:", ["kafak"]),
        ("partitions out of range", base.replace("partitions: 6", "partitions: 0", 1),
         "partitions: 0", ["partitions"]),
        ("partitions not a number", base.replace("partitions: 6", "partitions: lots", 1),
         "partitions: lots", ["partitions"]),
        ("unknown mode", base.replace("mode: trigger_and_wait", "mode: trigger_and_pray", 1),
         "mode: trigger_and_pray", ["mode"]),
        ("yaml syntax", base.replace("  level: info", "  level: [info", 1), None, []),
    ]
    for name, text, marker, words in cases:
        path = os.path.join(tmp, "broken-%s.yaml" % name.replace(" ", "-"))
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = ctl("config", "check", path)
        m = re.match(r"^(.*?):(\d+):(\d+): (.+)\n$", err)
        check(rc == 1, "config check (%s) exits 1" % name)
        check(bool(m) and m.group(1) == path and out == "",
              "config check (%s): one line file:line:col: ... on stderr (%r)" % (name, err))
        if m and marker:
            check(int(m.group(2)) == line_of(text, marker),
                  "config check (%s) names line %d (got %s)" % (name, line_of(text, marker),
                                                             m.group(2)))
        for w in words:
            check(bool(m) and w in m.group(4), "config check (%s) mentions %r" % (name, w))
    # a secret whose variable is unset (CI, a laptop): a warning naming it, exit 0; an error
    # with --strict; the value is never printed
    e = env()
    del e["SLACK_SIGNING_SECRET"]
    p = subprocess.run([CTL, "config", "check", EXAMPLE], capture_output=True, text=True, env=e)
    check(p.returncode == 0 and "SLACK_SIGNING_SECRET" in p.stderr and "warning:" in p.stderr
          and p.stderr.count("\n") == 1 and "1 secret(s) not resolved" in p.stdout,
          "unset secret: exit 0 with one warning naming the variable (%r)" % p.stderr)
    p = subprocess.run([CTL, "config", "check", "--strict", EXAMPLE], capture_output=True,
                       text=True, env=e)
    check(p.returncode == 1 and "SLACK_SIGNING_SECRET" in p.stderr,
          "unset secret with --strict: exit 1 naming the variable")
    p = subprocess.run([CTL, "config", "check", "--strict", EXAMPLE], capture_output=True,
                       text=True, env=env())
    check(p.returncode == 0 and p.stderr == "", "--strict with every secret set: exit 0")
    # none of the secrets: everything else is still validated
    refs = sorted(set(re.findall(r"^[^#\n]*\$\{([A-Z0-9_]+)\}", base, re.M)))
    bare = {k: v for k, v in env().items() if k not in refs}
    p = subprocess.run([CTL, "config", "check", EXAMPLE], capture_output=True, text=True, env=bare)
    check(p.returncode == 0 and all(r in p.stderr for r in refs),
          "no secrets at all: exit 0, each unresolved one named (%d)" % len(refs))
    check(not any(v and len(v) > 5 and v in p.stderr + p.stdout for k, v in env().items()
                  if k in refs), "no secret value is printed")
    broken = os.path.join(tmp, "broken-nosecrets.yaml")
    with open(broken, "w") as f:
        f.write(base.replace("partitions: 6", "partitions: 0", 1))
    p = subprocess.run([CTL, "config", "check", broken], capture_output=True, text=True, env=bare)
    check(p.returncode == 1 and re.search(r"broken-nosecrets.yaml:\d+:\d+: kafka.partitions",
                                          p.stderr),
          "without secrets a real error still fails with file:line:col")
    rc, out, err = ctl("config", "check", os.path.join(tmp, "missing.yaml"))
    check(rc == 1 and "missing.yaml" in err and err.count("\n") == 1, "missing file: exit 1")


# ------------------------------------------------------------------ send

class MockIngress:
    """Verifies what chatopsctl sends like the ingress does, answers like it, and then
    posts ack/progress/final replies to the fake platform like the notifier would."""

    def __init__(self, slack, feishu, final=True):
        self.slack, self.feishu, self.final = slack, feishu, final
        self.seen = []
        self.problems = []
        mock = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                status, body, after = mock.handle(self.path, self.headers, raw)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if after:
                    threading.Thread(target=after, daemon=True).start()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def problem(self, what):
        self.problems.append(what)

    def handle(self, path, headers, raw):
        if path == "/slack/commands":
            return self.slack_cmd(headers, raw)
        if path == "/feishu/events":
            return self.feishu_event(headers, raw)
        self.problem("unexpected path " + path)
        return 404, "{}", None

    def slack_cmd(self, headers, raw):
        ts = headers.get("X-Slack-Request-Timestamp", "")
        sig = headers.get("X-Slack-Signature", "")
        want = cqt.slack_signature(SECRETS["SLACK_SIGNING_SECRET"], ts, raw)
        if not hmac.compare_digest(sig, want) or abs(time.time() - int(ts or 0)) > 300:
            self.problem("bad slack signature")
            return 401, '{"error":"bad signature"}', None
        if headers.get("Content-Type") != "application/x-www-form-urlencoded":
            self.problem("slack content type " + str(headers.get("Content-Type")))
        form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        self.seen.append(form)
        for k in ("token", "team_id", "team_domain", "channel_id", "channel_name", "user_id",
                  "user_name", "command", "text", "api_app_id", "response_url", "trigger_id"):
            if k not in form:
                self.problem("slack form lacks " + k)
        url = form.get("response_url", "")

        def replies():
            time.sleep(0.3)
            post(url, {"response_type": "in_channel", "replace_original": False,
                       "text": "Accepted", "blocks": [section(":inbox_tray: *Accepted* `lb weight`"),
                                                      section("pipeline #7 created")]})
            time.sleep(0.3)
            post(url, {"replace_original": True, "text": "In progress",
                       "blocks": [section(":hourglass_flowing_sand: *In progress* `lb weight`"),
                                  section("running: apply")]})
            if self.final:
                time.sleep(0.3)
                post(url, {"replace_original": True, "text": "Succeeded",
                           "blocks": [section(":white_check_mark: *Succeeded* `lb weight`"),
                                      section("blue is now at 30%"),
                                      {"type": "context", "elements": [
                                          {"type": "mrkdwn", "text": "Pipeline #7: success"}]},
                                      {"type": "actions", "elements": [
                                          {"type": "button", "url": "http://gl/p/7",
                                           "text": {"type": "plain_text",
                                                    "text": "Open pipeline #7"}}]}]})
        return 200, json.dumps({"response_type": "ephemeral",
                                "text": "queued: %s %s · req 7f3a" % (form.get("command"),
                                                                       form.get("text"))}), replies

    def feishu_event(self, headers, raw):
        ek = SECRETS["FEISHU_ENCRYPT_KEY"]
        ts, nonce = headers.get("X-Lark-Request-Timestamp", ""), headers.get("X-Lark-Request-Nonce", "")
        want = cqt.feishu_signature(ek, ts, nonce, raw)
        if headers.get("X-Lark-Signature") != want:
            self.problem("bad feishu signature")
            return 401, "{}", None
        enc = __import__("base64").b64decode(json.loads(raw)["encrypt"])
        key = hashlib.sha256(ek.encode()).hexdigest()
        p = subprocess.run(["openssl", "enc", "-d", "-aes-256-cbc", "-K", key,
                            "-iv", enc[:16].hex()], input=enc[16:], capture_output=True)
        if p.returncode != 0:
            self.problem("feishu body does not decrypt: " + p.stderr.decode())
            return 400, "{}", None
        ev = json.loads(p.stdout)
        self.seen.append(ev)
        hdr, msg = ev.get("header", {}), ev.get("event", {}).get("message", {})
        if ev.get("schema") != "2.0" or hdr.get("event_type") != "im.message.receive_v1" \
                or hdr.get("token") != SECRETS["FEISHU_VERIFICATION_TOKEN"]:
            self.problem("feishu header " + json.dumps(hdr))
        mid = msg.get("message_id", "")
        fs = self.feishu

        def replies():
            tok = json.loads(post(fs.url + "/open-apis/auth/v3/tenant_access_token/internal",
                                  {"app_id": fs.app_id, "app_secret": fs.app_secret}))
            auth = {"Authorization": "Bearer " + tok["tenant_access_token"]}
            url = "%s/open-apis/im/v1/messages/%s/reply" % (fs.url, mid)
            post(url, {"msg_type": "text", "content": json.dumps({"text": "on it"}),
                       "uuid": "req-a-0"}, auth)
            post(url, {"msg_type": "text", "content": json.dumps({"text": "on it"}),
                       "uuid": "req-a-0"}, auth)  # a duplicate send: shown once
            card = {"header": {"title": {"tag": "plain_text", "content": "Succeeded: flag get"}},
                    "elements": [{"tag": "div", "text": {"tag": "lark_md",
                                                         "content": "`new_ui` is on"}}]}
            post(url, {"msg_type": "interactive", "content": json.dumps(card),
                       "uuid": "req-f-1"}, auth)
        return 200, "{}", replies


def section(text):
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def post(url, obj, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers=h, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def derived_config(tmp, slack, feishu):
    with open(EXAMPLE) as f:
        text = f.read()
    text = text.replace("http://127.0.0.1:18081/api", slack.url + "/api")
    text = text.replace("http://127.0.0.1:18082/open-apis", feishu.url + "/open-apis")
    text = text.replace("app_id: cli_demo_chatops", "app_id: " + feishu.app_id)
    text = text.replace('prefix: "chatops:"', 'prefix: "ctltest%s:"' % UNIQ)
    for t in ("requests", "results", "audit", "pipeline-events", "dlq"):
        text = text.replace("chatops.%s\n" % t, "ctltest%s.%s\n" % (UNIQ, t))
    text = text.replace("events: chatops.events", "events: ctltest%s.events" % UNIQ)
    text = text.replace("events: chatops-events", "events: ctltest%s-events" % UNIQ)
    path = os.path.join(tmp, "ctl.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_send(tmp):
    slack = FakeSlack().start()
    feishu = FakeFeishu(app_id="cli_ctltest", app_secret=SECRETS["FEISHU_APP_SECRET"]).start()
    cfg = derived_config(tmp, slack, feishu)
    ing = MockIngress(slack, feishu)
    rc, out, err = ctl("--config", cfg, "send", "--ingress", ing.url, "--as", "bob",
                       "--channel", "ops", "--timeout", "20", "/ops lb weight blue 30")
    check(rc == 0, "send (slack) exits 0 after the final reply (%s)" % err.strip())
    check(not ing.problems, "mock ingress accepted the Slack request: %s" % ing.problems)
    form = ing.seen[0] if ing.seen else {}
    check(form.get("user_id") == "U0BOB00001" and form.get("user_name") == "bob",
          "--as bob became Slack user U0BOB00001")
    check(form.get("channel_id") == "C0OPS00001" and form.get("channel_name") == "ops",
          "--channel ops became C0OPS00001")
    check(form.get("command") == "/ops" and form.get("text") == "lb weight blue 30",
          "command and text split as Slack does")
    check(form.get("response_url", "").startswith(slack.url + "/response/"),
          "response_url points at the fake Slack sink")
    check("queued: /ops lb weight blue 30" in out, "prints the ingress's immediate answer")
    check(out.count("reply") == 3 and "*In progress*" in out and "blue is now at 30%" in out
          and "[Open pipeline #7] http://gl/p/7" in out and "Pipeline #7: success" in out,
          "prints ack, progress and final as the user sees them:\n" + out)
    check(out.index("*Accepted*") < out.index("*In progress*") < out.index("*Succeeded*"),
          "replies in order")

    # default user: the person with the most roles (carol), default channel: first slack one
    ing.seen.clear()
    rc, out, err = ctl("--config", cfg, "send", "--ingress", ing.url, "--timeout", "20",
                       "/ops whoami")
    form = ing.seen[0] if ing.seen else {}
    check(rc == 0 and form.get("user_id") == "U0CAROL001" and form.get("channel_id") == "C0OPS00001",
          "defaults: carol in ops (%s)" % form)
    # an unknown user as a raw id
    ing.seen.clear()
    ctl("--config", cfg, "send", "--ingress", ing.url, "--as", "U0NOBODY99", "--timeout", "20",
        "/ops help")
    check(ing.seen and ing.seen[0].get("user_id") == "U0NOBODY99", "--as RAWID is sent as is")

    # no final reply: --timeout gives exit 1 with one line
    ing2 = MockIngress(slack, feishu, final=False)
    t0 = time.time()
    rc, out, err = ctl("--config", cfg, "send", "--ingress", ing2.url, "--timeout", "3",
                       "/ops lb weight blue 40")
    check(rc == 1 and "no final reply within 3 s" in err and err.count("\n") == 1
          and 2.5 < time.time() - t0 < 15, "no final reply: exit 1 after --timeout (%r)" % err)
    check(out.count("reply") == 2, "the replies that came are still shown")

    # feishu: encrypted, signed, mention of the bot, reply matched by message_id
    rc, out, err = ctl("--config", cfg, "send", "--ingress", ing.url, "--as", "alice",
                       "--channel", "ops-feishu", "--timeout", "20", "/ops flag get new_ui")
    check(rc == 0, "send (feishu) exits 0 after the final reply (%s)" % err.strip())
    check(not ing.problems, "mock ingress verified and decrypted the Feishu event: %s"
          % ing.problems)
    ev = ing.seen[-1] if ing.seen else {}
    msg = ev.get("event", {}).get("message", {}) if isinstance(ev, dict) else {}
    content = json.loads(msg.get("content", "{}"))
    check(content.get("text") == "@_user_1 flag get new_ui", "content mentions the bot: %s"
          % content)
    check(msg.get("mentions", [{}])[0].get("id", {}).get("open_id") == "ou_chatops_bot"
          and msg.get("mentions", [{}])[0].get("key") == "@_user_1", "mention key -> bot open_id")
    check(ev.get("event", {}).get("sender", {}).get("sender_id", {}).get("open_id")
          == "ou_alice0001" and msg.get("chat_id") == "oc_ops000000000000000001",
          "alice/ops-feishu became her open_id and the chat id")
    check(out.count("reply:") == 2 and "on it" in out and "Succeeded: flag get" in out
          and "`new_ui` is on" in out, "Feishu replies shown once each, card texts:\n" + out)

    # nothing listening: exit 1, one line
    rc, out, err = ctl("--config", cfg, "send", "--ingress", "http://127.0.0.1:9", "/ops help")
    check(rc == 1 and err.count("\n") == 1 and "ingress" in err, "no ingress: exit 1 (%r)" % err)
    return cfg


# ------------------------------------------------------------------ pipelines, dlq, topics

def redis_cli(*args):
    return subprocess.run(["redis-cli", "-p", stack_file("redis/port"), *args],
                          capture_output=True, text=True, check=True).stdout


def test_stack_commands(cfg):
    brokers = stack_file("kafka/bootstrap")
    kenv = {"CQ_KAFKA_BROKERS": brokers, "CQ_REDIS_PORT": stack_file("redis/port")}
    rc, out, err = ctl("--config", cfg, "topics", "ensure", **kenv)
    check(rc == 0 and ("ctltest%s.dlq: ok" % UNIQ) in out, "topics ensure creates the topics")

    rc, out, err = ctl("--config", cfg, "pipelines", **kenv)
    check(rc == 0 and "no pipelines in flight" in out, "pipelines: none yet")
    p = "ctltest%s:" % UNIQ
    req = json.dumps({"id": "req-ctl-1", "user": {"id": "U0BOB00001", "name": "bob"},
                      "command": "lb", "text": "weight blue 30"})
    redis_cli("HSET", p + "pl:req-ctl-1", "req", req, "label", "lb weight", "pid", "4711",
              "status", "running", "created", str(int(time.time() * 1000) - 125000))
    redis_cli("ZADD", p + "pl:due", "1", "req-ctl-1")
    redis_cli("SET", p + "pl:lease:req-ctl-1", "worker-xyz", "PX", "60000")
    rc, out, err = ctl("--config", cfg, "pipelines", **kenv)
    row = [ln for ln in out.splitlines() if ln.startswith("req-ctl-1")]
    check(rc == 0 and row and "#4711" in row[0] and "running" in row[0] and "bob" in row[0]
          and "worker-xyz" in row[0] and "2m05s" in row[0] and row[0].endswith("lb weight blue 30"), "pipelines row: %s" % out)
    rc, out, err = ctl("--config", cfg, "pipelines", **dict(kenv, CQ_REDIS_PORT="1"))
    check(rc == 1 and err.count("\n") == 1, "pipelines without Redis: exit 1, one line")

    dlq = "ctltest%s.dlq" % UNIQ
    results = "ctltest%s.results" % UNIQ
    requests = "ctltest%s.requests" % UNIQ
    rc, out, err = ctl("--config", cfg, "dlq", "list", **kenv)
    check(rc == 0 and "is empty" in out, "dlq list on an empty topic")
    notifier_letter = {"v": 1, "request_id": "req-dlq-1", "step": "final", "seq": 2,
                       "platform": "slack", "reason": "slack: channel_not_found", "attempts": 3,
                       "source": {"topic": results, "partition": 0, "offset": 7},
                       "result": {"v": 1, "request_id": "req-dlq-1", "step": "final",
                                  "status": "ok", "text": "replay me"}}
    worker_letter = {"v": 1, "service": "worker", "reason": "not a request envelope",
                     "topic": requests, "partition": 0, "offset": 3,
                     "payload_b64": __import__("base64").b64encode(b"not json!").decode()}
    produce = os.path.join(BUILD, "bin", "cqt-produce")
    for key, letter in (("req-dlq-1", notifier_letter), ("k2", worker_letter)):
        subprocess.run([produce, brokers, dlq, key], input=json.dumps(letter), text=True,
                       check=True, capture_output=True)
    rc, out, err = ctl("--config", cfg, "dlq", "list", **kenv)
    check(rc == 0 and "2 dead letter(s)" in out and "slack: channel_not_found" in out
          and "attempts: 3" in out and "replay me" in out and "not a request envelope" in out
          and "not json!" in out, "dlq list shows reason, attempts, original:\n" + out)
    ids = re.findall(r"^(\d+:\d+)  notifier", out, re.M)
    rc, out, err = ctl("--config", cfg, "dlq", "list", "--max", "1", **kenv)
    check(rc == 0 and out.count("original") == 1, "dlq list --max 1 shows one")
    rc, out, err = ctl("--config", cfg, "dlq", "replay", ids[0] if ids else "0:0", **kenv)
    check(rc == 0 and ("-> %s" % results) in out, "dlq replay P:OFFSET -> results topic")
    rc, out, err = ctl("--config", cfg, "dlq", "replay", "--all", **kenv)
    check(rc == 0 and "2 message(s) re-published" in out, "dlq replay --all")
    rc, out, err = ctl("--config", cfg, "dlq", "replay", "12345", **kenv)
    check(rc == 1 and err.count("\n") == 1, "dlq replay of a missing offset: exit 1")
    consume = os.path.join(BUILD, "bin", "cqt-consume")
    got = subprocess.run([consume, brokers, results, "2", "5000"], capture_output=True,
                         text=True).stdout
    vals = [json.loads(json.loads(ln)["value"]) for ln in got.splitlines() if ln.startswith("{")]
    check(len(vals) == 2 and all(v.get("text") == "replay me" for v in vals),
          "the result landed on its topic once per replay (%d)" % len(vals))
    got = subprocess.run([consume, brokers, requests, "1", "5000"], capture_output=True,
                         text=True).stdout
    check('"value":"not json!"' in got, "the worker's dead letter went back to its topic")

    # The one dead-letter schema (v2) beside the v1 letters above, decoded by common/envelope.
    v2 = {"v": 2, "service": "worker", "class": "invalid", "reason": "request: not valid JSON",
          "failed_at": "2026-01-02T03:04:05.000Z", "topic": requests, "partition": 0,
          "offset": 9, "attempts": 0, "payload_b64": base64.b64encode(b"v2 bytes").decode()}
    subprocess.run([produce, brokers, dlq, "k3"], input=json.dumps(v2), text=True, check=True,
                   capture_output=True)
    subprocess.run([produce, brokers, dlq, "k4"], input="not a letter", text=True, check=True,
                   capture_output=True)
    rc, out, err = ctl("--config", cfg, "dlq", "list", **kenv)
    check(rc == 0 and "4 dead letter(s)" in out and "class: invalid" in out
          and "original (%s): v2 bytes" % requests in out and "not a dead letter" in out,
          "dlq list decodes a v2 letter and names one that is none:\n" + out)

    # audit list: records decoded with common/envelope, the previous shapes included.
    audit = "ctltest%s.audit" % UNIQ
    rc, out, err = ctl("--config", cfg, "audit", "list", **kenv)
    check(rc == 0 and "is empty" in out, "audit list on an empty topic: %r" % out)
    decision = {"v": 1, "kind": "decision", "time": "2026-01-02T03:04:05.678Z",
                "request_id": "req-aud-1", "dedupe_key": "slack:t1",
                "who": {"platform": "slack", "user_id": "UBOB", "user_name": "bob",
                        "person": None, "gitlab_login": None},
                "where": {"channel_id": "CDEV", "configured": False}, "command": "deploy",
                "text": "web", "args": {}, "decision": "denied", "rule": None, "worker": "w1"}
    outcome = {"v": 1, "kind": "outcome", "time": "2026-01-02T03:05:00.000Z",
               "request_id": "req-aud-1", "who": {"platform": "slack", "user_id": "UBOB"},
               "command": "deploy web production", "decision": "allowed", "result": "failed",
               "pipeline": {"id": 77, "status": "failed"}, "worker": "w2"}
    for letter in (decision, outcome, {"v": 1, "kind": "decision"}):
        subprocess.run([produce, brokers, audit, "req-aud-1"], input=json.dumps(letter),
                       text=True, check=True, capture_output=True)
    rc, out, err = ctl("--config", cfg, "audit", "list", **kenv)
    lines = out.splitlines()
    check(rc == 0 and "3 audit record(s)" in out
          and any("decision" in ln and "req-aud-1" in ln and "bob@slack" in ln
                  and "decision: denied" in ln for ln in lines)
          and any("outcome" in ln and "result: failed" in ln and "pipeline: 77" in ln
                  for ln in lines)
          and "not an audit record (audit: field 'time' is missing)" in out,
          "audit list shows decoded records and names a bad one:\n" + out)
    rc, out, err = ctl("--config", cfg, "audit", "list", "--max", "1", **kenv)
    check(rc == 0 and len(re.findall(r"^\d+:\d+  ", out, re.M)) == 1,
          "audit list --max 1 shows one:\n" + out)
    rc, out, err = ctl("--config", cfg, "audit", "shred", **kenv)
    check(rc == 2 and err.count("\n") == 1, "audit with a bad sub-command: exit 2 (%r)" % err)


def main():
    if not os.path.exists(CTL):
        sys.exit("chatopsctl not built at %s" % CTL)
    with tempfile.TemporaryDirectory() as tmp:
        test_usage()
        test_config_check(tmp)
        cfg = test_send(tmp)
        test_stack_commands(cfg)
    return cqt.summary()


if __name__ == "__main__":
    sys.exit(main())
