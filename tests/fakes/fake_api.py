#!/usr/bin/env python3
"""A fake GitLab-style HTTP API for tests (standard library only).

Records every request that arrives (method, raw path, query, headers, body) and answers
with configurable status/delay/body per path prefix. Controlled over HTTP:
  GET  /_control/requests                 -> JSON list of recorded requests
  POST /_control/reset                    -> clears records and rules
  POST /_control/rules  [{"method":"POST","prefix":"/api/v4/features/slow",
                          "status":500,"delay_ms":3000,"body":{...}|"text","echo":true}]
                                          -> replaces the rules (first match wins); "echo"
                                          quotes the request's headers and body back in
                                          {"message": ...}, as careless APIs do in errors
Default answer: 200 JSON {"name": <last path segment, decoded>, "state": "on"|"off",
"method", "path", "value"} so reply pointers/templates have something to read.

Run: fake_api.py [--port N] [--port-file F]; or import FakeAPI and start() it in-process.
"""
import argparse
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeAPI:
    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.records = []
        self.rules = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n > 0 else b""

            def _send(self, status, obj, ctype="application/json"):
                data = obj if isinstance(obj, bytes) else (
                    obj.encode() if isinstance(obj, str) else json.dumps(obj).encode())
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(data)
                    except OSError:
                        pass

            def _handle(self):
                body = self._body()
                raw_path, _, query = self.path.partition("?")
                if raw_path.startswith("/_control/"):
                    return self._control(raw_path, body)
                rec = {
                    "method": self.command,
                    "path": raw_path,
                    "query": query,
                    "headers": {k: v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                    "time": time.time(),
                }
                with api.lock:
                    api.records.append(rec)
                    rule = next((r for r in api.rules
                                 if raw_path.startswith(r.get("prefix", "/"))
                                 and r.get("method", self.command) == self.command), None)
                if rule and rule.get("delay_ms"):
                    time.sleep(rule["delay_ms"] / 1000.0)
                if rule:
                    b = rule.get("body", {"message": "fake error"})
                    if rule.get("echo"):
                        b = {"message": "rejected %s %s headers=%s body=%s" % (
                            self.command, self.path, json.dumps(rec["headers"]), rec["body"])}
                    return self._send(rule.get("status", 200), b,
                                      "application/json" if not isinstance(b, str)
                                      else "text/plain")
                name = urllib.parse.unquote(raw_path.rsplit("/", 1)[-1])
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                value = (form.get("value") or [None])[0]
                state = "off" if value in ("false", "off") else "on"
                return self._send(200, {"name": name, "state": state, "method": self.command,
                                        "path": raw_path, "value": value})

            def _control(self, path, body):
                if path == "/_control/requests":
                    with api.lock:
                        return self._send(200, api.records)
                if path == "/_control/reset":
                    with api.lock:
                        api.records = []
                        api.rules = []
                    return self._send(200, {"ok": True})
                if path == "/_control/rules":
                    with api.lock:
                        api.rules = json.loads(body or b"[]")
                    return self._send(200, {"ok": True})
                return self._send(404, {"message": "no such control endpoint"})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # a class attribute: listen() runs in the constructor
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread = None

    # in-process helpers
    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def requests(self, prefix=""):
        with self.lock:
            return [r for r in self.records if r["path"].startswith(prefix)]

    def set_rules(self, rules):
        with self.lock:
            self.rules = list(rules)

    def reset(self):
        with self.lock:
            self.records = []
            self.rules = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    api = FakeAPI(port=a.port)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(api.port))
        import os
        os.replace(a.port_file + ".tmp", a.port_file)
    print("fake_api listening on 127.0.0.1:%d" % api.port, flush=True)
    try:
        api.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
