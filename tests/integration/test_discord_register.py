#!/usr/bin/env python3
"""chatopsctl discord register: the config's commands become Discord application commands
(sub-command words, typed options with ranges and enum choices, required options first, the
built-ins), sent as one PUT /applications/{id}/commands with "Authorization: Bot <token>" to a
fake Discord that answers like Discord (200 with the created list; 401 for a wrong token);
--dry-run prints the same JSON and sends nothing. Standard library only.
"""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading

SRC = os.environ.get("CQ_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import cqt  # noqa: E402
from cqt import check  # noqa: E402

CTL = os.path.join(cqt.BUILD, "tools", "chatopsctl")
TMP = tempfile.mkdtemp(prefix="cqt-discord-register-")
TOKEN = "discord-bot-" + os.urandom(6).hex()
SEEN = []


class Discord(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        SEEN.append((self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != "Bot " + TOKEN:
            return self._send(401, {"message": "401: Unauthorized", "code": 0})
        cmds = json.loads(body)
        for i, c in enumerate(cmds):
            c["id"] = str(1000 + i)
            c["application_id"] = "4242"
        self._send(200, cmds)

    def _send(self, status, obj):
        b = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discord)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cfg = os.path.join(TMP, "c.yaml")
    with open(cfg, "w") as f:
        f.write("""
kafka: {brokers: "127.0.0.1:1"}
discord:
  enabled: true
  public_key: d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a
  application_id: "4242"
  bot_token: "${CQT_DC_BOT}"
  api_base: "http://127.0.0.1:%d/api/v10"
commands:
  lb weight:
    description: Set the traffic share of a pool
    mode: direct
    args:
      - {name: pool, type: enum, required: true, values: [blue, green]}
      - {name: percent, type: int, required: true, min: 0, max: 100}
    http: {base_url: "http://lb", path: /w}
  deploy:
    description: Deploy a service
    mode: direct
    args:
      - {name: tag, flag: tag}
      - {name: service, required: true}
    http: {base_url: "http://d", path: /d}
""" % srv.server_address[1])
    env = dict(os.environ, CQT_DC_BOT=TOKEN)
    p = subprocess.run([CTL, "--config", cfg, "discord", "register", "--dry-run"],
                       capture_output=True, text=True, env=env, timeout=30)
    check(p.returncode == 0 and not SEEN, "dry run: exit 0, nothing sent (%s)" % p.stderr)
    cmds = {c["name"]: c for c in json.loads(p.stdout or "[]")}
    check({"help", "lb", "deploy"} <= set(cmds), "the commands and built-ins (%s)" % sorted(cmds))
    lb = cmds.get("lb", {})
    sub = (lb.get("options") or [{}])[0]
    check(sub.get("type") == 1 and sub.get("name") == "weight", "lb weight is a sub-command")
    opts = {o["name"]: o for o in sub.get("options", [])}
    check(opts.get("pool", {}).get("type") == 3 and
          [c["value"] for c in opts["pool"].get("choices", [])] == ["blue", "green"],
          "an enum argument: choices")
    check(opts.get("percent", {}).get("type") == 4 and opts["percent"].get("min_value") == 0 and
          opts["percent"].get("max_value") == 100 and opts["percent"].get("required") is True,
          "an int argument: type 4 with its range")
    dep = [o["name"] for o in cmds.get("deploy", {}).get("options", [])]
    check(dep == ["service", "tag"], "required options first (%s)" % dep)
    check(all(0 < len(c["description"]) <= 100 for c in cmds.values()), "descriptions 1..100")

    p = subprocess.run([CTL, "--config", cfg, "discord", "register"], capture_output=True,
                       text=True, env=env, timeout=30)
    check(p.returncode == 0 and "registered %d application commands" % len(cmds) in p.stdout,
          "register: exit 0 and the count (%s %s)" % (p.stdout.strip(), p.stderr.strip()))
    check(SEEN and SEEN[-1][0] == "/api/v10/applications/4242/commands" and
          SEEN[-1][1] == "Bot " + TOKEN, "one PUT to the application's commands with the bot token")
    p = subprocess.run([CTL, "--config", cfg, "discord", "register"], capture_output=True,
                       text=True, env=dict(env, CQT_DC_BOT="wrong-token-123"), timeout=30)
    check(p.returncode == 1 and "HTTP 401" in p.stderr and "wrong-token-123" not in p.stderr,
          "a refused token: exit 1, Discord's answer, no token shown (%s)" % p.stderr.strip())
    srv.shutdown()
    return cqt.summary(TMP)


if __name__ == "__main__":
    sys.exit(main())
