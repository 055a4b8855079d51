#!/usr/bin/env python3
"""fake_mattermost: a stand-in Mattermost server for the notifier (standard library only).

  POST /hooks/commands/<id>  a slash command's response_url: JSON {"text", "response_type"
                             ("in_channel" | "ephemeral")}; 30 min / 5 uses, then 404; 200 ""
  POST /api/v4/posts         Authorization: Bearer <bot token> (else 401 app error), {channel_id,
                             message[, root_id]} -> 201 the post; unknown channel 403
  GET  /_log, POST /_control as fake_slack.FakeBase, plus {"expire_url": "<id>"},
                             {"fail_channel": ["ch"]}, {"token": "..."}
Errors are Mattermost's AppError shape {"id","message","detailed_error","request_id",
"status_code"}; a 429 carries X-Ratelimit-Limit/Remaining/Reset.
Run alone: fake_mattermost.py [--port N] prints "PORT N" and serves until killed.
"""
import json
import sys
import time
import uuid

from fake_slack import FakeBase

MAX_MESSAGE_CHARS = 16383


def app_error(status, eid, message):
    return status, json.dumps({"id": eid, "message": message, "detailed_error": "",
                               "request_id": uuid.uuid4().hex[:26],
                               "status_code": status}).encode(), {"Content-Type": "application/json"}


class FakeMattermost(FakeBase):
    ratelimit_header = "X-Ratelimit-Reset"

    def __init__(self, port=0, token="mm-bot-token"):
        super().__init__(port)
        self.token = token
        self.reset()

    def reset(self):
        self.url_uses = {}
        self.expired = set()
        self.fail_channel = set()
        self.posts = []

    def ratelimit_body(self):
        return b"limit exceeded\n"

    def control_more(self, c):
        if "expire_url" in c:
            self.expired.add(c["expire_url"])
        if "fail_channel" in c:
            self.fail_channel.update(c["fail_channel"])
        if "token" in c:
            self.token = c["token"]

    def response_url(self, rid):
        return "%s/hooks/commands/%s" % (self.url, rid)

    def handle(self, method, path, headers, body):
        if method != "POST":
            return app_error(405, "api.context.method_not_allowed", "Method not allowed.")
        try:
            js = json.loads(body or "")
        except ValueError:
            return app_error(400, "api.context.invalid_body_param.app_error", "Invalid or missing body in request body.")
        if not isinstance(js, dict):
            return app_error(400, "api.context.invalid_body_param.app_error", "Invalid or missing body in request body.")
        if path.startswith("/hooks/commands/"):
            rid = path[len("/hooks/commands/"):]
            with self.lock:
                n = self.url_uses.get(rid, 0)
                if rid in self.expired or n >= 5:
                    return app_error(404, "web.command_webhook.invalid.app_error", "Unable to find the webhook.")
                self.url_uses[rid] = n + 1
            if js.get("response_type", "ephemeral") not in ("in_channel", "ephemeral") or \
                    not isinstance(js.get("text"), str):
                return app_error(400, "web.command_webhook.parse.app_error", "Unable to parse incoming data.")
            return 200, b"", {"Content-Type": "text/plain"}
        if path == "/api/v4/posts":
            auth = headers.get("authorization", "")
            if auth != "Bearer " + self.token:
                return app_error(401, "api.context.session_expired.app_error",
                                 "Invalid or expired session, please login again.")
            ch, msg = js.get("channel_id"), js.get("message")
            if not isinstance(ch, str) or not ch:
                return app_error(400, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body.")
            if not isinstance(msg, str) or len(msg) > MAX_MESSAGE_CHARS:
                return app_error(400, "model.post.is_valid.msg.app_error", "Invalid message.")
            if ch in self.fail_channel:
                return app_error(403, "api.context.permissions.app_error",
                                 "You do not have the appropriate permissions.")
            post = {"id": uuid.uuid4().hex[:26], "create_at": int(time.time() * 1000),
                    "channel_id": ch, "message": msg, "root_id": js.get("root_id", "")}
            with self.lock:
                self.posts.append(post)
            return 201, json.dumps(post).encode(), {"Content-Type": "application/json"}
        return app_error(404, "api.context.404.app_error", "Sorry, we could not find the page.")


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    f = FakeMattermost(port).start()
    print("PORT %d" % f.port, flush=True)
    f.thread.join()
