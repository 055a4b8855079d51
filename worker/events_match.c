/* events_match: what a GitLab hook says (the facts the router needs, read from the payload
 * shapes GitLab documents in webhook_events.html), whether a subscription matches it, and
 * the message text. Pure functions: no I/O, so tests/unit/test_worker_events.c covers them. */
#include "events.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define FIELD_MAX 1024 /* any one string taken from a hook */
#define NOTES_MAX 300  /* release notes excerpt */

static const cJSON *obj(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsObject(v) ? v : NULL;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static long long num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15) return 0;
    return (long long)v->valuedouble;
}

/* A bounded, repaired copy (U+FFFD for invalid bytes); NULL for NULL. *oom on failure. */
static char *dup_cut(const char *s, size_t max, bool *oom) {
    if (!s) return NULL;
    char *d = cq_utf8_clean(s, strlen(s), max);
    if (!d) *oom = true;
    return d;
}

static char *first_line(const char *s, bool *oom) {
    if (!s) return NULL;
    size_t n = strcspn(s, "\r\n");
    char *d = cq_utf8_clean(s, n, FIELD_MAX);
    if (!d) *oom = true;
    return d;
}

static const char *strip_ref(const char *ref) {
    if (!ref) return NULL;
    if (strncmp(ref, "refs/heads/", 11) == 0) return ref + 11;
    if (strncmp(ref, "refs/tags/", 10) == 0) return ref + 10;
    return ref;
}

static void labels_of(const cJSON *root, struct w_ev_facts *f, bool *oom) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "labels"), *it;
    if (!cJSON_IsArray(l)) return;
    cJSON_ArrayForEach(it, l) {
        const char *t = str(it, "title");
        if (!t || f->n_labels >= W_EV_MAX_LABELS) continue;
        if ((f->labels[f->n_labels] = dup_cut(t, 256, oom))) f->n_labels++;
    }
}

static void failed_jobs(const cJSON *root, struct w_ev_facts *f, bool *oom) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "builds"), *it;
    if (!cJSON_IsArray(b)) return;
    cJSON_ArrayForEach(it, b) {
        const char *st = str(it, "status");
        if (!st || strcmp(st, "failed") != 0 || f->n_failed >= W_EV_MAX_FAILED) continue;
        struct w_ev_job *j = &f->failed[f->n_failed++];
        j->name = dup_cut(str(it, "name") ? str(it, "name") : "?", 256, oom);
        long long id = num(it, "id");
        if (f->project_url && id) {
            char u[FIELD_MAX + 64];
            snprintf(u, sizeof u, "%s/-/jobs/%lld", f->project_url, id);
            j->url = dup_cut(u, sizeof u, oom);
        }
    }
}

