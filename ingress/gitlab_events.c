/* gitlab_events: every GitLab webhook in as an event record for chatops.events (issue 15).
 * The token is compared in constant time against each gitlab.hooks entry that may send from
 * the request's X-Gitlab-Instance, and against gitlab.webhook_token (instance "default"); the
 * kind comes from the body's object_kind (system hooks send "System Hook" for every kind),
 * else from X-Gitlab-Event; the dedupe uuid is Idempotency-Key, else X-Gitlab-Event-UUID,
 * else a SHA-256 of kind and body (an identical re-send is still one). Kinds chatops does not
 * route are answered 200 so GitLab does not disable the hook. Pure, like gitlab.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "strutil.h"
#include "utf8.h"

struct kind_map {
    const char *from, *kind;
};

/* object_kind values (webhook_events.html) and X-Gitlab-Event headers to event kinds. */
static const struct kind_map OBJECT_KINDS[] = {{"push", "push"},
                                               {"tag_push", "tag_push"},
                                               {"merge_request", "merge_request"},
                                               {"pipeline", "pipeline"},
                                               {"build", "job"},
                                               {"deployment", "deployment"},
                                               {"release", "release"},
                                               {"issue", "issue"},
                                               {"note", "note"},
                                               {NULL, NULL}};
static const struct kind_map HEADERS[] = {{"Push Hook", "push"},
                                          {"Tag Push Hook", "tag_push"},
                                          {"Merge Request Hook", "merge_request"},
                                          {"Pipeline Hook", "pipeline"},
                                          {"Job Hook", "job"},
                                          {"Build Hook", "job"},
                                          {"Deployment Hook", "deployment"},
                                          {"Release Hook", "release"},
                                          {"Issue Hook", "issue"},
                                          {"Confidential Issue Hook", "issue"},
                                          {"Note Hook", "note"},
                                          {"Confidential Note Hook", "note"},
                                          {NULL, NULL}};

static const char *map_kind(const struct kind_map *m, const char *s) {
    for (; s && m->from; m++)
        if (strcmp(m->from, s) == 0) return m->kind;
    return NULL;
}

/* The name of the configured hook whose token this is, or NULL. Every candidate is compared
 * (no early exit), each in constant time. */
static const char *authenticate(const struct cq_config *cfg, const struct ing_headers *h) {
    const char *who = NULL, *tok = h->gitlab_token;
    size_t tl = tok ? strlen(tok) : 0;
    if (!tok) return NULL;
    for (size_t i = 0; i < cfg->gitlab.n_hooks; i++) {
        const struct cq_gitlab_hook *k = &cfg->gitlab.hooks[i];
        const char *want = k->token.value;
        if (!want) continue;
        if (k->instance && (!h->gitlab_instance || strcmp(k->instance, h->gitlab_instance) != 0))
            continue;
        if (cq_ct_equal(want, strlen(want), tok, tl) && !who) who = k->name;
    }
    const char *legacy = cfg->gitlab.webhook_token.value;
    if (legacy && cq_ct_equal(legacy, strlen(legacy), tok, tl) && !who) who = "default";
    return who;
}

static long long num_of(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 9e15) return 0;
    return (long long)v->valuedouble;
}

static const char *str_of(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A header value fit for the dedupe key: printable ASCII, 1..128 bytes. */
static bool key_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return false;
    return true;
}

void ing_gitlab_route(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                      size_t len, struct ing_verdict *out) {
    cJSON *root = NULL;
    struct cq_event ev = {0};
    struct cq_err err = {0};
    char uuid[CQ_ENV_MAX_KEY], received[32];
    const char *who, *kind;
    if (!cfg->events.enabled) {
        ing_gitlab_hook(cfg, h, body, len, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    if (!cfg->gitlab.n_hooks && !cfg->gitlab.webhook_token.value) {
        ing_reject(out, 404, "gitlab webhook is not configured", NULL);
        return;
    }
    if (!h->gitlab_token) {
        ing_reject(out, 401, "missing token", NULL);
        return;
    }
    if (!(who = authenticate(cfg, h))) {
        ing_reject(out, 401, "bad token", NULL);
        return;
    }
    if (cq_json_has_nul_escape(body, len) || !cq_utf8_valid(body, len)) {
        ing_reject(out, 400, "malformed JSON", "a NUL or invalid UTF-8");
        goto out;
    }
    if (len > CQ_ENV_MAX_EVENT_BODY) {
        ing_reject(out, 413, "hook body too large for an event", NULL);
        goto out;
    }
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        ing_reject(out, 400, "malformed JSON", NULL);
        goto out;
    }
    kind = map_kind(OBJECT_KINDS, str_of(root, "object_kind"));
    if (!kind) kind = map_kind(HEADERS, h->gitlab_event);
    if (!kind) { /* a kind chatops does not route: acknowledged, nothing queued */
        ing_reply(out, 200, "application/json", strdup("{\"ignored\":true}"));
        goto out;
    }
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(root, "project");
    long long pid = num_of(project, "id");
    if (!pid) pid = num_of(root, "project_id");
    snprintf(out->key, sizeof(out->key), "%lld", pid);
    if (strcmp(kind, "pipeline") == 0) {
        long long pl = num_of(cJSON_GetObjectItemCaseSensitive(root, "object_attributes"), "id");
        if (!pid || !pl) {
            ing_reject(out, 400, "malformed pipeline hook", "project.id or object_attributes.id");
            goto out;
        }
        snprintf(out->track_key, sizeof(out->track_key), "%lld:%lld", pid, pl);
    }
    if (key_ok(h->idempotency_key))
        snprintf(uuid, sizeof(uuid), "%s", h->idempotency_key);
    else if (key_ok(h->gitlab_uuid))
        snprintf(uuid, sizeof(uuid), "%s", h->gitlab_uuid);
    else {
        uint8_t d[CQ_SHA256_LEN];
        char *both = cq_strprintf("%s\n%.*s", kind, (int)len, body);
        if (!both || cq_sha256(both, strlen(both), d) != CQ_OK) {
            free(both);
            ing_reject(out, 500, "out of memory", NULL);
            goto out;
        }
        free(both);
        memcpy(uuid, "sha256:", 7);
        cq_hex(d, sizeof(d), uuid + 7);
    }
    cq_now_rfc3339(received);
    ev.kind = (char *)kind;
    ev.instance = (char *)who;
    ev.uuid = uuid;
    ev.received_at = received;
    ev.body = malloc(len + 1);
    if (ev.body) {
        memcpy(ev.body, body, len);
        ev.body[len] = '\0';
    }
    if (!ev.body) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    out->body = cq_event_encode(&ev, &err);
    free(ev.body);
    if (!out->body) {
        if (err.code == CQ_ENOMEM)
            ing_reject(out, 500, "out of memory", NULL);
        else
            ing_reject(out, 400, "hook cannot be carried", NULL);
        goto out;
    }
    out->kind = ING_EVENT;
out:
    cJSON_Delete(root);
}
