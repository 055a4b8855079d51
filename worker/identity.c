/* identity: the lookups of the resolver chain (identity.h), one small state machine per
 * job: Redis cache -> the platform's e-mail of the user (Slack users.info, or the Feishu
 * tenant token then contact/v3/users) -> GitLab GET /users?search= (exactly one user with
 * that e-mail) -> GET /groups/:id/members/all/:user_id per roles_from_gitlab rule -> cache
 * (TTL, negative TTL) -> w_job_continue. Every request goes through httpc with
 * identity.timeout_ms and takes a slot of identity.lookups_per_s (a job waits for one on the
 * worker's retry timer, at most timeout_ms). A failure is never cached and never falls back
 * to more rights. The e-mail lives only in the job while it is looked up. */
#include "identity_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "redis.h"
#include "service_int.h"
#include "strutil.h"

#define IDENT_MAX_RESPONSE (1u << 20)

/* ---- metrics (named here, as the pipeline files do) ---- */

void w_ident_metric_lookup(const char *what, const char *outcome) {
    char labels[96];
    snprintf(labels, sizeof labels, "lookup=\"%s\",outcome=\"%s\"", what, outcome);
    cq_metric_inc("chatops_worker_identity_lookups_total",
                  "Identity lookups (slack, feishu_token, feishu, gitlab_users, gitlab_member) "
                  "by outcome",
                  labels);
}

static void metric_result(const char *result) {
    char labels[64];
    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    cq_metric_inc("chatops_worker_identity_total",
                  "Identity resolutions by result (cached, resolved, none, failed)", labels);
}

int64_t w_ident_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool listed(const struct cq_config *cfg, const char *resolver) {
    for (char **r = cfg->identity.resolvers; r && *r; r++)
        if (strcmp(*r, resolver) == 0) return true;
    return !cfg->identity.resolvers && strcmp(resolver, "static") == 0;
}

static const char *gitlab_token(const struct cq_config *cfg) {
    return cfg->identity.gitlab_token.value ? cfg->identity.gitlab_token.value
                                            : cfg->gitlab.api_token.value;
}

struct w_ident_state *w_ident_state_of(struct w_worker *w) {
    if (!w->ident) w->ident = calloc(1, sizeof(*w->ident));
    return w->ident;
}

void w_identity_state_free(struct w_ident_state *s) {
    if (!s) return;
    free(s->feishu_token);
    free(s);
}

void w_ident_free(struct w_ident *id) {
    if (!id) return;
    cq_ident_clear(&id->e);
    free(id->fail);
    free(id->key);
    free(id->email);
    free(id->granted);
    free(id);
}

/* ---- the end of a resolution ---- */

static void finish(struct job *j) {
    struct w_ident *id = j->ident;
    free(id->email);
    id->email = NULL;
    if (id->status == WI_RESOLVED) {
        id->person.name = id->e.login;
        id->person.gitlab_login = id->e.login;
        id->person.roles = id->e.roles;
    }
    metric_result(id->from_cache              ? "cached"
                  : id->status == WI_RESOLVED ? "resolved"
                  : id->status == WI_NONE     ? "none"
                                              : "failed");
    w_job_continue(j);
}

/* A lookup failed: nothing is cached, every command but whoami is refused with why. */
void w_ident_fail(struct job *j, const char *fmt, ...) {
    struct w_ident *id = j->ident;
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    id->status = WI_FAILED;
    id->fail = cq_strprintf("cannot resolve your GitLab account right now: %s", why);
    cq_warn(j->req.id, "identity of %s user %s not resolved: %s", j->req.platform, j->req.user_id,
            why);
    if (!id->fail) {
        w_job_abandon(j, "out of memory");
        return;
    }
    finish(j);
}

/* Caches the entry (fire and forget: a lost SET only costs a lookup later), then finishes. */
static void store(struct job *j) {
    struct w_ident *id = j->ident;
    const struct cq_config *cfg = j->cfg;
    id->e.at_ms = w_ident_wall_ms();
    id->e.ttl_s = id->e.resolved ? cfg->identity.cache_ttl_s : cfg->identity.negative_ttl_s;
    id->status = id->e.resolved ? WI_RESOLVED : WI_NONE;
    char *v = cq_ident_encode(&id->e), ttl[16];
    snprintf(ttl, sizeof ttl, "%d", id->e.ttl_s);
    const char *argv[] = {"SET", id->key, v, "EX", ttl};
    if (v && j->w->redis) cq_redis_commandargv(j->w->redis, w_ignore_reply, NULL, 5, argv, NULL);
    cJSON_free(v);
    cq_info(j->req.id, "identity of %s user %s: %s%s%s", j->req.platform, j->req.user_id,
            id->e.resolved ? "GitLab login " : "no GitLab account (",
            id->e.resolved ? id->e.login : "negative cache", id->e.resolved ? "" : ")");
    finish(j);
}

