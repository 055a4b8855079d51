#!/usr/bin/env python3
"""fake_directory: the people Slack, Feishu and GitLab know, for the identity resolvers
(issue 17; standard library only). Not a server: fake_slack.py, fake_feishu.py and
fake_gitlab.py ask it first when their `directory` attribute is set, and it answers the
endpoints below in the platforms' documented shapes (never more leniently):

  Slack   GET|POST /api/users.info?user=U1  (Authorization: Bearer <bot token>)
          -> {"ok":true,"user":{"id","team_id","name","deleted","real_name","is_bot",
              "profile":{"real_name","display_name","email"}}}; "email" only with the
              users:read.email scope; {"ok":false,"error":"user_not_found" | "invalid_auth" |
              "missing_scope","needed":"users:read","provided":...}
  Feishu  GET /open-apis/contact/v3/users/:user_id?user_id_type=open_id
          (Authorization: Bearer <tenant_access_token> issued by the fake)
          -> {"code":0,"msg":"success","data":{"user":{"union_id","user_id","open_id","name",
              "en_name","email","enterprise_email","status":{"is_frozen","is_resigned",
              "is_activated","is_exited","is_unjoin"}}}}; "email" only with the
              contact:user.email:readonly permission; 400 {"code":41050,"msg":"no user
              authority error"} for a user outside the app's contact scope; 400 99991663 /
              99991671 for an expired / unknown token
  GitLab  GET /api/v4/users?search=Q[&per_page=N&page=P]  (PRIVATE-TOKEN)
          -> [{"id","username","name","state","avatar_url","web_url","public_email", and for
              an admin token "email"}]: search matches username or name (substring, any
              case) and, as GitLab does, an e-mail only in full (the primary one only for
              admins)
          GET /api/v4/groups/:id/members/all/:user_id  (group id or url-encoded full path)
          -> {"id","username","name","state","access_level","membership_state",
              "expires_at","created_at"}; 404 {"message":"404 Group Not Found"} /
              {"message":"404 Not found"} (not a member, directly or inherited)
  Faults: gitlab_fail = {"status": 503, "count": -1 (forever) | N} answers the GitLab
          identity endpoints with it; gitlab_delay = S seconds before answering them.
"""
import json
import threading
import time
import urllib.parse

ACCESS = {"guest": 10, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}


