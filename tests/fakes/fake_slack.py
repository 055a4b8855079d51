#!/usr/bin/env python3
"""fake_slack: a stand-in Slack for tests (standard library only), following PROTOCOLS.md.

  POST /response/<id>          response_url: "ok"; 5 uses, then 404 "used_url"; expirable
  POST /api/chat.postMessage   Bearer check, {"ok":true,"channel","ts"} or {"ok":false,"error"}
  POST /api/chat.update        edits a message posted before (channel + ts)
  GET  /api/users.info         when .directory is set (tests/fakes/fake_directory.py)
  GET  /_log                   every request: t, method, path, headers, body, status
  POST /_control               {"rate_limit":{"count":N,"retry_after":S}}, {"storm":{"count":N,
                               "status":500}}, {"fail_channel":{"C1":"channel_not_found"}},
                               {"expire_url":"<id>"}, {"token":"xoxb-..."}, {"reset":true},
                               {"delay":S} (answer S seconds after taking a post: a slow Slack)
Run alone: fake_slack.py [--port N] prints "PORT N" and serves until killed.
FakeBase is shared with fake_feishu.py.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# Address the fakes listen on; scripts/demo_fakes.py --listen sets it (0.0.0.0 in compose).
BIND_HOST = "127.0.0.1"


class FakeBase:
    """A ThreadingHTTPServer with a request log, /_log, /_control and fault injection."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.log = []
        self.rate_limit = None  # {"count": n, "retry_after": s, "header": name}
        self.storm = None       # {"count": n, "status": 500}
        self.delay = 0          # seconds between taking a request and answering it
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args):
                pass

            def _serve(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = raw.decode("utf-8", "replace")
                if self.path == "/_log" and method == "GET":
                    with fake.lock:
                        data = json.dumps(fake.log).encode()
                    return self._send(200, data, {"Content-Type": "application/json"})
                if self.path == "/_control" and method == "POST":
                    try:
                        fake.control(json.loads(body or "{}"))
                    except Exception as e:  # noqa: BLE001 - report any bad control to the test
                        return self._send(400, str(e).encode(), {})
                    return self._send(200, b'{"ok":true}', {"Content-Type": "application/json"})
                entry = {"t": time.time(), "method": method, "path": self.path,
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": body}
                status, out, hdrs = fake.fault(self.path)
                if status is None:
                    status, out, hdrs = fake.handle(method, self.path, entry["headers"], body)
                entry["status"] = status
                entry["answer"] = out.decode("utf-8", "replace")
                with fake.lock:
                    fake.log.append(entry)
                    delay = fake.delay
                if delay:
                    time.sleep(delay)
                try:
                    self._send(status, out, hdrs)
                except OSError:  # the client gave up waiting
                    pass

            def _send(self, status, data, hdrs):
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PATCH(self):
                self._serve("PATCH")

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 drops SYNs when a client opens 64 at once

        self.server = Server((BIND_HOST, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def fault(self, path):
        """Injected 429s and 5xx storms (token endpoints included)."""
        with self.lock:
            if self.rate_limit and self.rate_limit["count"] > 0:
                self.rate_limit["count"] -= 1
                ra = str(self.rate_limit.get("retry_after", 1))
                hdr = self.rate_limit.get("header", self.ratelimit_header)
                return 429, self.ratelimit_body(), {hdr: ra, "Content-Type": "application/json"}
            if self.storm and self.storm["count"] > 0:
                self.storm["count"] -= 1
                return self.storm.get("status", 500), b"upstream trouble", {}
        return None, b"", {}

    def control(self, c):
        with self.lock:
            if c.get("reset"):
                self.log = []
                self.rate_limit = None
                self.storm = None
                self.delay = 0
                self.reset()
            if "rate_limit" in c:
                self.rate_limit = dict(c["rate_limit"])
            if "storm" in c:
                self.storm = dict(c["storm"])
            if "delay" in c:
                self.delay = float(c["delay"])
            self.control_more(c)

    def requests(self, path_prefix=""):
        with self.lock:
            return [e for e in self.log if e["path"].startswith(path_prefix)]

    # subclasses
    ratelimit_header = "Retry-After"

    def ratelimit_body(self):
        return b'{"ok":false,"error":"ratelimited"}'

    def reset(self):
        pass

    def control_more(self, c):
        pass

    def handle(self, method, path, headers, body):
        return 404, b"not found", {}


class FakeSlack(FakeBase):
    def __init__(self, port=0, token="xoxb-test-token"):
        super().__init__(port)
        self.token = token
        self.directory = None  # fake_directory.Directory: answers users.info when set
        self.reset()

    def reset(self):
        self.url_uses = {}
        self.expired = set()
        self.fail_channel = {}
        self.messages = {}  # (channel, ts) -> body
        self.next_ts = 1000

    def control_more(self, c):
        if "fail_channel" in c:
            self.fail_channel.update(c["fail_channel"])
        if "expire_url" in c:
            self.expired.add(c["expire_url"])
        if "token" in c:
            self.token = c["token"]

    def response_url(self, rid):
        return "%s/response/%s" % (self.url, rid)

    def handle(self, method, path, headers, body):
        js = {"Content-Type": "application/json"}
        if self.directory is not None:  # users.info (identity, issue 17)
            ans = self.directory.slack_answer(method, path, headers, body, self.token)
            if ans is not None:
                return ans
        if method != "POST":
            return 405, b"method not allowed", {}
        if path.startswith("/response/"):
            rid = path[len("/response/"):]
            with self.lock:
                if rid in self.expired:
                    return 404, b"expired_url", {}
                n = self.url_uses.get(rid, 0)
                if n >= 5:
                    return 404, b"used_url", {}
                try:
                    msg = json.loads(body)
                except ValueError:
                    return 400, b"invalid_payload", {}
                if not msg.get("text") and not msg.get("blocks"):
                    return 400, b"no_text", {}
                self.url_uses[rid] = n + 1
            return 200, b"ok", {"Content-Type": "text/plain"}
        if path in ("/api/chat.postMessage", "/api/chat.update"):
            if headers.get("authorization") != "Bearer " + self.token:
                return 200, b'{"ok":false,"error":"invalid_auth"}', js
            try:
                msg = json.loads(body)
            except ValueError:
                return 200, b'{"ok":false,"error":"invalid_json"}', js
            ch = msg.get("channel")
            if not ch:
                return 200, b'{"ok":false,"error":"channel_not_found"}', js
            with self.lock:
                if ch in self.fail_channel:
                    return 200, json.dumps({"ok": False, "error": self.fail_channel[ch]}).encode(), js
                if not msg.get("text") and not msg.get("blocks"):
                    return 200, b'{"ok":false,"error":"no_text"}', js
                if path.endswith("update"):
                    ts = msg.get("ts")
                    if (ch, ts) not in self.messages:
                        return 200, b'{"ok":false,"error":"message_not_found"}', js
                else:
                    self.next_ts += 1
                    ts = "1700000000.%06d" % self.next_ts
                self.messages[(ch, ts)] = msg
            return 200, json.dumps({"ok": True, "channel": ch, "ts": ts}).encode(), js
        return 404, b"not found", {}


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    f = FakeSlack(port).start()
    print("PORT %d" % f.port, flush=True)
    try:
        f.thread.join()
    except KeyboardInterrupt:
        f.stop()
