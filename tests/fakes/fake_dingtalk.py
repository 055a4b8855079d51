#!/usr/bin/env python3
"""fake_dingtalk: a stand-in DingTalk robot for the notifier (standard library only).

  POST /robot/sendBySession?session=<id>  a callback's sessionWebhook: {"msgtype":"markdown",
       "markdown":{"title","text"}} (or "text"); always HTTP 200 {"errcode","errmsg"}: 0 ok,
       300001 session expired, 130101 sending too fast (the fault's "429"), 40035 bad body
  POST /v1.0/oauth2/accessToken  {appKey, appSecret} -> {"accessToken","expireIn":7200};
       wrong ones 400 {"code":"invalidClientIdOrSecret"}
  POST /v1.0/robot/groupMessages/send   header x-acs-dingtalk-access-token; {robotCode,
       openConversationId, msgKey, msgParam (a JSON string)} -> {"processQueryKey"}
  POST /v1.0/robot/oToMessages/batchSend  {robotCode, userIds, msgKey, msgParam} ->
       {"processQueryKey","invalidStaffIdList":[],"flowControlledStaffIdList":[]}
  OpenAPI errors: 401 {"code":"InvalidAuthentication"}, 400 {"code":"invalidParameter..."},
       429 {"code":"Throttling.Api"}
  GET /_log, POST /_control as fake_slack.FakeBase, plus {"expire_session": "<id>"},
  {"expire_tokens": true}, {"fail_conversation": ["cid"]} (groupMessages/send: 400 robot not
  in the group)
Run alone: fake_dingtalk.py [--port N] prints "PORT N" and serves until killed.
"""
import json
import sys
import uuid

from fake_slack import FakeBase

JS = {"Content-Type": "application/json"}


def oerr(status, code, message):
    return status, json.dumps({"code": code, "message": message,
                               "requestid": uuid.uuid4().hex}).encode(), JS


def hook(errcode, errmsg):
    return 200, json.dumps({"errcode": errcode, "errmsg": errmsg}).encode(), JS


class FakeDingTalk(FakeBase):
    def __init__(self, port=0, app_key="ding-app-key", app_secret="ding-app-secret",
                 robot_code="ding-robot"):
        super().__init__(port)
        self.app_key, self.app_secret, self.robot_code = app_key, app_secret, robot_code
        self.reset()

    def reset(self):
        self.expired = set()
        self.tokens = set()
        self.sent = []
        self.fail_conversation = set()

    def fault(self, path):
        status, out, hdrs = super().fault(path)
        if status == 429 and path.startswith("/robot/"):  # the webhook's "too fast" is a 200
            # DingTalk's code lists give both 130101 and 410100 for "sending too fast"
            if getattr(self, "too_fast_code", 130101) == 410100:
                return hook(410100, "send too fast")
            return hook(130101, "send too fast, exceed 20 times per minute")
        if status == 429:
            return oerr(429, "Throttling.Api", "Request was denied due to api flow control.")
        return status, out, hdrs

    def control_more(self, c):
        if "too_fast_code" in c:
            self.too_fast_code = int(c["too_fast_code"])
        if "expire_session" in c:
            self.expired.add(c["expire_session"])
        if c.get("expire_tokens"):
            self.tokens = set()
        if "fail_conversation" in c:
            self.fail_conversation.update(c["fail_conversation"])

    def session_webhook(self, sid):
        return "%s/robot/sendBySession?session=%s" % (self.url, sid)

    def handle(self, method, path, headers, body):
        try:
            js = json.loads(body or "")
        except ValueError:
            js = None
        if path.startswith("/robot/sendBySession"):
            sid = path.partition("session=")[2]
            if method != "POST" or not isinstance(js, dict):
                return hook(40035, "缺少参数 json")
            if sid in self.expired or not sid:
                return hook(300001, "session is expired or invalid")
            mt = js.get("msgtype")
            md = js.get("markdown") if mt == "markdown" else js.get("text")
            if mt not in ("markdown", "text") or not isinstance(md, dict) or \
                    not md.get("text" if mt == "markdown" else "content") or \
                    (mt == "markdown" and not md.get("title")):
                return hook(40035, "缺少参数 markdown")
            with self.lock:
                self.sent.append({"session": sid, "body": js})
            return hook(0, "ok")
        if not path.startswith("/v1.0/"):
            return oerr(404, "NotFound", "not found")
        if method != "POST" or not isinstance(js, dict):
            return oerr(400, "MissingParameter", "body is required")
        if path == "/v1.0/oauth2/accessToken":
            if js.get("appKey") != self.app_key or js.get("appSecret") != self.app_secret:
                return oerr(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            tok = uuid.uuid4().hex
            with self.lock:
                self.tokens.add(tok)
            return 200, json.dumps({"accessToken": tok, "expireIn": 7200}).encode(), JS
        with self.lock:
            ok = headers.get("x-acs-dingtalk-access-token", "") in self.tokens
        if not ok:
            return oerr(401, "InvalidAuthentication", "不合法的access_token")
        if js.get("robotCode") != self.robot_code:
            return oerr(400, "invalidParameter.robotCode", "robotCode 不合法")
        if js.get("msgKey") != "sampleMarkdown":
            return oerr(400, "invalidParameter.msgKey", "msgKey 不合法")
        try:
            param = json.loads(js.get("msgParam") or "")
        except (ValueError, TypeError):
            return oerr(400, "invalidParameter.msgParam", "msgParam 不是 JSON")
        if not isinstance(param, dict) or not param.get("title") or not param.get("text"):
            return oerr(400, "invalidParameter.msgParam", "msgParam 缺少 title/text")
        if path == "/v1.0/robot/groupMessages/send":
            if not js.get("openConversationId"):
                return oerr(400, "invalidParameter.openConversationId", "openConversationId 为空")
            if js["openConversationId"] in self.fail_conversation:
                return oerr(400, "resource.not.found", "机器人不在群内")
            with self.lock:
                self.sent.append({"group": js["openConversationId"], "param": param})
            return 200, json.dumps({"processQueryKey": uuid.uuid4().hex}).encode(), JS
        if path == "/v1.0/robot/oToMessages/batchSend":
            ids = js.get("userIds")
            if not isinstance(ids, list) or not ids:
                return oerr(400, "invalidParameter.userIds", "userIds 为空")
            with self.lock:
                self.sent.append({"users": ids, "param": param})
            return 200, json.dumps({"processQueryKey": uuid.uuid4().hex, "invalidStaffIdList": [],
                                    "flowControlledStaffIdList": []}).encode(), JS
        return oerr(404, "NotFound", "not found")


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    f = FakeDingTalk(port).start()
    print("PORT %d" % f.port, flush=True)
    f.thread.join()
