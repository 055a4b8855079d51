#!/usr/bin/env python3
"""demo_fakes: the demo GitLab and chat sinks that scripts/run.sh starts (standard library only).

Wraps the test fakes in tests/fakes/ with the demo's secrets and scripts:
  gitlab  fake_gitlab.py plus GitLab's Features API in its documented shapes (GET /features
          lists them, no single-flag GET; POST value=true|false|0-100; flags new_ui on, dark_mode
          off to start) and
          pipelines scripted by project and variables instead of by ref:
            ops/ansible-lb  pending -> running (1.5 s) -> success (4.5 s); LB_PERCENT=99 fails
                            at 4 s with an Ansible log tail on the failed job
            ops/deploy      pending -> running (1 s) -> manual (2.5 s): the `deploy` job waits
          Ended pipelines are sent to --hook-url as GitLab Pipeline Hooks (X-Gitlab-Token).
  slack   fake_slack.py with the bot token; response_url posts land at /response/<id>
  feishu  fake_feishu.py with the app id and secret
  identity  each also answers the identity lookups (tests/fakes/fake_directory.py): Slack
          users.info, Feishu contact users, GitLab users and group members; dave is known
          only there (maintainer of ops/sre, developer in ops/web)
Every fake records what it received at GET /_log.
  (each also takes --listen ADDR, default 127.0.0.1)
  demo_fakes.py gitlab --port P --api-token A --trigger-token T [--trigger-token T2 ...]
                       [--hook-url URL --hook-token W]
  demo_fakes.py slack  --port P --bot-token xoxb-...
  demo_fakes.py feishu --port P --app-id ID --app-secret S
  demo_fakes.py mattermost|discord|webex --port P --bot-token T   (issue 18's notifier sinks:
          tests/fakes/fake_<platform>.py; discord also --app-id APPLICATION_ID)
  demo_fakes.py dingtalk --port P --app-key K --app-secret S --robot-code R
"""
import argparse
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fakes"))
import fake_gitlab  # noqa: E402
import fake_slack  # noqa: E402
from fake_directory import Directory  # noqa: E402
from fake_feishu import FakeFeishu  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402
from fake_dingtalk import FakeDingTalk  # noqa: E402
from fake_discord import FakeDiscord  # noqa: E402
from fake_mattermost import FakeMattermost  # noqa: E402
from fake_webex import FakeWebex  # noqa: E402

LB_FAIL_TRACE = """\
$ ansible-playbook -i inventories/prod lb-weight.yml -e pool={pool} -e percent={percent}
PLAY [set pool weight] *********************************************************
TASK [Gathering Facts] *********************************************************
ok: [lb-1.prod]
ok: [lb-2.prod]
TASK [lb : check the other pool keeps its minimum share] ***********************
fatal: [lb-1.prod]: FAILED! => {{"changed": false, "msg": "refusing: {pool}={percent}% leaves {other} at {rest}%, below its minimum of 5%"}}
fatal: [lb-2.prod]: FAILED! => {{"changed": false, "msg": "refusing: {pool}={percent}% leaves {other} at {rest}%, below its minimum of 5%"}}
PLAY RECAP *********************************************************************
lb-1.prod                  : ok=1    changed=0    unreachable=0    failed=1
lb-2.prod                  : ok=1    changed=0    unreachable=0    failed=1
ERROR: Job failed: exit code 2
"""

# The trigger's context, per request thread, for DemoState.script_for (which sees only ref).
_ctx = threading.local()


