/* chatopsctl_gitlab: `gitlab-hook KIND [options]` sends the ingress a GitLab webhook as GitLab
 * would (the payload shapes of docs.gitlab.com webhook_events.html, X-Gitlab-Event,
 * X-Gitlab-Token of a gitlab.hooks entry or gitlab.webhook_token, X-Gitlab-Instance,
 * X-Gitlab-Event-UUID), for the newcomer demo: a failed pipeline, then a green one ("fixed"),
 * a production deployment... and prints the ingress's answer. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chatopsctl.h"
#include "crypto.h"
#include "strutil.h"

struct hook_opts {
    const char *kind, *status, *project, *ref, *env, *action, *title, *user, *hook, *ingress, *uuid,
        *instance;
    long long id, project_id;
};

static const char *const KINDS[][2] = {{"push", "Push Hook"},
                                       {"tag_push", "Tag Push Hook"},
                                       {"merge_request", "Merge Request Hook"},
                                       {"pipeline", "Pipeline Hook"},
                                       {"job", "Job Hook"},
                                       {"deployment", "Deployment Hook"},
                                       {"release", "Release Hook"},
                                       {"issue", "Issue Hook"},
                                       {"note", "Note Hook"}};

static const char *header_of(const char *kind) {
    for (size_t i = 0; i < sizeof(KINDS) / sizeof(KINDS[0]); i++)
        if (!strcmp(KINDS[i][0], kind)) return KINDS[i][1];
    return NULL;
}

static int parse(int argc, char **argv, struct hook_opts *o) {
    memset(o, 0, sizeof(*o));
    o->status = "failed";
    o->project = "ops/web";
    o->ref = "main";
    o->env = "production";
    o->action = "open";
    o->title = "Fix the flaky deploy check";
    o->user = "Alice Admin";
    o->instance = "https://gitlab.example.com";
    o->project_id = 7;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **s = !strcmp(a, "--status")     ? &o->status
                         : !strcmp(a, "--project")  ? &o->project
                         : !strcmp(a, "--ref")      ? &o->ref
                         : !strcmp(a, "--env")      ? &o->env
                         : !strcmp(a, "--action")   ? &o->action
                         : !strcmp(a, "--title")    ? &o->title
                         : !strcmp(a, "--user")     ? &o->user
                         : !strcmp(a, "--hook")     ? &o->hook
                         : !strcmp(a, "--ingress")  ? &o->ingress
                         : !strcmp(a, "--uuid")     ? &o->uuid
                         : !strcmp(a, "--instance") ? &o->instance
                                                    : NULL;
        if ((s || !strcmp(a, "--id") || !strcmp(a, "--project-id")) && i + 1 >= argc) {
            fprintf(stderr, "chatopsctl: gitlab-hook: %s needs a value\n", a);
            return 2;
        }
        if (s) {
            *s = argv[++i];
        } else if (!strcmp(a, "--id") || !strcmp(a, "--project-id")) {
            char *end = NULL;
            long long v = strtoll(argv[i + 1], &end, 10);
            if (!end || *end || v < 1) {
                fprintf(stderr, "chatopsctl: gitlab-hook: %s needs a positive number\n", a);
                return 2;
            }
            *(!strcmp(a, "--id") ? &o->id : &o->project_id) = v;
            i++;
        } else if (a[0] == '-' || o->kind) {
            fprintf(stderr, "chatopsctl: gitlab-hook: unexpected '%s' (try --help)\n", a);
            return 2;
        } else {
            o->kind = a;
        }
    }
    if (!o->kind || !header_of(o->kind)) {
        fprintf(stderr, "chatopsctl: gitlab-hook needs a KIND: push, tag_push, merge_request, "
                        "pipeline, job, deployment, release, issue or note\n");
        return 2;
    }
    return 0;
}

int cq_ctl_gitlab_usage(int argc, char **argv) {
    struct hook_opts o;
    return parse(argc, argv, &o);
}

static cJSON *project_of(const struct hook_opts *o, const char *base) {
    cJSON *p = cJSON_CreateObject();
    char url[1024];
    snprintf(url, sizeof url, "%s/%s", base, o->project);
    const char *slash = strrchr(o->project, '/');
    cJSON_AddNumberToObject(p, "id", (double)o->project_id);
    cJSON_AddStringToObject(p, "name", slash ? slash + 1 : o->project);
    cJSON_AddStringToObject(p, "web_url", url);
    cJSON_AddStringToObject(p, "path_with_namespace", o->project);
    cJSON_AddStringToObject(p, "default_branch", "main");
    return p;
}

static cJSON *user_of(const struct hook_opts *o) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "id", 1);
    cJSON_AddStringToObject(u, "name", o->user);
    cJSON_AddStringToObject(u, "username", "demo");
    return u;
}

/* The documented body of o->kind (the fields chatops and most receivers read). */
static cJSON *body_of(const struct hook_opts *o, const char *base) {
    cJSON *b = cJSON_CreateObject(), *oa;
    char url[1200], ref[600];
    const char *k = o->kind;
    long long id = o->id ? o->id : 100 + (long long)(time(NULL) % 100000);
    cJSON_AddStringToObject(b, "object_kind", !strcmp(k, "job") ? "build" : k);
    cJSON_AddItemToObject(b, "project", project_of(o, base));
    cJSON_AddItemToObject(b, "user", user_of(o));
    if (!strcmp(k, "push") || !strcmp(k, "tag_push")) {
        snprintf(ref, sizeof ref, "refs/%s/%s", !strcmp(k, "push") ? "heads" : "tags", o->ref);
        cJSON_AddStringToObject(b, "event_name", k);
        cJSON_AddStringToObject(b, "ref", ref);
        cJSON_AddStringToObject(b, "user_name", o->user);
        cJSON_AddNumberToObject(b, "project_id", (double)o->project_id);
        cJSON *cs = cJSON_AddArrayToObject(b, "commits"), *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "title", o->title);
        cJSON_AddStringToObject(c, "message", o->title);
        cJSON_AddItemToArray(cs, c);
        cJSON_AddNumberToObject(b, "total_commits_count", 1);
    } else if (!strcmp(k, "merge_request") || !strcmp(k, "issue")) {
        oa = cJSON_AddObjectToObject(b, "object_attributes");
        cJSON_AddNumberToObject(oa, "iid", (double)id);
        cJSON_AddStringToObject(oa, "title", o->title);
        cJSON_AddStringToObject(oa, "action", o->action);
        cJSON_AddStringToObject(oa, "state", "opened");
        cJSON_AddStringToObject(oa, "source_branch", "feature");
        cJSON_AddStringToObject(oa, "target_branch", o->ref);
        snprintf(url, sizeof url, "%s/%s/-/%s/%lld", base, o->project,
                 !strcmp(k, "issue") ? "issues" : "merge_requests", id);
        cJSON_AddStringToObject(oa, "url", url);
        cJSON_AddArrayToObject(b, "labels");
    } else if (!strcmp(k, "pipeline")) {
        oa = cJSON_AddObjectToObject(b, "object_attributes");
        cJSON_AddNumberToObject(oa, "id", (double)id);
        cJSON_AddStringToObject(oa, "ref", o->ref);
        cJSON_AddStringToObject(oa, "status", o->status);
        cJSON_AddNumberToObject(oa, "duration", 192);
        snprintf(url, sizeof url, "%s/%s/-/pipelines/%lld", base, o->project, id);
        cJSON_AddStringToObject(oa, "url", url);
        cJSON *c = cJSON_AddObjectToObject(b, "commit");
        cJSON_AddStringToObject(c, "title", o->title);
        cJSON *builds = cJSON_AddArrayToObject(b, "builds"), *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "id", (double)(id * 10));
        cJSON_AddStringToObject(j, "name", "unit-tests");
        cJSON_AddStringToObject(j, "stage", "test");
        cJSON_AddStringToObject(j, "status", o->status);
        cJSON_AddItemToArray(builds, j);
    } else if (!strcmp(k, "job")) {
        cJSON_AddNumberToObject(b, "build_id", (double)id);
        cJSON_AddStringToObject(b, "build_name", o->title);
        cJSON_AddStringToObject(b, "build_status", o->status);
        cJSON_AddStringToObject(b, "ref", o->ref);
        cJSON_AddNumberToObject(b, "project_id", (double)o->project_id);
    } else if (!strcmp(k, "deployment")) {
        cJSON_AddNumberToObject(b, "deployment_id", (double)id);
        cJSON_AddStringToObject(b, "status", o->status);
        cJSON_AddStringToObject(b, "environment", o->env);
        cJSON_AddStringToObject(b, "ref", o->ref);
        cJSON_AddStringToObject(b, "commit_title", o->title);
        snprintf(url, sizeof url, "%s/%s/-/jobs/%lld", base, o->project, id);
        cJSON_AddStringToObject(b, "deployable_url", url);
    } else if (!strcmp(k, "release")) {
        cJSON_AddStringToObject(b, "tag", o->ref);
        cJSON_AddStringToObject(b, "name", o->title);
        cJSON_AddStringToObject(b, "description", o->title);
        cJSON_AddStringToObject(b, "action", !strcmp(o->action, "open") ? "create" : o->action);
        snprintf(url, sizeof url, "%s/%s/-/releases/%s", base, o->project, o->ref);
        cJSON_AddStringToObject(b, "url", url);
    } else { /* note */
        oa = cJSON_AddObjectToObject(b, "object_attributes");
        cJSON_AddStringToObject(oa, "note", o->title);
        cJSON_AddStringToObject(oa, "noteable_type", "Commit");
    }
    return b;
}