enum cq_rc w_ev_facts_parse(const char *kind, const char *body, size_t len, struct w_ev_facts *f,
                            struct cq_err *err) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    bool oom = false;
    enum cq_rc rc = CQ_OK;
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    if (!cJSON_IsObject(root)) {
        rc = cq_err_set(err, CQ_EPARSE, "event body is not a JSON object");
        goto out;
    }
    const cJSON *project = obj(root, "project"), *oa = obj(root, "object_attributes"),
                *user = obj(root, "user"), *commit = obj(root, "commit");
    f->project = dup_cut(str(project, "path_with_namespace"), 512, &oom);
    if (!f->project && strcmp(kind, "job") == 0)
        f->project = dup_cut(str(root, "project_name"), 512, &oom);
    f->project_url = dup_cut(str(project, "web_url"), FIELD_MAX, &oom);
    f->project_id = num(project, "id") ? num(project, "id") : num(root, "project_id");
    f->author = dup_cut(str(user, "name") ? str(user, "name") : str(root, "user_name"), 256, &oom);
    if (!f->project && !oom) {
        rc = cq_err_set(err, CQ_EPARSE, "event body names no project.path_with_namespace");
        goto out;
    }
    if (strcmp(kind, "push") == 0 || strcmp(kind, "tag_push") == 0) {
        f->ref = dup_cut(strip_ref(str(root, "ref")), 512, &oom);
        f->commits = (int)num(root, "total_commits_count");
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(root, "commits");
        int n = cJSON_IsArray(cs) ? cJSON_GetArraySize(cs) : 0;
        const cJSON *last = n > 0 ? cJSON_GetArrayItem(cs, n - 1) : NULL;
        f->title = first_line(str(last, "title") ? str(last, "title") : str(last, "message"), &oom);
        f->url = dup_cut(str(last, "url"), FIELD_MAX, &oom);
        if (strcmp(kind, "tag_push") == 0) f->tag = dup_cut(f->ref, 512, &oom);
    } else if (strcmp(kind, "merge_request") == 0) {
        f->object_id = num(oa, "iid");
        f->title = first_line(str(oa, "title"), &oom);
        f->status = dup_cut(str(oa, "state"), 64, &oom);
        f->action = dup_cut(str(oa, "action"), 64, &oom);
        f->url = dup_cut(str(oa, "url"), FIELD_MAX, &oom);
        f->source = dup_cut(str(oa, "source_branch"), 512, &oom);
        f->target = dup_cut(str(oa, "target_branch"), 512, &oom);
        f->ref = dup_cut(f->target, 512, &oom);
        labels_of(root, f, &oom);
    } else if (strcmp(kind, "pipeline") == 0) {
        f->object_id = num(oa, "id");
        f->ref = dup_cut(str(oa, "ref"), 512, &oom);
        f->status = dup_cut(str(oa, "status"), 64, &oom);
        f->duration_s = num(oa, "duration");
        f->url = dup_cut(str(oa, "url"), FIELD_MAX, &oom);
        if (!f->url && f->project_url && f->object_id) {
            char u[FIELD_MAX + 64];
            snprintf(u, sizeof u, "%s/-/pipelines/%lld", f->project_url, f->object_id);
            f->url = dup_cut(u, sizeof u, &oom);
        }
        f->title =
            first_line(str(commit, "title") ? str(commit, "title") : str(commit, "message"), &oom);
        failed_jobs(root, f, &oom);
    } else if (strcmp(kind, "job") == 0) {
        f->object_id = num(root, "build_id");
        f->ref = dup_cut(str(root, "ref"), 512, &oom);
        f->status = dup_cut(str(root, "build_status"), 64, &oom);
        f->duration_s = num(root, "build_duration");
        f->title = dup_cut(str(root, "build_name"), 256, &oom);
        f->environment = dup_cut(str(obj(root, "environment"), "name"), 256, &oom);
        if (f->project_url && f->object_id) {
            char u[FIELD_MAX + 64];
            snprintf(u, sizeof u, "%s/-/jobs/%lld", f->project_url, f->object_id);
            f->url = dup_cut(u, sizeof u, &oom);
        }
    } else if (strcmp(kind, "deployment") == 0) {
        f->object_id = num(root, "deployment_id");
        f->status = dup_cut(str(root, "status"), 64, &oom);
        f->environment = dup_cut(str(root, "environment"), 256, &oom);
        f->ref = dup_cut(str(root, "ref"), 512, &oom);
        f->title = first_line(str(root, "commit_title"), &oom);
        f->url = dup_cut(str(root, "deployable_url"), FIELD_MAX, &oom);
    } else if (strcmp(kind, "release") == 0) {
        f->tag = dup_cut(str(root, "tag"), 256, &oom);
        f->ref = dup_cut(f->tag, 256, &oom);
        f->title = first_line(str(root, "name"), &oom);
        f->action = dup_cut(str(root, "action"), 64, &oom);
        f->url = dup_cut(str(root, "url"), FIELD_MAX, &oom);
        f->notes = dup_cut(str(root, "description"), NOTES_MAX, &oom);
    } else if (strcmp(kind, "issue") == 0) {
        f->object_id = num(oa, "iid");
        f->title = first_line(str(oa, "title"), &oom);
        f->status = dup_cut(str(oa, "state"), 64, &oom);
        f->action = dup_cut(str(oa, "action"), 64, &oom);
        f->url = dup_cut(str(oa, "url"), FIELD_MAX, &oom);
        labels_of(root, f, &oom);
    } else { /* note */
        f->title = first_line(str(oa, "note"), &oom);
        f->action = dup_cut(str(oa, "noteable_type"), 64, &oom);
        f->url = dup_cut(str(oa, "url"), FIELD_MAX, &oom);
    }
    if (oom) rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
out:
    cJSON_Delete(root);
    if (rc != CQ_OK) w_ev_facts_clear(f);
    return rc;
}

void w_ev_facts_clear(struct w_ev_facts *f) {
    if (!f) return;
    char **all[] = {&f->project, &f->project_url, &f->ref,    &f->status, &f->environment,
                    &f->action,  &f->title,       &f->author, &f->url,    &f->source,
                    &f->target,  &f->tag,         &f->notes};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(*all[i]);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    for (size_t i = 0; i < f->n_failed; i++) {
        free(f->failed[i].name);
        free(f->failed[i].url);
    }
    memset(f, 0, sizeof(*f));
}

/* ---- matching ---- */

bool w_ev_project_match(const char *pattern, const char *project) {
    if (!pattern || !project) return false;
    if (fnmatch(pattern, project, 0) == 0) return true;
    size_t n = strlen(pattern);
    if (strpbrk(pattern, "*?[")) return false;
    return strncmp(pattern, project, n) == 0 && project[n] == '/';
}

static bool any_glob(char *const *l, const char *v) {
    if (!l) return true;
    if (!v) return false;
    for (size_t i = 0; l[i]; i++)
        if (fnmatch(l[i], v, 0) == 0) return true;
    return false;
}

static bool any_eq(char *const *l, const char *v) {
    if (!l) return true;
    if (!v) return false;
    for (size_t i = 0; l[i]; i++)
        if (strcmp(l[i], v) == 0) return true;
    return false;
}

