#!/usr/bin/env python3
"""fake_feishu: a stand-in Feishu/Lark open platform for tests (standard library only).

  POST /open-apis/auth/v3/tenant_access_token/internal  {"app_id","app_secret"} ->
       {"code":0,"tenant_access_token","expire"} (expire settable)
  POST /open-apis/im/v1/messages?receive_id_type=chat_id  send (Bearer check, uuid dedupe)
  POST /open-apis/im/v1/messages/<message_id>/reply       reply (same checks)
  PATCH /open-apis/im/v1/messages/<message_id>            update a card in place ({"content"}:
       only interactive messages, 230001 otherwise; 230011 for an unknown message)
  GET  /open-apis/contact/v3/users/:id  when .directory is set (tests/fakes/fake_directory.py)
  GET  /_log, POST /_control: {"expire_tokens":true} (every issued token answers 99991663),
       {"expire":S}, {"rate_limit":{"count":N,"retry_after":S}} (429 + x-ogw-ratelimit-reset),
       {"storm":{"count":N,"status":500}}, {"fail_chat":{"oc_x":230002}}, {"reset":true}
Run alone: fake_feishu.py [--port N] prints "PORT N".
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_slack import FakeBase  # noqa: E402


class FakeFeishu(FakeBase):
    ratelimit_header = "x-ogw-ratelimit-reset"

    def __init__(self, port=0, app_id="cli_test", app_secret="s3cret"):
        super().__init__(port)
        self.app_id = app_id
        self.app_secret = app_secret
        self.directory = None  # fake_directory.Directory: answers contact users when set
        self.reset()

    def ratelimit_body(self):
        return b'{"code":99991400,"msg":"request trigger frequency limit"}'

    def reset(self):
        self.tokens = {}  # token -> valid
        self.token_fetches = 0
        self.expire = 7200
        self.uuids = {}   # uuid -> message_id
        self.messages = []  # accepted new messages
        self.fail_chat = {}

    def control_more(self, c):
        if c.get("expire_tokens"):
            for t in self.tokens:
                self.tokens[t] = False
        if "expire" in c:
            self.expire = int(c["expire"])
        if "fail_chat" in c:
            self.fail_chat.update(c["fail_chat"])

    def handle(self, method, path, headers, body):
        js = {"Content-Type": "application/json; charset=utf-8"}

        def ans(status, obj):
            return status, json.dumps(obj).encode(), js
        if method == "PATCH":
            return self.patch(path, headers, body, ans)
        if self.directory is not None:  # contact/v3/users/:id (identity, issue 17)
            def token_valid(tok):
                with self.lock:
                    return self.tokens.get(tok)
            got = self.directory.feishu_answer(method, path, headers, token_valid)
            if got is not None:
                return got
        if method != "POST":
            return 405, b"", {}
        try:
            msg = json.loads(body or "{}")
        except ValueError:
            return ans(400, {"code": 9499, "msg": "bad json"})
        if path == "/open-apis/auth/v3/tenant_access_token/internal":
            if msg.get("app_id") != self.app_id or msg.get("app_secret") != self.app_secret:
                return ans(200, {"code": 10014, "msg": "app secret invalid"})
            with self.lock:
                self.token_fetches += 1
                tok = "t-%d-%s" % (self.token_fetches, os.urandom(4).hex())
                self.tokens[tok] = True
                exp = self.expire
            return ans(200, {"code": 0, "msg": "ok", "tenant_access_token": tok, "expire": exp})
        is_send = path.startswith("/open-apis/im/v1/messages?receive_id_type=chat_id")
        is_reply = path.startswith("/open-apis/im/v1/messages/") and path.endswith("/reply")
        if not (is_send or is_reply):
            return ans(404, {"code": 404, "msg": "not found"})
        auth = headers.get("authorization", "")
        tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        with self.lock:
            valid = self.tokens.get(tok)
            if valid is None:
                return ans(400, {"code": 99991671, "msg": "invalid access token"})
            if valid is False:
                return ans(400, {"code": 99991663, "msg": "tenant access token expired"})
            if msg.get("msg_type") not in ("text", "interactive", "post"):
                return ans(400, {"code": 230001, "msg": "invalid msg_type"})
            try:
                json.loads(msg.get("content", ""))
            except ValueError:
                return ans(400, {"code": 230001, "msg": "content is not a JSON string"})
            chat = msg.get("receive_id") if is_send else None
            if is_send and not chat:
                return ans(400, {"code": 230001, "msg": "receive_id missing"})
            if chat in self.fail_chat:
                return ans(400, {"code": self.fail_chat[chat], "msg": "bot is not in the chat"})
            u = msg.get("uuid")
            if u and u in self.uuids:  # Feishu drops a duplicate send within its window
                return ans(200, {"code": 0, "msg": "success", "data": {"message_id": self.uuids[u]}})
            mid = "om_%d" % (len(self.messages) + 1)
            if u:
                self.uuids[u] = mid
            self.messages.append({"path": path, "body": msg, "message_id": mid})
        return ans(200, {"code": 0, "msg": "success", "data": {"message_id": mid}})

    def patch(self, path, headers, body, ans):
        """PATCH /open-apis/im/v1/messages/:message_id: a card's new content."""
        prefix = "/open-apis/im/v1/messages/"
        mid = path[len(prefix):] if path.startswith(prefix) else ""
        if not mid or "/" in mid or "?" in mid:
            return ans(404, {"code": 404, "msg": "not found"})
        auth = headers.get("authorization", "")
        tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        try:
            msg = json.loads(body or "{}")
            json.loads(msg.get("content", ""))
        except ValueError:
            return ans(400, {"code": 230001, "msg": "content is not a JSON string"})
        with self.lock:
            if not self.tokens.get(tok):
                return ans(400, {"code": 99991671, "msg": "invalid access token"})
            for m in self.messages:
                if m["message_id"] == mid:
                    if m["body"].get("msg_type") != "interactive":
                        return ans(400, {"code": 230001, "msg": "only cards can be updated"})
                    m["body"] = dict(m["body"], content=msg["content"])
                    m.setdefault("updates", 0)
                    m["updates"] += 1
                    return ans(200, {"code": 0, "msg": "success", "data": {}})
        return ans(400, {"code": 230011, "msg": "the message was not found"})


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    f = FakeFeishu(port).start()
    print("PORT %d" % f.port, flush=True)
    try:
        f.thread.join()
    except KeyboardInterrupt:
        f.stop()
