#!/usr/bin/env python3
"""Integration test of the worker's Webex text read (worker/text_fetch.c) with the real Kafka
and Redis fixtures: a request the ingress produced from a Webex notification (text_source
"webex", ids only) gets its text from a fake Webex (GET /v1/messages/{id}, bot token as Bearer,
401 without it, 404 for an unknown id, as Webex answers), the bot's name is cut from its front,
the command runs once even when the request is delivered three times, and a message that cannot
be read ends in a final saying it was NOT run, with no call made. Standard library only.
"""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import Tail, check, now_rfc3339, stack_file  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "tests", "fakes"))
from fake_api import FakeAPI  # noqa: E402

BROKERS = stack_file("kafka/bootstrap")
REDIS_PORT = int(stack_file("redis/port"))
RUN = uuid.uuid4().hex[:8]
TOPICS = {k: "cqt.wxw.%s.%s" % (RUN, k) for k in ("requests", "results", "audit", "dlq")}
TMP = tempfile.mkdtemp(prefix="cqt-worker-webex-")
BOT_TOKEN = "wx-bot-" + uuid.uuid4().hex
API = FakeAPI().start()
MESSAGES = {}   # id -> text, what the fake Webex holds
READS = []      # (id, authorization header) of every GET


class Webex(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        mid = self.path.rsplit("/", 1)[-1]
        READS.append((mid, auth))
        if not self.path.startswith("/v1/messages/"):
            return self._send(404, {"message": "The requested resource could not be found."})
        if auth != "Bearer " + BOT_TOKEN:
            return self._send(401, {"message": "The request requires a valid access token set in "
                                               "the Authorization request header."})
        if mid not in MESSAGES:
            return self._send(404, {"message": "The requested resource could not be found."})
        self._send(200, {"id": mid, "roomId": "room-1", "roomType": "group", "text": MESSAGES[mid],
                         "personId": "p-alice", "personEmail": "alice@example.com",
                         "created": "2026-01-01T00:00:00.000Z"})

    def _send(self, status, obj):
        b = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


def config(webex_port):
    return cqt.stack_yaml(BROKERS, [(k, TOPICS[k]) for k in ("requests", "results", "audit", "dlq")],
                          [("worker", "cqt-wxw-" + RUN)], REDIS_PORT, "cqt-wxw-%s:" % RUN) + """
webex:
  enabled: true
  webhook_secret: "${CQT_WX_SECRET}"
  bot_token: "${CQT_WX_BOT}"
  bot_name: OpsBot
  api_base: "http://127.0.0.1:%d/v1"
people:
  alice: {gitlab_login: alice, webex: [p-alice], roles: [sre]}
channels:
  ops-wx: {platform: webex, id: room-1}
commands:
  lb weight:
    mode: direct
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
    http:
      method: PUT
      base_url: "http://127.0.0.1:%d/api/v4"
      path: "/lb/{{args.pool}}"
      body: '{"percent": {{args.percent}}}'
      timeout_ms: 3000
      reply_template: "{{response.name}} set"
policy:
  - {name: lb, roles: [sre], commands: [lb weight], channels: [ops-wx]}
""" % (webex_port, API.port)


def envelope(mid, rid=None):
    rid = rid or str(uuid.uuid4())
    return rid, json.dumps({
        "v": 1, "id": rid, "received_at": now_rfc3339(), "platform": "webex", "tenant": "org",
        "channel": {"id": "room-1"}, "user": {"id": "p-alice", "name": "alice@example.com"},
        "command": "help", "text": "", "text_source": "webex",
        "reply": {"chat_id": "room-1", "message_id": mid, "thread_ts": mid,
                  "conversation_type": "group"},
        "dedupe_key": "webex:" + mid, "retry_num": 0})


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webex)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cfg = os.path.join(TMP, "worker.yaml")
    with open(cfg, "w") as f:
        f.write(config(srv.server_address[1]))
    env = dict(CQT_WX_SECRET="wx-hook-" + RUN, CQT_WX_BOT=BOT_TOKEN)
    # the topics first, and the worker's partitions assigned before anything is produced
    ctl = subprocess.run([os.path.join(cqt.BUILD, "tools", "chatopsctl"), "--config", cfg,
                          "topics", "ensure"], capture_output=True, text=True,
                         env=dict(os.environ, **env))
    check(ctl.returncode == 0, "topics ensure (%s)" % ctl.stderr.strip()[:200])
    results = Tail(BROKERS, TOPICS["results"])
    w = cqt.Service("worker", cfg, "worker", TMP, args=["--id", "wxw-" + RUN], env=env,
                    http_port=-1)
    check(w.wait_for("assigned [0-9]+ partition", 60), "the worker consumes")

    def final_of(rid, timeout=30):
        got = results.wait(lambda r: r.get("request_id") == rid and r.get("step") == "final", 1,
                           timeout)
        return got[0] if got else {}

    # a readable message, delivered three times (Kafka redelivery / a second ingress)
    mid = "wxmsg-" + uuid.uuid4().hex
    MESSAGES[mid] = "OpsBot lb weight blue 30"
    rid, env = envelope(mid)
    for _ in range(3):
        cqt.produce(BROKERS, TOPICS["requests"], "webex:org:room-1", env)
    fin = final_of(rid)
    check(fin.get("status") == "ok", "webex: the read command ran (%s)" % fin.get("text"))
    check(fin.get("platform") == "webex" and fin.get("reply", {}).get("message_id") == mid and
          fin.get("reply", {}).get("conversation_type") == "group",
          "webex: the result carries the reply route (%s)" % fin.get("reply"))
    check(fin.get("command", "").startswith("lb weight"), "webex: the command is the message's "
          "(%r)" % fin.get("command"))
    time.sleep(2)
    calls = API.requests("/api/v4/lb/blue")
    check(len(calls) == 1 and json.loads(calls[0]["body"]) == {"percent": 30},
          "webex: the bot's name cut, blue 30 applied once (%d calls)" % len(calls))
    reads = [a for m, a in READS if m == mid]
    check(reads and all(a == "Bearer " + BOT_TOKEN for a in reads),
          "webex: the text read with the bot token")

    # an unknown message: a final that says it was not run, no call
    gone = "wxmsg-gone-" + uuid.uuid4().hex
    rid2, env2 = envelope(gone)
    cqt.produce(BROKERS, TOPICS["requests"], "webex:org:room-1", env2)
    fin = final_of(rid2)
    check(fin.get("status") == "failed" and "could not read the Webex message" in fin.get("text", "")
          and "NOT run" in fin.get("text", "") and "HTTP 404" in fin.get("text", ""),
          "webex: an unreadable message is answered, not run (%s)" % fin.get("text"))
    check(BOT_TOKEN not in json.dumps(results.find(lambda r: True)),
          "webex: the bot token is in no result")
    check(BOT_TOKEN not in w.logs(), "webex: the bot token is in no log line")
    w.stop()
    results.stop()
    srv.shutdown()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