/* No GitLab account for this user: an unknown user, with why (cached negative_ttl_s). */
void w_ident_none(struct job *j, const char *fmt, ...) {
    struct w_ident *id = j->ident;
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    id->e.resolved = false;
    free(id->e.reason);
    id->e.reason = cq_strprintf("cannot match you to a GitLab account: %s", why);
    if (!id->e.reason) {
        w_job_abandon(j, "out of memory");
        return;
    }
    store(j);
}

/* ---- lookup slots (identity.lookups_per_s) ---- */

static bool take_slot(struct w_worker *w, int rate) {
    struct w_ident_state *s = w_ident_state_of(w);
    uint64_t now = cq_now_ms();
    if (!s) return false;
    if (s->refill_ms == 0) s->slots = rate;
    s->slots += (double)(now - s->refill_ms) * rate / 1000.0;
    if (s->slots > rate) s->slots = rate;
    s->refill_ms = now;
    if (s->slots < 1.0) return false;
    s->slots -= 1.0;
    return true;
}

static void resume(void *arg) {
    struct job *j = arg;
    w_ident_http_step(j, j->ident->next);
}

/* Runs fn(j) when a lookup slot is free; waits on the retry timer, at most timeout_ms. */
void w_ident_http_step(struct job *j, void (*fn)(struct job *)) {
    const struct cq_config *cfg = j->cfg;
    int rate = cfg->identity.lookups_per_s;
    if (take_slot(j->w, rate)) {
        fn(j);
        return;
    }
    if (cq_now_ms() - j->ident->t0 > (uint64_t)cfg->identity.timeout_ms) {
        w_ident_metric_lookup("slot", "rate_limited");
        w_ident_fail(
            j, "too many identity lookups at once (identity.lookups_per_s is %d); try again", rate);
        return;
    }
    j->ident->next = fn;
    int wait = (int)ceil(1000.0 / rate);
    if (!w_retry_later(j, wait < 10 ? 10 : wait, resume, j)) w_job_abandon(j, "out of memory");
}

/* Sends one GET/POST; false (after failing the job) when httpc refused it. */
bool w_ident_send(struct job *j, const char *method, const char *url, const char *const *hdrs,
                  const char *body, cq_http_cb cb, const char *what) {
    struct cq_err err = {0};
    struct cq_http_request rq = {.method = method,
                                 .url = url,
                                 .headers = hdrs,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0,
                                 .timeout_ms = j->cfg->identity.timeout_ms,
                                 .max_response = IDENT_MAX_RESPONSE};
    w_job_op_begin(j);
    if (j->w->httpc && cq_httpc_request(j->w->httpc, &rq, cb, j, &err) == CQ_OK) return true;
    j->ops--;
    w_ident_metric_lookup(what, "not_sent");
    w_ident_fail(j, "the %s lookup could not be sent (%s); try again", what,
                 err.msg[0] ? err.msg : "the worker is stopping");
    return false;
}

/* The callback's common start: false when the job is no longer wanted (it was abandoned). */
bool w_ident_still_wanted(struct job *j) {
    if (!w_job_gone(j)) return true;
    w_job_abandon(j, "stopped during an identity lookup");
    return false;
}

/* A platform's or GitLab's answer that is not an answer: the sentence, else NULL. */
const char *w_ident_transport(const struct cq_http_response *r, char *buf, size_t n,
                              const char *who, int timeout_ms) {
    if (r->rc == CQ_ETIMEOUT)
        snprintf(buf, n, "%s did not answer within %d ms; try again", who, timeout_ms);
    else if (r->rc != CQ_OK)
        snprintf(buf, n, "%s could not be reached; try again", who);
    else if (r->status == 429)
        snprintf(buf, n, "%s is rate-limiting lookups (HTTP 429); try again", who);
    else if (r->status >= 500)
        snprintf(buf, n, "%s answered %ld; try again", who, r->status);
    else
        return NULL;
    return buf;
}

