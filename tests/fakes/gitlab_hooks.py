#!/usr/bin/env python3
"""gitlab_hooks: GitLab webhook payloads shaped as docs.gitlab.com documents them
(user/project/integrations/webhook_events.html), and a sender that delivers them as GitLab
does (POST JSON with X-Gitlab-Event, X-Gitlab-Token, X-Gitlab-Instance,
X-Gitlab-Event-UUID, X-Gitlab-Webhook-UUID and Idempotency-Key). Standard library only;
used by tests, fake_gitlab.py's /_send_hook and scripts/demo_fakes.py.

  payload(kind, project="ops/web", project_id=7, ...) -> (X-Gitlab-Event, body dict)
  send(url, token, kind, uuid=None, instance="https://gitlab.example.com", system=False,
       **fields) -> (status, body text)
"""
import json
import urllib.error
import urllib.request
import uuid as uuidlib

HEADERS = {"push": "Push Hook", "tag_push": "Tag Push Hook",
           "merge_request": "Merge Request Hook", "pipeline": "Pipeline Hook",
           "job": "Job Hook", "deployment": "Deployment Hook", "release": "Release Hook",
           "issue": "Issue Hook", "note": "Note Hook"}


def _project(path, pid, base):
    name = path.rsplit("/", 1)[-1]
    return {"id": pid, "name": name, "description": "", "web_url": "%s/%s" % (base, path),
            "avatar_url": None, "git_ssh_url": "git@example.com:%s.git" % path,
            "git_http_url": "%s/%s.git" % (base, path), "namespace": path.split("/")[0],
            "visibility_level": 20, "path_with_namespace": path, "default_branch": "main",
            "homepage": "%s/%s" % (base, path), "url": "git@example.com:%s.git" % path,
            "ssh_url": "git@example.com:%s.git" % path,
            "http_url": "%s/%s.git" % (base, path)}


def _user(name):
    login = name.split()[0].lower()
    return {"id": 1, "name": name, "username": login,
            "avatar_url": "https://www.gravatar.com/avatar/1", "email": "%s@example.com" % login}


