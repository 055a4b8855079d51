#!/usr/bin/env python3
"""A fake GitLab for the pipeline modes (standard library only): runs pipelines on a script.

Trigger  POST /api/v4/projects/:id/trigger/pipeline (form token, ref, variables[NAME]=value)
         -> 201 {"id","iid","status","web_url","ref","sha","project_id"}; 401 on a bad token.
Status   GET  /api/v4/projects/:id/pipelines/:pid          (PRIVATE-TOKEN checked)
Jobs     GET  /api/v4/projects/:id/pipelines/:pid/jobs[?scope[]=failed]
Trace    GET  /api/v4/projects/:id/jobs/:job_id/trace      (plain text)
Cancel   POST /api/v4/projects/:id/pipelines/:pid/cancel
List     GET  /api/v4/projects/:id/pipelines?ref=&source=&updated_after=&updated_before=&status=
              &order_by=id|status|ref|updated_at|user_id&sort=asc|desc&per_page=&page=
              (400 {"error": "<param> is invalid"} / "... does not have a valid value" as GitLab)
Vars     GET  /api/v4/projects/:id/pipelines/:pid/variables
              -> [{"variable_type": "env_var", "key", "value"}] (the trigger's variables)

The script of a pipeline is chosen by its ref:
  "s-<end>-<ms>"   pending, running after ms/3, then <end> (success|failed|canceled|skipped|
                   manual) at <ms>; "s-forever" keeps running; "s-rand-<lo>-<hi>" ends at a
                   random time in [lo, hi] ms with success (or failed for even ids when
                   the ref is "s-randf-<lo>-<hi>").
  or by POST /_control {"ref": R, "steps": [{"status":"pending","after_ms":0}, ...],
                        "jobs": [...], "trace": "..."} for refs equal to R
                   ("trace_b64" instead of "trace": raw bytes, e.g. invalid UTF-8, as real
                   job logs may hold).
Users    GET  /api/v4/users?search=, /api/v4/groups/:id/members/all/:user_id when
              state.directory is set (tests/fakes/fake_directory.py)
Control  GET  /_log               recorded requests (method, path, form pairs, headers)
         GET  /_pipelines         every pipeline with its status and ended_at (epoch ms)
         GET  /_hooks?since=N     Pipeline Hook bodies of ended pipelines, index >= N
         POST /_control/fail      {"contains": "/trigger", "status": 429, "count": 2,
                                   "retry_after": "1"} answers the next matches with it;
                                   with "after_create": true a trigger first creates its
                                   pipeline, then answers the status (a proxy's 502/504
                                   after GitLab acted), after "delay_ms" when given (201
                                   late: the client timed out after GitLab acted)
         POST /_control/reset
         POST /_send_hook         {"url", "token", "kind", "status", "project", "ref", "uuid",
                                   ...}: sends that webhook as GitLab does (gitlab_hooks.py:
                                   the documented payload of the kind) and answers
                                   {"status", "body"} of the receiver
Run: fake_gitlab.py [port] [--trigger-token T] [--api-token A]; prints the port on stdout.
"""
import base64
import datetime
import json
import random
import re
import sys
import threading
import time
import urllib.parse
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gitlab_hooks  # noqa: E402


class Server(ThreadingHTTPServer):
    # listen() runs in the constructor, so the backlog must be a class attribute: the default
    # of 5 drops SYNs when a worker opens 20+ connections at once, and the client's SYN
    # retransmits (1 s, 3 s, 7 s, ...) then look like a GitLab that timed out.
    request_queue_size = 1024
    daemon_threads = True

