#!/usr/bin/env python3
"""fake_webex: a stand-in Webex messages API (standard library only).

  POST /v1/messages      Authorization: Bearer <bot token> (else 401), {roomId, parentId?,
                         markdown | text}: 200 the message; markdown/text over 7439 bytes 400;
                         unknown room 404; a parentId that is not a message of the room 400
  GET  /v1/messages/<id> the message (the worker reads a command's text): 200 | 404
  GET /_log, POST /_control as fake_slack.FakeBase, plus {"fail_room": ["roomId"]},
  {"message": {"id","roomId","text"}} (a message the worker can read), {"token": "..."}
Errors are Webex's shape {"message", "errors": [{"description"}], "trackingId"}; 429 carries
Retry-After.
Run alone: fake_webex.py [--port N] prints "PORT N" and serves until killed.
"""
import base64
import json
import sys
import uuid

from fake_slack import FakeBase

MAX_BYTES = 7439


def err(status, message):
    return status, json.dumps({"message": message, "errors": [{"description": message}],
                               "trackingId": "ROUTER_" + uuid.uuid4().hex}).encode(), \
        {"Content-Type": "application/json"}


class FakeWebex(FakeBase):
    def __init__(self, port=0, token="webex-bot-token"):
        super().__init__(port)
        self.token = token
        self.reset()

    def reset(self):
        self.fail_room = set()
        self.messages = {}

    def ratelimit_body(self):
        return json.dumps({"message": "Too Many Requests", "trackingId": "ROUTER_x"}).encode()

    def control_more(self, c):
        if "fail_room" in c:
            self.fail_room.update(c["fail_room"])
        if "message" in c:
            m = c["message"]
            self.messages[m["id"]] = m
        if "token" in c:
            self.token = c["token"]

    def handle(self, method, path, headers, body):
        if headers.get("authorization", "") != "Bearer " + self.token:
            return err(401, "The request requires a valid access token set in the Authorization "
                            "request header.")
        if method == "GET" and path.startswith("/v1/messages/"):
            with self.lock:
                m = self.messages.get(path[len("/v1/messages/"):])
            if not m:
                return err(404, "Unable to retrieve message.")
            return 200, json.dumps(m).encode(), {"Content-Type": "application/json"}
        if path != "/v1/messages":
            return err(404, "The requested resource could not be found.")
        if method != "POST":
            return err(405, "Method not allowed.")
        try:
            js = json.loads(body or "")
        except ValueError:
            return err(400, "Unable to parse the request body.")
        room = js.get("roomId") if isinstance(js, dict) else None
        if not isinstance(room, str) or not room:
            return err(400, "roomId, toPersonId or toPersonEmail is required.")
        text = js.get("markdown", js.get("text"))
        if not isinstance(text, str) or not text:
            return err(400, "text, markdown or files is required.")
        if len(text.encode()) > MAX_BYTES:
            return err(400, "Message length limit exceeded (max %d bytes)." % MAX_BYTES)
        if room in self.fail_room:
            return err(404, "Could not find a room with provided ID.")
        parent = js.get("parentId")
        with self.lock:
            if parent is not None and parent in self.messages and \
                    self.messages[parent].get("roomId") != room:
                return err(400, "Parent message is in a different room.")
            mid = base64.b64encode(("ciscospark://us/MESSAGE/" + str(uuid.uuid4())).encode()).decode()
            m = {"id": mid, "roomId": room, "markdown": text, "text": text}
            if parent:
                m["parentId"] = parent
            self.messages[mid] = m
        return 200, json.dumps(m).encode(), {"Content-Type": "application/json"}


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    f = FakeWebex(port).start()
    print("PORT %d" % f.port, flush=True)
    f.thread.join()