bool w_ev_matches(const struct w_ev_match *m, const struct w_ev_facts *f) {
    if (m->projects) {
        bool ok = false;
        for (size_t i = 0; m->projects[i] && !ok; i++)
            ok = w_ev_project_match(m->projects[i], f->project);
        if (!ok) return false;
    }
    if (!any_eq(m->kinds, f->kind)) return false;
    if (m->statuses && !any_eq(m->statuses, f->status) &&
        !(f->transition && any_eq(m->statuses, f->transition)))
        return false;
    if (!any_glob(m->refs, f->ref)) return false;
    if (!any_glob(m->environments, f->environment)) return false;
    if (!any_eq(m->actions, f->action)) return false;
    if (m->labels) {
        bool ok = false;
        for (size_t i = 0; i < f->n_labels && !ok; i++)
            ok = any_eq(m->labels, f->labels[i]);
        if (!ok) return false;
    }
    return true;
}

/* ---- text ---- */

struct buf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...) {
    va_list ap;
    if (b->failed) return;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static char *finish(struct buf *b, size_t max) {
    if (b->failed) {
        free(b->s);
        return NULL;
    }
    if (!b->s) return strdup("");
    char *out = cq_utf8_clean(b->s, b->len, max);
    free(b->s);
    return out;
}

#define S(x) ((x) ? (x) : "")

static const char *noun(const char *kind) {
    return strcmp(kind, "tag_push") == 0 ? "Tag" : "Push";
}

char *w_ev_headline(const struct w_ev_facts *f) {
    struct buf b = {0};
    const char *k = f->kind;
    if (strcmp(k, "pipeline") == 0)
        put(&b, "Pipeline #%lld %s%s%s · %s · %s", f->object_id, S(f->status),
            f->transition ? " — " : "", f->transition ? f->transition : "", S(f->project),
            S(f->ref));
    else if (strcmp(k, "merge_request") == 0)
        put(&b, "Merge request !%lld %s · %s", f->object_id, S(f->action ? f->action : f->status),
            S(f->project));
    else if (strcmp(k, "deployment") == 0)
        put(&b, "Deployment to %s %s · %s", S(f->environment), S(f->status), S(f->project));
    else if (strcmp(k, "release") == 0)
        put(&b, "Release %s %s · %s", S(f->tag), f->action ? f->action : "", S(f->project));
    else if (strcmp(k, "job") == 0)
        put(&b, "Job %s %s · %s · %s", S(f->title), S(f->status), S(f->project), S(f->ref));
    else if (strcmp(k, "push") == 0 || strcmp(k, "tag_push") == 0)
        put(&b, "%s to %s · %s", noun(k), S(f->ref), S(f->project));
    else if (strcmp(k, "issue") == 0)
        put(&b, "Issue #%lld %s · %s", f->object_id, S(f->action), S(f->project));
    else
        put(&b, "Comment on %s · %s", S(f->action), S(f->project));
    return finish(&b, 300);
}

char *w_ev_text(const struct w_ev_facts *f, size_t max_bytes) {
    struct buf b = {0};
    const char *k = f->kind;
    if (strcmp(k, "merge_request") == 0) {
        put(&b, "%s\n%s → %s", S(f->title), S(f->source), S(f->target));
    } else if (strcmp(k, "release") == 0) {
        put(&b, "%s", S(f->title));
        if (f->notes && *f->notes) put(&b, "\n%s", f->notes);
    } else if (strcmp(k, "push") == 0 || strcmp(k, "tag_push") == 0) {
        put(&b, "%d commit%s", f->commits, f->commits == 1 ? "" : "s");
        if (f->title) put(&b, ": %s", f->title);
    } else if (f->title) {
        put(&b, "%s", f->title);
    }
    if (f->author) put(&b, "\nby %s", f->author);
    if (f->duration_s > 0) put(&b, " · %lldm %02llds", f->duration_s / 60, f->duration_s % 60);
    if (f->n_failed) {
        put(&b, "\nFailed jobs:");
        for (size_t i = 0; i < f->n_failed; i++)
            put(&b, "\n• %s%s%s", S(f->failed[i].name), f->failed[i].url ? " " : "",
                S(f->failed[i].url));
    }
    if (f->url) put(&b, "\n%s", f->url);
    return finish(&b, max_bytes);
}

const char *w_ev_result_status(const struct w_ev_facts *f) {
    if (f->status && strcmp(f->status, "failed") == 0) return "failed";
    if (f->status && strcmp(f->status, "canceled") == 0) return "failed";
    return "ok";
}

bool w_ev_updates_in_place(const struct w_ev_facts *f) {
    const char *k = f->kind;
    return f->object_id && (strcmp(k, "pipeline") == 0 || strcmp(k, "merge_request") == 0 ||
                            strcmp(k, "deployment") == 0 || strcmp(k, "job") == 0);
}