/* An identifier-like word from outside, cut and reduced to [A-Za-z0-9_.-] for messages. */
void w_ident_word(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (; src && *src && k + 1 < n && k < 60; src++)
        dst[k++] = (strchr("_.-", *src) || (*src >= 'a' && *src <= 'z') ||
                    (*src >= 'A' && *src <= 'Z') || (*src >= '0' && *src <= '9'))
                       ? *src
                       : '?';
    dst[k] = '\0';
}

/* ---- GitLab: roles from group membership ---- */

static void member_send(struct job *j);

static void next_rule_or_store(struct job *j) {
    struct w_ident *id = j->ident;
    if (id->rule < j->cfg->identity.n_role_rules) {
        w_ident_http_step(j, member_send);
        return;
    }
    free(id->e.roles_source);
    id->e.roles_source =
        cq_strprintf("roles_from_gitlab: %s", id->granted ? id->granted : "in no configured group");
    if (!id->e.roles_source) {
        w_job_abandon(j, "out of memory");
        return;
    }
    store(j);
}

static bool add_role(struct w_ident *id, const struct cq_role_rule *r) {
    static const char *const level[] = {"guest", "reporter", "developer", "maintainer", "owner"};
    size_t n = 0;
    bool have = false;
    for (char **p = id->e.roles; p && *p; p++, n++)
        have = have || strcmp(*p, r->role) == 0;
    char *g = cq_strprintf("%s%s%s via %s (%s)", id->granted ? id->granted : "",
                           id->granted ? ", " : "", r->role, r->group,
                           level[r->min_access >= 0 && r->min_access < 5 ? r->min_access : 0]);
    if (!g) return false;
    free(id->granted);
    id->granted = g;
    if (have) return true;
    char **nr = realloc(id->e.roles, (n + 2) * sizeof(char *));
    if (!nr) return false;
    id->e.roles = nr;
    nr[n + 1] = NULL;
    return (nr[n] = strdup(r->role)) != NULL;
}

static void on_member(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    struct w_ident *id = j->ident;
    const struct cq_config *cfg = j->cfg;
    char buf[200];
    cJSON *b = NULL;
    if (!w_ident_still_wanted(j)) goto out;
    const struct cq_role_rule *r = &cfg->identity.role_rules[id->rule];
    const char *t = w_ident_transport(resp, buf, sizeof buf, "GitLab", cfg->identity.timeout_ms);
    b = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (t) {
        w_ident_metric_lookup("gitlab_member", "failed");
        w_ident_fail(j, "%s", t);
        goto out;
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(b, "message");
    if (resp->status == 404 && cJSON_IsString(msg) && strstr(msg->valuestring, "Group")) {
        w_ident_metric_lookup("gitlab_member", "failed");
        w_ident_fail(j, "GitLab has no group %.100s (identity.roles_from_gitlab); ask an admin",
                     r->group);
        goto out;
    }
    id->rule++;
    if (resp->status == 404) { /* not a member, directly or inherited */
        w_ident_metric_lookup("gitlab_member", "not_member");
        next_rule_or_store(j);
        goto out;
    }
    const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(b, "access_level"),
                *st = cJSON_GetObjectItemCaseSensitive(b, "state"),
                *ms = cJSON_GetObjectItemCaseSensitive(b, "membership_state");
    if (resp->status != 200 || !cJSON_IsNumber(lvl)) {
        w_ident_metric_lookup("gitlab_member", "failed");
        w_ident_fail(j, "GitLab answered %ld to the group membership lookup; try again",
                     resp->status);
        goto out;
    }
    bool active = (!cJSON_IsString(st) || strcmp(st->valuestring, "active") == 0) &&
                  (!cJSON_IsString(ms) || strcmp(ms->valuestring, "active") == 0);
    w_ident_metric_lookup("gitlab_member", "member");
    if (active && lvl->valuedouble >= CQ_ACCESS_LEVEL(r->min_access) && !add_role(id, r)) {
        w_job_abandon(j, "out of memory");
        goto out;
    }
    next_rule_or_store(j);
out:
    cJSON_Delete(b);
    w_job_op_end(j);
}

static void member_send(struct job *j) {
    struct w_ident *id = j->ident;
    const struct cq_config *cfg = j->cfg;
    const struct cq_role_rule *r = &cfg->identity.role_rules[id->rule];
    char *g = cq_url_escape(r->group, strlen(r->group));
    char *url = g ? cq_strprintf("%s/api/v4/groups/%s/members/all/%lld", cfg->gitlab.base_url, g,
                                 id->e.gitlab_id)
                  : NULL;
    char *tok = cq_strprintf("PRIVATE-TOKEN: %s", gitlab_token(cfg) ? gitlab_token(cfg) : "");
    const char *h[] = {tok, NULL};
    if (url && tok)
        w_ident_send(j, "GET", url, h, NULL, on_member, "gitlab_member");
    else
        w_job_abandon(j, "out of memory");
    free(g);
    free(url);
    free(tok);
}

/* ---- GitLab: the user with the e-mail ---- */

static bool same_email(const cJSON *u, const char *field, const char *email) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, field);
    return cJSON_IsString(v) && strcasecmp(v->valuestring, email) == 0;
}