int cq_ctl_gitlab(const struct cq_config *cfg, int argc, char **argv) {
    struct hook_opts o;
    struct cq_ctl_http res = {0};
    char uuid[CQ_UUID_LEN + 1];
    int rc = 1;
    if (parse(argc, argv, &o)) return 2;
    const char *token = NULL;
    for (size_t i = 0; i < cfg->gitlab.n_hooks && !token; i++)
        if (!o.hook || !strcmp(o.hook, cfg->gitlab.hooks[i].name)) {
            token = cfg->gitlab.hooks[i].token.value;
            if (cfg->gitlab.hooks[i].instance) o.instance = cfg->gitlab.hooks[i].instance;
        }
    if (!token && !o.hook) token = cfg->gitlab.webhook_token.value;
    if (!token) {
        fprintf(stderr, "chatopsctl: gitlab-hook: no token: %s\n",
                o.hook ? "no such gitlab.hooks entry" : "no gitlab.hooks and no webhook_token");
        return 1;
    }
    if (!o.uuid && cq_uuid4(uuid) == CQ_OK) o.uuid = uuid;
    cJSON *b = body_of(&o, cfg->gitlab.base_url ? cfg->gitlab.base_url : o.instance);
    char *body = b ? cJSON_PrintUnformatted(b) : NULL;
    char *url = o.ingress ? cq_strprintf("%s%s", o.ingress, cfg->ingress.gitlab_webhook_path)
                          : cq_strprintf("http://127.0.0.1:%d%s", cfg->ingress.port,
                                         cfg->ingress.gitlab_webhook_path);
    char *h_event = cq_strprintf("X-Gitlab-Event: %s", header_of(o.kind));
    char *h_token = cq_strprintf("X-Gitlab-Token: %s", token);
    char *h_inst = cq_strprintf("X-Gitlab-Instance: %s", o.instance);
    char *h_uuid = cq_strprintf("X-Gitlab-Event-UUID: %s", o.uuid ? o.uuid : "");
    if (!body || !url || !h_event || !h_token || !h_inst || !h_uuid) {
        fprintf(stderr, "chatopsctl: gitlab-hook: out of memory\n");
        goto out;
    }
    const char *headers[] = {
        "Content-Type: application/json", h_event, h_token, h_inst, h_uuid, NULL};
    if (cq_ctl_http_do("POST", url, headers, body, strlen(body), 10000, &res) != 0) {
        fprintf(stderr, "chatopsctl: gitlab-hook: %s: %s\n", url, res.err);
        goto out;
    }
    printf("%s %s of %s -> %ld %s\n", header_of(o.kind), o.status, o.project, res.status,
           res.body ? res.body : "");
    rc = res.status == 200 ? 0 : 1;
out:
    free(res.body);
    cJSON_Delete(b);
    cJSON_free(body);
    free(url);
    free(h_event);
    free(h_token);
    free(h_inst);
    free(h_uuid);
    return rc;
}