class DemoState(fake_gitlab.State):
    def reset(self):
        super().reset()
        self.flags = {"new_ui": {"boolean": True}, "dark_mode": {"boolean": False}}

    def script_for(self, ref, pid):
        project = getattr(_ctx, "project", "")
        variables = getattr(_ctx, "variables", {})
        if project.endswith("ansible-lb"):
            pool = variables.get("LB_POOL", "?")
            percent = variables.get("LB_PERCENT", "?")
            if percent == "99":
                other = "green" if pool == "blue" else "blue"
                return {"steps": [{"status": "pending", "after_ms": 0},
                                  {"status": "running", "after_ms": 1500},
                                  {"status": "failed", "after_ms": 4000}],
                        "trace": LB_FAIL_TRACE.format(pool=pool, percent=percent,
                                                      other=other, rest=1)}
            return {"steps": [{"status": "pending", "after_ms": 0},
                              {"status": "running", "after_ms": 1500},
                              {"status": "success", "after_ms": 4500}]}
        if project.endswith("deploy"):
            return {"steps": [{"status": "pending", "after_ms": 0},
                              {"status": "running", "after_ms": 1000},
                              {"status": "manual", "after_ms": 2500}]}
        return super().script_for(ref, pid)


def feature_json(name, gates):
    """A feature as GitLab's Features API returns it: state on/off, or conditional with a
    percentage gate; gates list the boolean gate first."""
    pct = gates.get("percentage_of_time")
    out = [{"key": "boolean", "value": gates["boolean"]}]
    if pct is not None:
        out.append({"key": "percentage_of_time", "value": pct})
    st = "on" if gates["boolean"] else ("conditional" if pct else "off")
    return {"name": name, "state": st, "gates": out, "definition": None}


def demo_handler(state, trigger_tokens):
    base = fake_gitlab.make_handler(state)

    class Handler(base):
        def _trigger(self, project, form):
            # Every configured trigger token is valid; the wrapped fake knows only one.
            form = [("token", state.trigger_token) if k == "token" and v in trigger_tokens
                    else (k, v) for k, v in form]
            _ctx.project = project
            _ctx.variables = {k[10:-1]: v for k, v in form
                              if k.startswith("variables[") and k.endswith("]")}
            try:
                return super()._trigger(project, form)
            finally:
                _ctx.project, _ctx.variables = "", {}

        def _features(self, method, path, body):
            # GitLab's Features API as documented (doc/api/features.md): GET /features lists
            # every flag GitLab has a record of, there is no GET of one flag (404 like any
            # unknown route), POST /features/:name takes value=true|false or a percentage of
            # time 0-100 and answers 201 with the feature, DELETE answers 204.
            name = urllib.parse.unquote(path[len("/api/v4/features/"):]) if path != "/api/v4/features" else None
            if self.headers.get("PRIVATE-TOKEN") != state.api_token:
                return self._send(401, {"message": "401 Unauthorized"})
            with state.lock:
                state.log.append({"method": method, "path": path, "query": "", "form": [],
                                  "raw_body": body.decode("latin-1"),
                                  "private_token": "<set>", "at": fake_gitlab.now_ms()})
                if name is None:
                    if method != "GET":
                        return self._send(405, {"error": "405 Not Allowed"})
                    return self._send(200, [feature_json(n, g) for n, g in sorted(state.flags.items())])
                if method == "POST" and name:
                    form = dict(urllib.parse.parse_qsl(body.decode("latin-1")))
                    v = form.get("value", "")
                    if v in ("true", "false"):
                        state.flags[name] = {"boolean": v == "true"}
                    elif v.isdigit() and 0 <= int(v) <= 100:
                        state.flags[name] = {"boolean": False, "percentage_of_time": int(v)}
                    else:
                        return self._send(400, {"error": "value is invalid"} if v else
                                          {"error": "value is missing"})
                    return self._send(201, feature_json(name, state.flags[name]))
                if method == "DELETE" and name:
                    state.flags.pop(name, None)
                    return self._send(204, b"")
            return self._send(404, {"error": "404 Not Found"})

        def _route(self, method):
            if self.path.partition("?")[0] == "/api/v4/features" or self.path.startswith("/api/v4/features/"):
                n = int(self.headers.get("Content-Length") or 0)
                return self._features(method, self.path.partition("?")[0],
                                      self.rfile.read(n) if n > 0 else b"")
            return self._handle(method)

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_DELETE(self):
            self._route("DELETE")

    return Handler


