#!/usr/bin/env python3
"""fake_discord: a stand-in Discord HTTP API for the notifier (standard library only).

  PATCH /api/v10/webhooks/<app>/<token>/messages/@original  edit the deferred answer -> 200 msg
  POST  /api/v10/webhooks/<app>/<token>                       a follow-up -> 200 msg
        (<app> must be the application id, else 404 Unknown Webhook 10015; an expired token:
        401 Invalid Webhook Token 50027)
  POST  /api/v10/channels/<id>/messages  Authorization: Bot <token> (else 401 "401:
        Unauthorized"); unknown channel 404 Unknown Channel 10003
  content: at most 2000 characters, else 400 Invalid Form Body 50035
  429: {"message":"You are being rate limited.","retry_after":S,"global":false} + Retry-After
  GET /_log, POST /_control as fake_slack.FakeBase, plus {"expire_token": "<token>"},
  {"fail_channel": ["id"]}
Run alone: fake_discord.py [--port N] prints "PORT N" and serves until killed.
"""
import json
import sys
import threading

from fake_slack import FakeBase

_ids = iter(range(1100000000000000000, 1200000000000000000))
_ids_lock = threading.Lock()


def err(status, code, message, extra=None):
    obj = {"message": message, "code": code}
    obj.update(extra or {})
    return status, json.dumps(obj).encode(), {"Content-Type": "application/json"}


class FakeDiscord(FakeBase):
    def __init__(self, port=0, application_id="100000000000000001", token="discord-bot-token"):
        super().__init__(port)
        self.application_id = application_id
        self.token = token
        self.reset()

    def reset(self):
        self.expired = set()
        self.fail_channel = set()
        self.messages = []

    def ratelimit_body(self):
        ra = (self.rate_limit or {}).get("retry_after", 1)  # fault() holds self.lock
        return json.dumps({"message": "You are being rate limited.", "retry_after": float(ra),
                           "global": False}).encode()

    def control_more(self, c):
        if "expire_token" in c:
            self.expired.add(c["expire_token"])
        if "fail_channel" in c:
            self.fail_channel.update(c["fail_channel"])

    def webhook_url(self, token):
        return "%s/api/v10/webhooks/%s/%s" % (self.url, self.application_id, token)

    def message(self, channel, content):
        with _ids_lock:
            mid = str(next(_ids))
        m = {"id": mid, "channel_id": channel, "content": content, "type": 0}
        with self.lock:
            self.messages.append(m)
        return 200, json.dumps(m).encode(), {"Content-Type": "application/json"}

    def handle(self, method, path, headers, body):
        parts = path.split("?")[0].strip("/").split("/")
        if parts[:2] != ["api", "v10"]:
            return err(404, 0, "404: Not Found")
        parts = parts[2:]
        try:
            js = json.loads(body or "")
        except ValueError:
            return err(400, 50109, "The request body contains invalid JSON.")
        if not isinstance(js, dict):
            return err(400, 50109, "The request body contains invalid JSON.")
        content = js.get("content")
        if isinstance(content, str) and len(content) > 2000:
            return err(400, 50035, "Invalid Form Body", {"errors": {"content": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}})
        if parts and parts[0] == "webhooks" and len(parts) >= 3:
            app, tok = parts[1], parts[2]
            if app != self.application_id:
                return err(404, 10015, "Unknown Webhook")
            if tok in self.expired:
                return err(401, 50027, "Invalid Webhook Token")
            if method == "PATCH" and parts[3:] == ["messages", "@original"]:
                return self.message("interaction:" + tok, content)
            if method == "POST" and len(parts) == 3:
                return self.message("interaction:" + tok, content)
            return err(405, 0, "405: Method Not Allowed")
        if parts and parts[0] == "channels" and len(parts) == 3 and parts[2] == "messages":
            if method != "POST":
                return err(405, 0, "405: Method Not Allowed")
            if headers.get("authorization", "") != "Bot " + self.token:
                return err(401, 0, "401: Unauthorized")
            if parts[1] in self.fail_channel:
                return err(404, 10003, "Unknown Channel")
            if not isinstance(content, str) or not content:
                return err(400, 50006, "Cannot send an empty message")
            return self.message(parts[1], content)
        return err(404, 0, "404: Not Found")


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    f = FakeDiscord(port).start()
    print("PORT %d" % f.port, flush=True)
    f.thread.join()