def payload(kind, project="ops/web", project_id=7, ref="main", status="success",
            object_id=101, user="Alice Admin", title="Fix the flaky deploy check",
            environment="production", action="open", labels=(), failed_jobs=(),
            base="https://gitlab.example.com", duration=192):
    prj = _project(project, project_id, base)
    usr = _user(user)
    sha = "bcbb5ec396a2c0f828686f14fac9b80b780504f2"
    commit = {"id": sha, "message": title + "\n\nlonger body\n", "title": title,
              "timestamp": "2026-12-04T14:00:00+00:00",
              "url": "%s/%s/-/commit/%s" % (base, project, sha),
              "author": {"name": user, "email": usr["email"]}}
    if kind in ("push", "tag_push"):
        full = ("refs/tags/" if kind == "tag_push" else "refs/heads/") + ref
        body = {"object_kind": kind, "event_name": kind, "before": "0" * 40, "after": sha,
                "ref": full, "ref_protected": ref == "main", "checkout_sha": sha,
                "user_id": 4, "user_name": user, "user_username": usr["username"],
                "user_email": usr["email"], "user_avatar": usr["avatar_url"],
                "project_id": project_id, "project": prj,
                "repository": {"name": prj["name"], "url": prj["git_ssh_url"],
                               "description": "", "homepage": prj["web_url"]},
                "commits": [] if kind == "tag_push" else [dict(commit, added=[], modified=[
                    "README.md"], removed=[])],
                "total_commits_count": 0 if kind == "tag_push" else 1}
    elif kind == "merge_request":
        body = {"object_kind": "merge_request", "event_type": "merge_request", "user": usr,
                "project": prj, "repository": {"name": prj["name"], "url": prj["url"]},
                "object_attributes": {
                    "id": 9000 + object_id, "iid": object_id, "target_branch": ref,
                    "source_branch": "feature-%d" % object_id, "source_project_id": project_id,
                    "author_id": 1, "title": title, "created_at": "2026-12-04 14:00:00 UTC",
                    "state": {"merge": "merged", "close": "closed"}.get(action, "opened"),
                    "merge_status": "can_be_merged", "target_project_id": project_id,
                    "url": "%s/%s/-/merge_requests/%d" % (base, project, object_id),
                    "action": action, "detailed_merge_status": "mergeable"},
                "labels": [{"id": 200 + i, "title": t, "color": "#ff0000",
                            "project_id": project_id, "type": "ProjectLabel"}
                           for i, t in enumerate(labels)],
                "changes": {}, "reviewers": []}
    elif kind == "pipeline":
        builds = [{"id": 380 + i, "stage": "test", "name": n, "status": "failed",
                   "created_at": "2026-12-04 14:00:00 UTC", "started_at": None,
                   "finished_at": None, "duration": 12.5, "queued_duration": 1.0,
                   "failure_reason": "script_failure", "when": "on_success", "manual": False,
                   "allow_failure": False, "user": usr, "runner": None,
                   "artifacts_file": {"filename": None, "size": None}, "environment": None}
                  for i, n in enumerate(failed_jobs)]
        body = {"object_kind": "pipeline",
                "object_attributes": {
                    "id": object_id, "iid": object_id % 1000, "name": None, "ref": ref,
                    "tag": False, "sha": sha, "before_sha": "0" * 40, "source": "push",
                    "status": status, "detailed_status": status, "stages": ["build", "test"],
                    "created_at": "2026-12-04 14:00:00 UTC",
                    "finished_at": None if status == "running" else "2026-12-04 14:03:12 UTC",
                    "duration": None if status == "running" else duration,
                    "queued_duration": 3, "variables": [],
                    "url": "%s/%s/-/pipelines/%d" % (base, project, object_id)},
                "merge_request": None, "user": usr, "project": prj, "commit": commit,
                "source_pipeline": None, "builds": builds}
    elif kind == "job":
        body = {"object_kind": "build", "ref": ref, "tag": False, "before_sha": "0" * 40,
                "sha": sha, "retries_count": 0, "build_id": object_id, "build_name": title,
                "build_stage": "test", "build_status": status,
                "build_created_at": "2026-12-04 14:00:00 UTC", "build_started_at": None,
                "build_finished_at": None, "build_duration": 61.5,
                "build_queued_duration": 2.0, "build_allow_failure": False,
                "build_failure_reason": "script_failure", "pipeline_id": 2366,
                "runner": None, "project_id": project_id, "project_name": project,
                "user": usr, "commit": {"id": 2366, "name": None, "sha": sha,
                                        "message": title, "author_name": user,
                                        "author_email": usr["email"], "status": status},
                "repository": {"name": prj["name"], "homepage": prj["web_url"]},
                "project": prj, "environment": None}
    elif kind == "deployment":
        body = {"object_kind": "deployment", "status": status,
                "status_changed_at": "2026-12-04 14:00:00 +0000", "deployment_id": object_id,
                "deployable_id": 796,
                "deployable_url": "%s/%s/-/jobs/796" % (base, project),
                "environment": environment, "environment_tier": environment,
                "environment_slug": environment,
                "environment_external_url": "https://%s.example.com" % environment,
                "project": prj, "short_sha": sha[:8], "user": usr,
                "user_url": "%s/%s" % (base, usr["username"]),
                "commit_url": commit["url"], "commit_title": title, "ref": ref}
    elif kind == "release":
        body = {"id": object_id, "created_at": "2026-12-04 14:00:00 UTC",
                "description": "Release notes: %s" % title, "name": "Release %s" % ref,
                "released_at": "2026-12-04 14:00:00 UTC", "tag": ref,
                "object_kind": "release", "project": prj,
                "url": "%s/%s/-/releases/%s" % (base, project, ref), "action": action,
                "assets": {"count": 0, "links": [], "sources": []}, "commit": commit}
    elif kind == "issue":
        body = {"object_kind": "issue", "event_type": "issue", "user": usr, "project": prj,
                "object_attributes": {"id": 300 + object_id, "iid": object_id,
                                      "title": title, "state": "opened", "action": action,
                                      "url": "%s/%s/-/issues/%d" % (base, project, object_id)},
                "labels": [{"id": 200 + i, "title": t} for i, t in enumerate(labels)]}
    elif kind == "note":
        body = {"object_kind": "note", "event_type": "note", "user": usr,
                "project_id": project_id, "project": prj,
                "object_attributes": {"id": 1243, "note": title, "noteable_type": "Commit",
                                      "url": "%s#note_1243" % commit["url"]},
                "commit": commit}
    else:
        raise ValueError("unknown hook kind %r" % kind)
    return HEADERS[kind], body


def send(url, token, kind, uuid=None, instance="https://gitlab.example.com", system=False,
         idempotency_key=None, timeout=10, **fields):
    """POSTs the hook as GitLab does; returns (status, body). A re-send passes the same uuid
    (X-Gitlab-Event-UUID) or idempotency_key (Idempotency-Key)."""
    event, body = payload(kind, **fields)
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "GitLab/17.6.0",
               "X-Gitlab-Event": "System Hook" if system else event,
               "X-Gitlab-Token": token, "X-Gitlab-Instance": instance,
               "X-Gitlab-Webhook-UUID": str(uuidlib.uuid4()),
               "X-Gitlab-Event-UUID": uuid or str(uuidlib.uuid4())}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