TERMINAL = {"success", "failed", "canceled", "skipped", "manual"}


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    """GitLab's timestamp shape: 2026-01-01T10:00:00.123Z (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def parse_iso(v):
    """ISO 8601 as GitLab accepts it (date-time with zone); epoch ms, or None when invalid."""
    try:
        d = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1000)


def updated_ms(p):
    """updated_at: the last status change (creation, a script step reached, or the end)."""
    t = now_ms()
    up = p["created"]
    for s in p["script"]["steps"]:
        if t - p["created"] >= s["after_ms"]:
            up = max(up, p["created"] + s["after_ms"])
    return max(up, p.get("ended_at") or 0)


class State:
    def __init__(self, trigger_token, api_token):
        self.lock = threading.Lock()
        self.trigger_token = trigger_token
        self.api_token = api_token
        self.reset()

    def reset(self):
        self.log = []
        self.pipelines = {}
        self.scripts = {}
        self.fails = []
        self.hooks = []
        self.next_id = 1000
        self.counts = {}

    def script_for(self, ref, pid):
        if ref in self.scripts:
            return self.scripts[ref]
        m = re.fullmatch(r"s-(success|failed|canceled|skipped|manual)-(\d+)", ref)
        if m:
            end, ms = m.group(1), int(m.group(2))
            return {"steps": [{"status": "pending", "after_ms": 0},
                              {"status": "running", "after_ms": ms // 3},
                              {"status": end, "after_ms": ms}]}
        m = re.fullmatch(r"s-(rand|randf)-(\d+)-(\d+)", ref)
        if m:
            ms = random.randint(int(m.group(2)), int(m.group(3)))
            end = "failed" if m.group(1) == "randf" and pid % 2 == 0 else "success"
            return {"steps": [{"status": "pending", "after_ms": 0},
                              {"status": "running", "after_ms": min(ms // 3, 1000)},
                              {"status": end, "after_ms": ms}]}
        return {"steps": [{"status": "pending", "after_ms": 0},
                          {"status": "running", "after_ms": 300}]}

    def status_of(self, p, t=None):
        """Advances p to time t; returns its status. Records the end once (hook)."""
        t = t or now_ms()
        if p.get("forced"):
            st = p["forced"]
        else:
            st = p["script"]["steps"][0]["status"]
            end_at = None
            for s in p["script"]["steps"]:
                if t - p["created"] >= s["after_ms"]:
                    st = s["status"]
                    end_at = p["created"] + s["after_ms"]
            if st in TERMINAL and p.get("ended_at") is None:
                p["ended_at"] = end_at
        if st in TERMINAL and not p.get("hooked"):
            p["hooked"] = True
            if p.get("ended_at") is None:
                p["ended_at"] = t
            self.hooks.append({"object_kind": "pipeline",
                               "object_attributes": {"id": p["id"], "iid": p["iid"],
                                                     "status": st, "ref": p["ref"]},
                               "project": {"id": p["project_id"],
                                           "path_with_namespace": p["project"]},
                               "ended_at": p["ended_at"]})
        p["status"] = st
        return st

    def jobs(self, p):
        if "jobs" in p["script"]:
            return p["script"]["jobs"]
        st = p["status"]
        base = p["id"] * 10
        plan = {"id": base + 1, "name": "plan", "stage": "test", "status": "success"}
        apply = {"id": base + 2, "name": "apply", "stage": "deploy", "status": "created"}
        if st == "running":
            apply["status"] = "running"
        elif st == "failed":
            apply["status"] = "failed"
            return [plan, apply, {"id": base + 3, "name": "lint", "stage": "test",
                                  "status": "failed", "allow_failure": True}]
        elif st == "success":
            apply["status"] = "success"
        elif st == "manual":
            apply["status"] = "manual"
        return [plan, apply]

    def trace(self, jid):
        for p in self.pipelines.values():
            if "trace_b64" in p["script"] and jid // 10 == p["id"]:
                return base64.b64decode(p["script"]["trace_b64"])
            if "trace" in p["script"] and jid // 10 == p["id"]:
                return p["script"]["trace"]
        lines = [f"\x1b[0Ksection_start:1700000000:step_script\r\x1b[0K\x1b[32mline {i} "
                 f"of job {jid}\x1b[0m" for i in range(1, 101)]
        lines.append(f"ERROR: apply failed in job {jid}")
        return "\n".join(lines) + "\n"


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _send(self, status, obj, ctype="application/json", headers=None):
            data = obj if isinstance(obj, bytes) else (
                obj.encode() if isinstance(obj, str) else json.dumps(obj).encode())
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def _injected_after_create(self, path):
            with state.lock:
                for f in state.fails:
                    if f["count"] > 0 and f["contains"] in path and f.get("after_create"):
                        f["count"] -= 1
                        return f
            return None

        def _injected(self, path):
            with state.lock:
                for f in state.fails:
                    if f["count"] > 0 and f["contains"] in path and not f.get("after_create"):
                        f["count"] -= 1
                        return f
            return None

        def _handle(self, method):
            body = self._body()
            path, _, query = self.path.partition("?")
            if path.startswith("/_"):
                return self._control(method, path, query, body)
            form = urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True) \
                if method == "POST" and body else []
            with state.lock:
                state.log.append({"method": method, "path": path, "query": query,
                                  "form": form, "raw_body": body.decode("latin-1"),
                                  "private_token": self.headers.get("PRIVATE-TOKEN"),
                                  "at": now_ms()})
                key = method + " " + re.sub(r"\d+", "N", path)
                state.counts[key] = state.counts.get(key, 0) + 1
            f = self._injected(path)
            if f:
                hdrs = {"Retry-After": f["retry_after"]} if f.get("retry_after") else None
                return self._send(f["status"], {"message": f"injected {f['status']}"},
                                  headers=hdrs)
            d = getattr(state, "directory", None)  # users, group members (identity, issue 17)
            got = d.gitlab_answer(method, path, query, self.headers.get("PRIVATE-TOKEN"),
                                  state.api_token) if d is not None else None
            if got is not None:
                return self._send(got[0], got[1], headers=got[2] or None)
            m = re.fullmatch(r"/api/v4/projects/([^/]+)/trigger/pipeline", path)
            if m and method == "POST":
                return self._trigger(urllib.parse.unquote(m.group(1)), form)
            if self.headers.get("PRIVATE-TOKEN") != state.api_token:
                return self._send(401, {"message": "401 Unauthorized"})
            m = re.fullmatch(r"/api/v4/projects/([^/]+)/pipelines", path)
            if m and method == "GET":
                return self._list(urllib.parse.unquote(m.group(1)), query)
            m = re.fullmatch(r"/api/v4/projects/([^/]+)/pipelines/(\d+)(/jobs|/cancel|/variables)?",
                             path)
            if m:
                with state.lock:
                    p = state.pipelines.get(int(m.group(2)))
                    if not p:
                        return self._send(404, {"message": "404 Not found"})
                    st = state.status_of(p)
                    if m.group(3) == "/cancel" and method == "POST":
                        if st not in TERMINAL:
                            p["forced"] = "canceled"
                            p["ended_at"] = now_ms()
                            state.status_of(p)
                        p["cancel_requests"] = p.get("cancel_requests", 0) + 1
                        return self._send(200, self._pipe_json(p))
                    if m.group(3) == "/variables" and method == "GET":
                        return self._send(200, [{"variable_type": "env_var", "key": k,
                                                 "value": v} for k, v in p["variables"]])
                    if m.group(3) == "/jobs":
                        jobs = state.jobs(p)
                        scopes = urllib.parse.parse_qs(query).get("scope[]", [])
                        if scopes:
                            jobs = [j for j in jobs if j["status"] in scopes]
                        return self._send(200, jobs)
                    return self._send(200, self._pipe_json(p))
            m = re.fullmatch(r"/api/v4/projects/([^/]+)/jobs/(\d+)/trace", path)
            if m:
                with state.lock:
                    text = state.trace(int(m.group(2)))
                return self._send(200, text, ctype="text/plain")
            return self._send(404, {"message": "404 Not found"})

        def _pipe_json(self, p):
            return {"id": p["id"], "iid": p["iid"], "status": p["status"], "ref": p["ref"],
                    "sha": "0123456789abcdef", "web_url": p["web_url"],
                    "project_id": p["project_id"], "source": "trigger",
                    "created_at": iso(p["created"]), "updated_at": iso(updated_ms(p))}

        def _list(self, project, query):
            """GET /projects/:id/pipelines, filtered and ordered as GitLab documents it."""
            q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            order_by, sort = q.get("order_by", "id"), q.get("sort", "desc")
            if order_by not in ("id", "status", "ref", "updated_at", "user_id"):
                return self._send(400, {"error": "order_by does not have a valid value"})
            if sort not in ("asc", "desc"):
                return self._send(400, {"error": "sort does not have a valid value"})
            bounds = {}
            for k in ("updated_after", "updated_before"):
                if k in q:
                    bounds[k] = parse_iso(q[k])
                    if bounds[k] is None:
                        return self._send(400, {"error": k + " is invalid"})
            try:
                per_page = min(max(int(q.get("per_page", "20")), 1), 100)
                page = max(int(q.get("page", "1")), 1)
            except ValueError:
                return self._send(400, {"error": "per_page is invalid"})
            with state.lock:
                t = now_ms()
                out = []
                for p in state.pipelines.values():
                    state.status_of(p, t)
                    up = updated_ms(p)
                    if p["project"] != project or ("ref" in q and p["ref"] != q["ref"]) or \
                            ("source" in q and q["source"] != "trigger") or \
                            ("status" in q and p["status"] != q["status"]) or \
                            ("updated_after" in bounds and up <= bounds["updated_after"]) or \
                            ("updated_before" in bounds and up >= bounds["updated_before"]):
                        continue
                    out.append(p)
                key = {"id": lambda p: p["id"], "status": lambda p: p["status"],
                       "ref": lambda p: p["ref"], "updated_at": updated_ms,
                       "user_id": lambda p: 0}[order_by]
                out.sort(key=key, reverse=sort == "desc")
                out = out[(page - 1) * per_page:page * per_page]
                state.counts["GET list"] = state.counts.get("GET list", 0) + 1
                return self._send(200, [self._pipe_json(p) for p in out])

        def _trigger(self, project, form):
            d = dict(form)
            if d.get("token") != state.trigger_token:
                return self._send(401, {"message": "401 Unauthorized"})
            ref = d.get("ref", "")
            if not ref or ref == "missing":
                return self._send(422, {"message": {"base": ["Reference not found"]}})
            if project == "404":
                return self._send(404, {"message": "404 Project Not Found"})
            if project == "403":
                return self._send(403, {"message": "403 Forbidden"})
            with state.lock:
                state.next_id += 1
                pid = state.next_id
                p = {"id": pid, "iid": pid - 1000, "ref": ref, "project": project,
                     "project_id": 77, "created": now_ms(),
                     "script": state.script_for(ref, pid),
                     "web_url": f"http://gitlab.example/{project}/-/pipelines/{pid}",
                     "variables": [(k[10:-1], v) for k, v in form
                                   if k.startswith("variables[") and k.endswith("]")]}
                state.pipelines[pid] = p
                state.status_of(p)
                created = self._pipe_json(p)
            f = self._injected_after_create("/trigger/pipeline")
            if f and f.get("delay_ms"):
                time.sleep(f["delay_ms"] / 1000.0)
            if f and f["status"] == 201:
                return self._send(201, created)
            if f:
                return self._send(f["status"], "<html><body><h1>%d</h1>proxy error</body></html>"
                                  % f["status"], ctype="text/html")
            return self._send(201, created)

        def _control(self, method, path, query, body):
            q = urllib.parse.parse_qs(query)
            if path == "/_send_hook" and method == "POST":  # outside the lock: it calls out
                d = json.loads(body or b"{}")
                try:
                    st, text = gitlab_hooks.send(d.pop("url"), d.pop("token"), d.pop("kind"), **d)
                except (KeyError, TypeError, ValueError, OSError) as e:
                    return self._send(400, {"message": "cannot send: %s" % e})
                return self._send(200, {"status": st, "body": text})
            with state.lock:
                if path == "/_log":
                    return self._send(200, state.log)
                if path == "/_counts":
                    return self._send(200, state.counts)
                if path == "/_pipelines":
                    t = now_ms()
                    for p in state.pipelines.values():
                        state.status_of(p, t)
                    return self._send(200, [
                        {"id": p["id"], "ref": p["ref"], "status": p["status"],
                         "ended_at": p.get("ended_at"), "variables": p["variables"],
                         "cancel_requests": p.get("cancel_requests", 0)}
                        for p in state.pipelines.values()])
                if path == "/_hooks":
                    t = now_ms()
                    for p in state.pipelines.values():
                        state.status_of(p, t)
                    since = int(q.get("since", ["0"])[0])
                    return self._send(200, {"next": len(state.hooks),
                                            "hooks": state.hooks[since:]})
                if path == "/_control/reset" and method == "POST":
                    state.reset()
                    return self._send(200, {"ok": True})
                if path == "/_control/fail" and method == "POST":
                    state.fails.append(json.loads(body or b"{}"))
                    return self._send(200, {"ok": True})
                if path == "/_control" and method == "POST":
                    d = json.loads(body or b"{}")
                    state.scripts[d["ref"]] = d
                    return self._send(200, {"ok": True})
            return self._send(404, {"message": "unknown control path"})

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

    return Handler


def main(argv):
    port, trigger_token, api_token = 0, "trig-secret", "api-secret"
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--trigger-token":
            trigger_token = args.pop(0)
        elif a == "--api-token":
            api_token = args.pop(0)
        else:
            port = int(a)
    state = State(trigger_token, api_token)
    srv = Server(("127.0.0.1", port), make_handler(state))
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
