/* feishu_token: the Feishu tenant_access_token cache. One token per app, shared by every
 * copy through Redis (value "fetched_ms expire_ms token"); one copy fetches under a short
 * Redis lock while the others read its result. Jobs wait in a list until a token arrives,
 * and are dead-lettered when the token is refused or stays unavailable. */
#include "notifier_int.h"

#define TOKEN_EARLY_MS (3 * 60 * 1000)
#define TOKEN_LOCK_MS 10000
#define TOKEN_WAIT_MS 250

/* ------------------------------------------------------------------ Feishu token */

static void token_age_gauge(struct ntf_service *s) {
    if (!s->tok.token) return;
    ntf_metric_token_age((ntf_wall_ms() - s->tok.fetched_ms) / 1000);
}

static void token_lookup(struct ntf_service *s);

static bool token_valid(const struct ntf_service *s) {
    return s->tok.token && ntf_wall_ms() < s->tok.expire_ms - TOKEN_EARLY_MS &&
           !(s->tok.stale && strcmp(s->tok.token, s->tok.stale) == 0);
}

static void token_key(const struct ntf_service *s, char *out, size_t n, bool lock) {
    snprintf(out, n, "%snotify:feishu_token:%s%s", s->key_prefix, s->cfg->feishu.app_id,
             lock ? ":lock" : "");
}

static void token_release_lock(struct ntf_service *s) {
    if (!s->tok.lock_held) return;
    s->tok.lock_held = false;
    char key[512];
    token_key(s, key, sizeof key, true);
    const char *argv[] = {"EVAL", NTF_RELEASE_LUA, "1", key, s->instance};
    cq_redis_commandargv(s->redis, ntf_ignore_reply, NULL, 5, argv, NULL);
}

/* The fetch is over: every job waiting for the token is taken off the list, ready to
 * go on (W_OP), and handed to each in turn (the list it might join again is empty). */
static void token_release_waiters(struct ntf_service *s, void (*each)(struct job *, const char *),
                                  const char *reason) {
    s->tok.busy = false;
    s->tok.failures = 0;
    struct job *w = s->tok.waiters;
    s->tok.waiters = NULL;
    while (w) {
        struct job *nx = w->tok_next;
        w->tok_next = NULL;
        w->wait = W_OP;
        each(w, reason);
        w = nx;
    }
}

static void serve_one(struct job *w, const char *unused) {
    (void)unused;
    free(w->used_token);
    w->used_token = strdup(w->s->tok.token);
    if (!w->used_token)
        ntf_job_wait(w, 1000, N_SEND);
    else
        ntf_job_send(w);
}

static void fail_one(struct job *w, const char *reason) {
    ntf_job_dead_letter(w, "permanent", reason);
}

static void token_serve(struct ntf_service *s) {
    token_age_gauge(s);
    token_release_waiters(s, serve_one, NULL);
}

static void token_fail_all(struct ntf_service *s, const char *reason) {
    token_release_waiters(s, fail_one, reason);
}

static void token_timer_cb(uv_timer_t *t) {
    token_lookup(t->data);
}

static void token_retry_later(struct ntf_service *s, const char *why, uint64_t ms) {
    if (s->stopping) {
        s->tok.busy = false;
        return;
    }
    if (++s->tok.failures > s->cfg->notifier.max_attempts * 4) {
        char r[200];
        snprintf(r, sizeof r, "feishu token unavailable: %.150s", why);
        token_fail_all(s, r);
        return;
    }
    uv_timer_start(&s->tok.timer, token_timer_cb, ms, 0);
}

static void on_token_stored(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ntf_service *s = opaque;
    if (err || (reply && reply->type == REDIS_REPLY_ERROR))
        cq_warn(NULL, "feishu token not cached in redis: %s", err ? err->msg : reply->str);
    token_release_lock(s);
}

static void on_token_answer(void *opaque, const struct cq_http_response *resp) {
    struct ntf_service *s = opaque;
    if (resp->rc == CQ_ESHUTDOWN) {
        s->tok.busy = false;
        return;
    }
    struct ntf_attempt_answer a = {resp->rc, resp->status, resp->body};
    char why[128], *tok = NULL;
    long expire = 0;
    enum ntf_outcome o = ntf_classify_feishu_token(&a, &tok, &expire, why, sizeof why);
    ntf_metric_token_fetch(ntf_outcome_str(o));
    if (o == NTF_OUT_DELIVERED) {
        if (expire <= 0) expire = 7200;
        free(s->tok.token);
        s->tok.token = tok;
        s->tok.fetched_ms = ntf_wall_ms();
        s->tok.expire_ms = s->tok.fetched_ms + expire * 1000LL;
        cq_info(NULL, "feishu tenant_access_token fetched (expires in %ld s)", expire);
        char key[512], val[64 + 4096], px[24];
        token_key(s, key, sizeof key, false);
        snprintf(val, sizeof val, "%lld %lld %s", s->tok.fetched_ms, s->tok.expire_ms, tok);
        snprintf(px, sizeof px, "%lld", expire * 1000LL);
        const char *argv[] = {"SET", key, val, "PX", px};
        if (cq_redis_commandargv(s->redis, on_token_stored, s, 5, argv, NULL) != CQ_OK)
            token_release_lock(s);
        token_serve(s);
        return;
    }
    free(tok);
    token_release_lock(s);
    cq_warn(NULL, "feishu token request failed: %s", why);
    if (o == NTF_OUT_PERMANENT) {
        char r[200];
        snprintf(r, sizeof r, "feishu token refused: %s", why);
        token_fail_all(s, r);
        return;
    }
    token_retry_later(s, why,
                      ntf_backoff_ms(s->tok.failures + 1, s->cfg->notifier.backoff_base_ms,
                                     s->cfg->notifier.backoff_max_ms, ntf_rnd64()));
}