def forward_hooks(state, url, token):
    """Posts every ended pipeline to the ingress as a Pipeline Hook, like GitLab would."""
    sent = 0
    while True:
        time.sleep(0.25)
        with state.lock:
            t = fake_gitlab.now_ms()
            for p in state.pipelines.values():
                state.status_of(p, t)
            hooks = state.hooks[sent:]
        for h in hooks:
            body = {k: v for k, v in h.items() if k != "ended_at"}
            req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "X-Gitlab-Event": "Pipeline Hook",
                                                  "X-Gitlab-Token": token})
            try:
                urllib.request.urlopen(req, timeout=3).read()
            except OSError:
                pass  # the ingress may not be up yet; polling is the fallback
        sent += len(hooks)


def demo_directory(admin_token):
    """The people the demo's Slack, Feishu and GitLab know for identity.resolvers (issue 17):
    alice, bob and carol (also in people:, which wins) and dave, known only to GitLab's
    groups: maintainer of ops/sre (role sre), developer in ops/web (role developer)."""
    d = Directory(admin_token=admin_token)
    for uid, (name, slack, feishu) in enumerate([("alice", "U0ALICE001", "ou_alice0001"),
                                                ("bob", "U0BOB00001", "ou_bob000001"),
                                                ("carol", "U0CAROL001", "ou_carol0001"),
                                                ("dave", "U0DAVE0001", "ou_dave00001")], 11):
        email = "%s@example.com" % name
        d.slack_user(slack, email, name)
        d.feishu_user(feishu, email, name)
        d.gitlab_user(uid, name, email)
    d.group("ops/sre", 3, {14: 40, 12: 40})
    d.group("ops/web", 4, {14: 30, 11: 30})
    return d


def main(argv):
    ap = argparse.ArgumentParser(description="demo fakes for scripts/run.sh")
    ap.add_argument("which", choices=["gitlab", "slack", "feishu", "mattermost", "discord",
                                      "webex", "dingtalk"])
    ap.add_argument("--app-key", default="ding-app-key")
    ap.add_argument("--robot-code", default="ding-robot")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--listen", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    ap.add_argument("--api-token", default="api-secret")
    ap.add_argument("--trigger-token", action="append", default=[])
    ap.add_argument("--hook-url")
    ap.add_argument("--hook-token", default="")
    ap.add_argument("--bot-token", default="xoxb-test-token")
    ap.add_argument("--app-id", default="cli_test")
    ap.add_argument("--app-secret", default="s3cret")
    a = ap.parse_args(argv)
    fake_slack.BIND_HOST = a.listen
    if a.which == "gitlab":
        tokens = set(a.trigger_token) or {"trig-secret"}
        state = DemoState(sorted(tokens)[0], a.api_token)
        state.directory = demo_directory(a.api_token)  # the demo's api token is its admin
        srv = fake_gitlab.Server((a.listen, a.port), demo_handler(state, tokens))
        srv.daemon_threads = True
        if a.hook_url:
            threading.Thread(target=forward_hooks, args=(state, a.hook_url, a.hook_token),
                             daemon=True).start()
        print("PORT %d" % srv.server_address[1], flush=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0
    if a.which in ("mattermost", "discord", "webex", "dingtalk"):  # issue 18: no directory
        if a.which == "mattermost":
            f = FakeMattermost(a.port, token=a.bot_token)
        elif a.which == "discord":
            f = FakeDiscord(a.port, application_id=a.app_id, token=a.bot_token)
        elif a.which == "webex":
            f = FakeWebex(a.port, token=a.bot_token)
        else:
            f = FakeDingTalk(a.port, app_key=a.app_key, app_secret=a.app_secret,
                             robot_code=a.robot_code)
        f.start()
        print("PORT %d" % f.port, flush=True)
        try:
            f.thread.join()
        except KeyboardInterrupt:
            f.stop()
        return 0
    if a.which == "slack":
        f = FakeSlack(a.port, token=a.bot_token)
    else:
        f = FakeFeishu(a.port, app_id=a.app_id, app_secret=a.app_secret)
    f.directory = demo_directory(a.api_token)  # users.info / contact users (identity)
    f.start()
    print("PORT %d" % f.port, flush=True)
    try:
        f.thread.join()
    except KeyboardInterrupt:
        f.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