static void on_users(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    struct w_ident *id = j->ident;
    const struct cq_config *cfg = j->cfg;
    char buf[200], logins[160] = "";
    cJSON *b = NULL;
    if (!w_ident_still_wanted(j)) goto out;
    const char *t = w_ident_transport(resp, buf, sizeof buf, "GitLab", cfg->identity.timeout_ms);
    if (t || resp->status == 401 || resp->status == 403 || resp->status != 200) {
        w_ident_metric_lookup("gitlab_users", "failed");
        if (t)
            w_ident_fail(j, "%s", t);
        else if (resp->status == 401 || resp->status == 403)
            w_ident_fail(j, "GitLab refused the identity token (HTTP %ld); ask an admin",
                         resp->status);
        else
            w_ident_fail(j, "GitLab answered %ld to the user search; try again", resp->status);
        goto out;
    }
    b = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!cJSON_IsArray(b)) {
        w_ident_metric_lookup("gitlab_users", "failed");
        w_ident_fail(j, "GitLab's user search answer is not a list; try again");
        goto out;
    }
    const cJSON *u, *match = NULL;
    int n = 0;
    bool emails_visible = cJSON_GetArraySize(b) == 0;
    cJSON_ArrayForEach(u, b) {
        emails_visible = emails_visible || cJSON_GetObjectItemCaseSensitive(u, "email");
        if (!same_email(u, "email", id->email) && !same_email(u, "public_email", id->email))
            continue;
        const cJSON *un = cJSON_GetObjectItemCaseSensitive(u, "username");
        if (n++ == 0) match = u;
        size_t used = strlen(logins);
        if (cJSON_IsString(un) && used + 2 < sizeof logins)
            snprintf(logins + used, sizeof logins - used, "%s%.60s", used ? ", " : "",
                     un->valuestring);
    }
    free(id->email); /* found or not, it is no longer needed */
    id->email = NULL;
    if (n == 0 && !emails_visible) {
        w_ident_metric_lookup("gitlab_users", "failed");
        w_ident_fail(j, "GitLab shows no e-mail addresses to the identity token (it needs an admin "
                        "token); ask an admin");
        goto out;
    }
    w_ident_metric_lookup("gitlab_users", n == 0 ? "none" : n == 1 ? "one" : "several");
    if (n == 0) {
        w_ident_none(j, "no GitLab user has the e-mail address of your %s account; ask an admin",
                     id->platform);
        goto out;
    }
    if (n > 1) {
        w_ident_none(
            j, "%d GitLab users (%s) have the e-mail address of your %s account; ask an admin", n,
            logins, id->platform);
        goto out;
    }
    const cJSON *un = cJSON_GetObjectItemCaseSensitive(match, "username"),
                *uid = cJSON_GetObjectItemCaseSensitive(match, "id"),
                *st = cJSON_GetObjectItemCaseSensitive(match, "state");
    if (!cJSON_IsString(un) || !un->valuestring[0] || !cJSON_IsNumber(uid)) {
        w_ident_metric_lookup("gitlab_users", "failed");
        w_ident_fail(j, "GitLab's user has no username or id; try again");
        goto out;
    }
    id->e.resolved = true;
    id->e.gitlab_id = (long long)uid->valuedouble;
    id->e.login = strdup(un->valuestring);
    id->e.gitlab_state = strdup(cJSON_IsString(st) ? st->valuestring : "active");
    id->e.login_source =
        cq_strprintf("gitlab_email (the e-mail of your %s account, %s)", id->platform,
                     strcmp(id->platform, "Slack") == 0 ? "users.info" : "contact API");
    if (!id->e.login || !id->e.gitlab_state || !id->e.login_source) {
        w_job_abandon(j, "out of memory");
        goto out;
    }
    if (strcmp(id->e.gitlab_state, "active") != 0) {
        /* Blocked, deactivated, banned...: known, but no roles. */
        id->e.roles_source = cq_strprintf("none: the GitLab account is %s", id->e.gitlab_state);
        if (!id->e.roles_source)
            w_job_abandon(j, "out of memory");
        else
            store(j);
        goto out;
    }
    if (!listed(cfg, "roles_from_gitlab")) {
        if (!(id->e.roles_source = strdup("none: roles_from_gitlab is not configured")))
            w_job_abandon(j, "out of memory");
        else
            store(j);
        goto out;
    }
    id->rule = 0;
    next_rule_or_store(j);