static void token_fetch(struct ntf_service *s) {
    struct cq_err err = {0};
    char url[1024];
    snprintf(url, sizeof url, "%s/auth/v3/tenant_access_token/internal", s->cfg->feishu.api_base);
    cJSON *b = cJSON_CreateObject();
    char *body = NULL;
    if (b && cJSON_AddStringToObject(b, "app_id", s->cfg->feishu.app_id) &&
        cJSON_AddStringToObject(b, "app_secret", s->cfg->feishu.app_secret.value))
        body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (!body) {
        token_release_lock(s);
        token_retry_later(s, "out of memory", 1000);
        return;
    }
    const char *h[] = {"Content-Type: application/json; charset=utf-8", NULL};
    struct cq_http_request req = {.method = "POST",
                                  .url = url,
                                  .headers = h,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .timeout_ms = s->cfg->notifier.http_timeout_ms};
    enum cq_rc rc = cq_httpc_request(s->http, &req, on_token_answer, s, &err);
    free(body);
    if (rc != CQ_OK) {
        token_release_lock(s);
        token_fail_all(s, err.msg);
    }
}

/* A Redis step of the token failed: on shutdown the lookup just ends, else it is retried. */
static bool token_redis_failed(struct ntf_service *s, const struct cq_err *err) {
    if (!err) return false;
    if (err->code == CQ_ESHUTDOWN)
        s->tok.busy = false;
    else
        token_retry_later(s, err->msg, 500);
    return true;
}

static void on_token_lock(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ntf_service *s = opaque;
    if (token_redis_failed(s, err)) return;
    if (reply && reply->type == REDIS_REPLY_STATUS) { /* OK: this copy fetches */
        s->tok.lock_held = true;
        token_fetch(s);
        return;
    }
    /* another copy is fetching: read its result shortly (not counted as a failure) */
    if (!s->stopping)
        uv_timer_start(&s->tok.timer, token_timer_cb, TOKEN_WAIT_MS, 0);
    else
        s->tok.busy = false;
}

static void on_token_get(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ntf_service *s = opaque;
    if (token_redis_failed(s, err)) return;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        long long fetched = 0, expire = 0;
        int off = 0;
        if (sscanf(reply->str, "%lld %lld %n", &fetched, &expire, &off) == 2 && off > 0 &&
            reply->str[off] && ntf_wall_ms() < expire - TOKEN_EARLY_MS &&
            !(s->tok.stale && strcmp(s->tok.stale, reply->str + off) == 0)) {
            char *t = strdup(reply->str + off);
            if (t) {
                free(s->tok.token);
                s->tok.token = t;
                s->tok.fetched_ms = fetched;
                s->tok.expire_ms = expire;
                token_serve(s);
                return;
            }
        }
    }
    char key[512], px[16];
    token_key(s, key, sizeof key, true);
    snprintf(px, sizeof px, "%d", TOKEN_LOCK_MS);
    const char *argv[] = {"SET", key, s->instance, "NX", "PX", px};
    if (cq_redis_commandargv(s->redis, on_token_lock, s, 6, argv, NULL) != CQ_OK)
        token_retry_later(s, "redis refused the command", 500);
}

static void token_lookup(struct ntf_service *s) {
    if (s->stopping) {
        s->tok.busy = false;
        return;
    }
    char key[512];
    token_key(s, key, sizeof key, false);
    const char *argv[] = {"GET", key};
    if (cq_redis_commandargv(s->redis, on_token_get, s, 2, argv, NULL) != CQ_OK)
        token_retry_later(s, "redis refused the command", 500);
}

void ntf_token_get(struct job *j) {
    struct ntf_service *s = j->s;
    if (token_valid(s)) {
        free(j->used_token);
        j->used_token = strdup(s->tok.token);
        if (!j->used_token)
            ntf_job_wait(j, 1000, N_SEND);
        else
            ntf_job_send(j);
        return;
    }
    if (s->stopping) {
        ntf_job_abandon(j);
        return;
    }
    j->wait = W_TOKEN;
    j->tok_next = s->tok.waiters;
    s->tok.waiters = j;
    if (!s->tok.busy) {
        s->tok.busy = true;
        token_lookup(s);
    }
}