class Directory:
    def __init__(self, admin_token="glpat-admin", slack_scopes=("users:read", "users:read.email"),
                 feishu_email_permission=True):
        self.lock = threading.Lock()
        self.admin_token = admin_token
        self.slack_scopes = set(slack_scopes)
        self.feishu_email_permission = feishu_email_permission
        self.slack = {}      # user id -> {"name", "email" (or None), "deleted"}
        self.feishu = {}     # open_id -> {"name", "email", "frozen", "resigned"}
        self.gl_users = {}   # id -> {"id","username","name","state","email","public_email"}
        self.groups = {}     # full path -> {"id": n, "members": {user id: access level}}
        self.gitlab_fail = None
        self.gitlab_delay = 0
        self.calls = []      # (platform, path, time) of every identity request answered

    # ---- the test's side ----
    def slack_user(self, uid, email, name=None, deleted=False):
        with self.lock:
            self.slack[uid] = {"name": name or uid.lower(), "email": email, "deleted": deleted}

    def feishu_user(self, open_id, email, name=None, frozen=False, resigned=False):
        with self.lock:
            self.feishu[open_id] = {"name": name or open_id, "email": email, "frozen": frozen,
                                    "resigned": resigned}

    def gitlab_user(self, uid, username, email, state="active", public_email=""):
        with self.lock:
            self.gl_users[uid] = {"id": uid, "username": username, "name": username.title(),
                                  "state": state, "email": email, "public_email": public_email}

    def group(self, path, gid, members=None):
        with self.lock:
            self.groups[path] = {"id": gid, "members": dict(members or {})}

    def set_member(self, path, uid, level):
        """level: an access level (40) or a name (maintainer); None removes the member."""
        with self.lock:
            m = self.groups[path]["members"]
            if level is None:
                m.pop(uid, None)
            else:
                m[uid] = ACCESS.get(level, level)

    def times(self):
        with self.lock:
            return [c[2] for c in self.calls]

    def count(self, platform):
        with self.lock:
            return sum(1 for c in self.calls if c[0] == platform)

    # ---- Slack ----
    def slack_answer(self, method, path, headers, body, bot_token):
        if not path.startswith("/api/users.info"):
            return None
        js = {"Content-Type": "application/json; charset=utf-8"}
        q = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
        if method == "POST":
            q.update(urllib.parse.parse_qs(body or ""))
        with self.lock:
            self.calls.append(("slack", path, time.time()))
            if headers.get("authorization") != "Bearer " + bot_token:
                return 200, b'{"ok":false,"error":"invalid_auth"}', js
            if "users:read" not in self.slack_scopes:
                return 200, json.dumps({"ok": False, "error": "missing_scope", "needed": "users:read",
                                        "provided": ",".join(sorted(self.slack_scopes))}).encode(), js
            uid = (q.get("user") or [""])[0]
            u = self.slack.get(uid)
            if not u:
                return 200, b'{"ok":false,"error":"user_not_found"}', js
            profile = {"real_name": u["name"].title(), "display_name": u["name"]}
            if u["email"] and "users:read.email" in self.slack_scopes:
                profile["email"] = u["email"]
            user = {"id": uid, "team_id": "T1", "name": u["name"], "deleted": u["deleted"],
                    "real_name": u["name"].title(), "is_bot": False, "profile": profile}
        return 200, json.dumps({"ok": True, "user": user}).encode(), js

    # ---- Feishu ----
    def feishu_answer(self, method, path, headers, token_valid):
        """token_valid(token) -> True | False (expired) | None (unknown)."""
        if not path.startswith("/open-apis/contact/v3/users/") or method != "GET":
            return None
        js = {"Content-Type": "application/json; charset=utf-8"}

        def ans(status, obj):
            return status, json.dumps(obj).encode(), js
        u = urllib.parse.urlparse(path)
        q = urllib.parse.parse_qs(u.query)
        uid = urllib.parse.unquote(u.path[len("/open-apis/contact/v3/users/"):])
        auth = headers.get("authorization", "")
        tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        valid = token_valid(tok)
        with self.lock:
            self.calls.append(("feishu", path, time.time()))
            if valid is None:
                return ans(400, {"code": 99991671, "msg": "invalid access token"})
            if valid is False:
                return ans(400, {"code": 99991663, "msg": "tenant access token expired"})
            if (q.get("user_id_type") or ["open_id"])[0] != "open_id":
                return ans(400, {"code": 99992402, "msg": "field validation failed"})
            p = self.feishu.get(uid)
            if not p:
                return ans(400, {"code": 41050, "msg": "no user authority error"})
            user = {"union_id": "on_" + uid, "user_id": "u_" + uid, "open_id": uid,
                    "name": p["name"], "en_name": p["name"],
                    "status": {"is_frozen": p["frozen"], "is_resigned": p["resigned"],
                               "is_activated": True, "is_exited": False, "is_unjoin": False}}
            if self.feishu_email_permission and p["email"]:
                user["email"] = p["email"]
        return ans(200, {"code": 0, "msg": "success", "data": {"user": user}})

    # ---- GitLab ----
    def gitlab_answer(self, method, path, query, private_token, api_token):
        """(status, JSON object, headers) or None when the path is not an identity endpoint."""
        members = path.startswith("/api/v4/groups/") and "/members/all/" in path
        if not (path == "/api/v4/users" or members) or method != "GET":
            return None
        with self.lock:
            self.calls.append(("gitlab", path, time.time()))
            delay, fail = self.gitlab_delay, self.gitlab_fail
            if fail and fail.get("count", -1) != 0:
                if fail.get("count", -1) > 0:
                    fail["count"] -= 1
            else:
                fail = None
        if delay:
            time.sleep(delay)
        if fail:
            return fail["status"], {"message": "%d Service Unavailable" % fail["status"]}, {}
        admin = private_token == self.admin_token
        if not admin and private_token != api_token:
            return 401, {"message": "401 Unauthorized"}, {}
        q = urllib.parse.parse_qs(query)
        with self.lock:
            if path == "/api/v4/users":
                s = (q.get("search") or [""])[0].lower()
                out = []
                for u in sorted(self.gl_users.values(), key=lambda x: x["id"]):
                    hit = s and (s in u["username"].lower() or s in u["name"].lower()
                                 or s == (u["public_email"] or "").lower()
                                 or (admin and s == (u["email"] or "").lower()))
                    if not hit:
                        continue
                    o = {"id": u["id"], "username": u["username"], "name": u["name"],
                         "state": u["state"], "locked": False,
                         "avatar_url": "https://gitlab.example/avatar/%d" % u["id"],
                         "web_url": "https://gitlab.example/" + u["username"],
                         "public_email": u["public_email"]}
                    if admin:
                        o["email"] = u["email"]
                    out.append(o)
                per_page = min(int((q.get("per_page") or ["20"])[0]), 100)
                page = int((q.get("page") or ["1"])[0])
                return 200, out[(page - 1) * per_page:page * per_page], {}
            gpath, _, uid = path[len("/api/v4/groups/"):].partition("/members/all/")
            gpath = urllib.parse.unquote(gpath)
            g = next((v for k, v in self.groups.items()
                      if k == gpath or str(v["id"]) == gpath), None)
            if not g:
                return 404, {"message": "404 Group Not Found"}, {}
            try:
                uid = int(uid)
            except ValueError:
                return 400, {"error": "user_id is invalid"}, {}
            lvl = g["members"].get(uid)
            u = self.gl_users.get(uid)
            if lvl is None or not u:
                return 404, {"message": "404 Not found"}, {}
            return 200, {"id": uid, "username": u["username"], "name": u["name"],
                         "state": u["state"], "access_level": lvl, "membership_state": "active",
                         "expires_at": None, "created_at": "2026-01-01T00:00:00.000Z"}, {}