out:
    cJSON_Delete(b);
    w_job_op_end(j);
}

static void users_send(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    char *e = cq_url_escape(j->ident->email, strlen(j->ident->email));
    char *url =
        e ? cq_strprintf("%s/api/v4/users?search=%s&per_page=100", cfg->gitlab.base_url, e) : NULL;
    char *tok = cq_strprintf("PRIVATE-TOKEN: %s", gitlab_token(cfg) ? gitlab_token(cfg) : "");
    const char *h[] = {tok, NULL};
    if (url && tok)
        w_ident_send(j, "GET", url, h, NULL, on_users, "gitlab_users");
    else
        w_job_abandon(j, "out of memory");
    free(e);
    free(url);
    free(tok);
}

/* The platform gave an e-mail address (taken over): look it up in GitLab. */
void w_ident_have_email(struct job *j, const char *email) {
    free(j->ident->email);
    if (!(j->ident->email = strdup(email))) {
        w_job_abandon(j, "out of memory");
        return;
    }
    w_ident_http_step(j, users_send);
}

/* ---- start: the cache ---- */

static void lookup_email(struct job *j) {
    if (strcmp(j->req.platform, "slack") == 0)
        w_ident_http_step(j, w_ident_slack_send);
    else
        w_ident_feishu_step(j);
}

static void on_cache(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    struct w_ident *id = j->ident;
    struct cq_err e = {0};
    (void)err;
    if (!w_ident_still_wanted(j)) goto out;
    if (reply && reply->type == REDIS_REPLY_STRING &&
        cq_ident_decode(reply->str, reply->len, &id->e, &e) == CQ_OK) {
        id->status = id->e.resolved ? WI_RESOLVED : WI_NONE;
        id->from_cache = true;
        finish(j);
        goto out;
    }
    if (reply && reply->type == REDIS_REPLY_STRING)
        cq_warn(j->req.id, "identity cache entry %s unreadable (%s): looked up again", id->key,
                e.msg);
    /* A miss, or Redis unavailable (the claim will say so): look it up. */
    lookup_email(j);
out:
    w_job_op_end(j);
}

bool w_identity_start(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    const char *p = j->req.platform, *u = j->req.user_id;
    int64_t received = 0;
    if (!listed(cfg, "gitlab_email") || !p || !u || !*u) return false;
    if (strcmp(p, "slack") != 0 && strcmp(p, "feishu") != 0) return false;
    if (listed(cfg, "static") && w_policy_person(cfg, p, u)) return false;
    /* An old request is answered "expired" by w_decide without asking anyone. */
    if (!cq_rfc3339_parse_ms(j->req.received_at, &received) ||
        w_ident_wall_ms() - received > (int64_t)cfg->worker.max_request_age_s * 1000)
        return false;
    struct w_ident *id = calloc(1, sizeof(*id));
    if (!id) return false; /* decided as an unknown user: never more rights */
    j->ident = id;
    id->status = WI_RESOLVING;
    id->platform = strcmp(p, "slack") == 0 ? "Slack" : "Feishu";
    id->t0 = cq_now_ms();
    id->key = cq_ident_key(cfg->redis.prefix, p, u);
    if (!id->key) {
        id->status = WI_FAILED;
        id->fail = strdup("cannot resolve your GitLab account right now: out of memory");
        return false;
    }
    const char *argv[] = {"GET", id->key};
    w_job_op_begin(j);
    if (j->w->redis && cq_redis_commandargv(j->w->redis, on_cache, j, 2, argv, NULL) == CQ_OK)
        return true;
    j->ops--;
    lookup_email(j);
    return true;
}
