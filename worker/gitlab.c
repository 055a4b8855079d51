/* gitlab: GitLab REST calls for the pipeline modes on curl multi (httpc), with bounded
 * retries on loop timers: reads (and cancel) on 429/5xx and transport errors; the trigger,
 * which is not idempotent, only when GitLab cannot have acted (429, or never sent). Used by
 * the pipeline tracker (pipeline.c): trigger (and, after an ambiguous answer, the lookup
 * of its pipeline) -> status/jobs/trace while tracking -> cancel on timeout or on request. */
#include "gitlab.h"
#include "strutil.h"
#include "utf8.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_AFTER_CAP_MS 10000
#define TRACE_MAX (8u * 1024u * 1024u)

struct call;

struct w_gitlab {
    struct cq_loop *loop;
    struct cq_httpc *httpc;
    char *base;      /* base_url without trailing '/' */
    char *token_hdr; /* "PRIVATE-TOKEN: ..." or NULL */
    int max_attempts, backoff_ms, timeout_ms;
    struct call *calls;
    int inflight;
};

struct call {
    struct w_gitlab *g; /* NULL once orphaned by w_gitlab_free */
    struct call *prev, *next;
    char *method, *url, *body;
    bool form, auth, idempotent;
    size_t max_response;
    w_gitlab_cb cb;
    void *opaque;
    int attempts;
    uv_timer_t *timer; /* while waiting to retry */
    bool in_http;
};

struct w_gitlab *w_gitlab_new(struct cq_loop *loop, struct cq_httpc *httpc, const char *base_url,
                              const char *api_token, int max_attempts, int backoff_ms,
                              int timeout_ms, struct cq_err *err) {
    struct w_gitlab *g = NULL;
    if (!loop || !httpc || !base_url ||
        (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)) {
        cq_err_set(err, CQ_EINVAL, "gitlab.base_url must start with http:// or https://");
        return NULL;
    }
    if (api_token && strpbrk(api_token, "\r\n")) {
        cq_err_set(err, CQ_EINVAL, "gitlab.api_token contains a line break");
        return NULL;
    }
    g = calloc(1, sizeof(*g));
    if (!g) goto out;
    g->loop = loop;
    g->httpc = httpc;
    g->base = strdup(base_url);
    if (!g->base) goto out;
    size_t n = strlen(g->base);
    while (n > 0 && g->base[n - 1] == '/')
        g->base[--n] = '\0';
    if (api_token) {
        g->token_hdr = cq_strprintf("PRIVATE-TOKEN: %s", api_token);
        if (!g->token_hdr) goto out;
    }
    g->max_attempts = max_attempts > 0 ? max_attempts : 4;
    g->backoff_ms = backoff_ms > 0 ? backoff_ms : 500;
    g->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    return g;
out:
    w_gitlab_free(g);
    cq_err_set(err, CQ_ENOMEM, "out of memory");
    return NULL;
}

int w_gitlab_inflight(const struct w_gitlab *g) {
    return g ? g->inflight : 0;
}

static void timer_closed(uv_handle_t *h) {
    free(h);
}

static void call_free(struct call *c) {
    if (!c) return;
    if (c->timer) {
        uv_close((uv_handle_t *)c->timer, timer_closed);
        c->timer = NULL;
    }
    free(c->method);
    free(c->url);
    free(c->body);
    free(c);
}

static void call_unlink(struct call *c) {
    struct w_gitlab *g = c->g;
    if (!g) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    g->inflight--;
}

/* Delivers the reply and frees the call. */
static void call_finish(struct call *c, const struct cq_http_response *resp, enum cq_rc rc,
                        const char *errmsg) {
    struct w_gitlab_reply r = {
        .rc = rc, .body = "", .errmsg = errmsg ? errmsg : "", .attempts = c->attempts};
    cJSON *json = NULL;
    if (resp) {
        /* Earlier sends of a non-idempotent call were 429s or never sent: only this last
         * one can have been carried out without a usable answer. */
        r.ambiguous = !c->idempotent &&
                      (rc == CQ_OK ? resp->status >= 500 || resp->status == 408 : !resp->unsent);
        r.status = resp->status;
        r.body = resp->body ? resp->body : "";
        r.body_len = resp->body_len;
        if (rc == CQ_OK && r.body_len > 0 && (r.body[0] == '{' || r.body[0] == '['))
            json = cJSON_ParseWithLength(r.body, r.body_len);
        r.json = json;
    }
    call_unlink(c);
    c->g = NULL;
    if (c->cb) c->cb(c->opaque, &r);
    cJSON_Delete(json);
    call_free(c);
}

static void send_now(struct call *c);

static void retry_fire(uv_timer_t *t) {
    struct call *c = t->data;
    uv_close((uv_handle_t *)c->timer, timer_closed);
    c->timer = NULL;
    send_now(c);
}

static long retry_after_ms(const char *v) {
    if (!v) return -1;
    char *end = NULL;
    long s = strtol(v, &end, 10);
    if (end == v || s < 0) return -1;
    return s > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : s * 1000;
}

static void on_http(void *opaque, const struct cq_http_response *resp) {
    struct call *c = opaque;
    c->in_http = false;
    if (!c->g) { /* orphaned: the caller was told at w_gitlab_free */
        call_free(c);
        return;
    }
    if (resp->rc == CQ_ESHUTDOWN) {
        call_finish(c, resp, CQ_ESHUTDOWN, "shutting down");
        return;
    }
    /* A non-idempotent call (the trigger) is sent again only when GitLab cannot have
     * acted on it: a 429, or a request that never left (connect failure). A 5xx, a
     * timeout or a reset after sending may come after GitLab created the pipeline. */
    bool retryable = resp->rc == CQ_OK
                         ? resp->status == 429 || (c->idempotent && resp->status >= 500)
                         : c->idempotent || resp->unsent;
    if (retryable && c->attempts < c->g->max_attempts) {
        long delay = (long)c->g->backoff_ms << (c->attempts - 1);
        long ra = resp->rc == CQ_OK ? retry_after_ms(resp->retry_after) : -1;
        if (ra >= 0) delay = ra;
        if (delay > RETRY_AFTER_CAP_MS) delay = RETRY_AFTER_CAP_MS;
        c->timer = malloc(sizeof(*c->timer));
        if (c->timer && uv_timer_init(cq_loop_uv(c->g->loop), c->timer) == 0) {
            c->timer->data = c;
            uv_timer_start(c->timer, retry_fire, (uint64_t)delay, 0);
            return;
        }
        free(c->timer);
        c->timer = NULL;
    }
    call_finish(c, resp, resp->rc, resp->errmsg);
}

static void send_now(struct call *c) {
    struct cq_err err = {0};
    const char *hdrs[4];
    int n = 0;
    if (c->auth && c->g->token_hdr) hdrs[n++] = c->g->token_hdr;
    if (c->form) hdrs[n++] = "Content-Type: application/x-www-form-urlencoded";
    hdrs[n] = NULL;
    struct cq_http_request req = {.method = c->method,
                                  .url = c->url,
                                  .headers = hdrs,
                                  .body = c->body,
                                  .body_len = c->body ? strlen(c->body) : 0,
                                  .timeout_ms = c->g->timeout_ms,
                                  .max_response = c->max_response};
    c->attempts++;
    if (cq_httpc_request(c->g->httpc, &req, on_http, c, &err) == CQ_OK) {
        c->in_http = true;
        return;
    }
    /* Not sent: answer on the next loop turn so cb never runs inside the caller. */
    struct cq_http_response fake = {.rc = err.code == CQ_ESHUTDOWN ? CQ_ESHUTDOWN : CQ_EHTTP,
                                    .body = (char *)"",
                                    .unsent = true};
    snprintf(fake.errmsg, sizeof(fake.errmsg), "%s", err.msg);
    call_finish(c, &fake, fake.rc, fake.errmsg);
}

static void first_send(uv_timer_t *t) {
    retry_fire(t);
}

/* Starts a call; the first send happens on the next loop turn (so the callback never
 * runs inside the caller even when the request cannot be sent at all). */
static enum cq_rc start(struct w_gitlab *g, const char *method, char *url, char *body, bool form,
                        bool auth, bool idempotent, size_t max_response, w_gitlab_cb cb,
                        void *opaque, struct cq_err *err) {
    struct call *c = NULL;
    if (!url || (form && !body)) goto out;
    c = calloc(1, sizeof(*c));
    if (!c) goto out;
    c->method = strdup(method);
    if (!c->method) goto out;
    /* c->timer is set only once initialised: call_free closes it (uv_close on memory
     * libuv never saw would corrupt the loop). */
    uv_timer_t *timer = malloc(sizeof(*timer));
    if (!timer) goto out;
    if (uv_timer_init(cq_loop_uv(g->loop), timer) != 0) {
        free(timer);
        goto out;
    }
    c->timer = timer;
    c->url = url;
    c->body = body;
    c->form = form;
    c->auth = auth;
    c->idempotent = idempotent;
    c->max_response = max_response;
    c->cb = cb;
    c->opaque = opaque;
    c->g = g;
    c->next = g->calls;
    if (g->calls) g->calls->prev = c;
    g->calls = c;
    g->inflight++;
    c->timer->data = c;
    uv_timer_start(c->timer, first_send, 0, 0);
    return CQ_OK;
out:
    if (c) {
        c->url = NULL;
        c->body = NULL;
        call_free(c);
    }
    free(url);
    free(body);
    return cq_err_set(err, CQ_ENOMEM, "out of memory");
}

static char *project_seg(const char *project) {
    /* A path "group/name" is encoded; an already-encoded one ("group%2Fname") kept. */
    if (strchr(project, '%')) return strdup(project);
    return cq_url_escape(project, strlen(project));
}

static char *api_url(struct w_gitlab *g, const char *project, const char *tail) {
    char *seg = project_seg(project);
    char *url = NULL;
    if (!seg) return NULL;
    url = cq_strprintf("%s/api/v4/projects/%s%s", g->base, seg, tail);
    free(seg);
    return url;
}

static bool form_add(char **buf, size_t *len, const char *name, const char *value) {
    char *n = cq_url_escape(name, strlen(name));
    char *v = cq_url_escape(value, strlen(value));
    bool ok = false;
    if (!n || !v) goto out;
    size_t add = strlen(n) + strlen(v) + 2;
    char *nb = realloc(*buf, *len + add + 1);
    if (!nb) goto out;
    *buf = nb;
    *len += (size_t)snprintf(nb + *len, add + 1, "%s%s=%s", *len ? "&" : "", n, v);
    ok = true;
out:
    free(n);
    free(v);
    return ok;
}

char *w_gitlab_trigger_form(const char *token, const char *ref, const char *const *vars) {
    char *buf = calloc(1, 1);
    size_t len = 0;
    if (!buf) return NULL;
    if (!form_add(&buf, &len, "token", token ? token : "") ||
        !form_add(&buf, &len, "ref", ref ? ref : ""))
        goto out;
    for (size_t i = 0; vars && vars[i] && vars[i + 1]; i += 2) {
        char *name = cq_strprintf("variables[%s]", vars[i]);
        bool ok = name && form_add(&buf, &len, name, vars[i + 1]);
        free(name);
        if (!ok) goto out;
    }
    return buf;
out:
    free(buf);
    return NULL;
}

bool w_gitlab_ref_valid(const char *ref) {
    size_t n = ref ? strlen(ref) : 0;
    if (n == 0 || n > 255 || ref[0] == '-' || ref[0] == '/' || ref[n - 1] == '/' ||
        ref[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)ref[i];
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '/' && ch != '-') return false;
    }
    if (strstr(ref, "..") || strstr(ref, "//") || strstr(ref, "/.") ||
        (n >= 5 && strcmp(ref + n - 5, ".lock") == 0))
        return false;
    return true;
}

enum cq_rc w_gitlab_trigger(struct w_gitlab *g, const char *project, const char *token,
                            const char *ref, const char *const *vars, w_gitlab_cb cb, void *opaque,
                            struct cq_err *err) {
    if (!g || !project || !token || !ref || !cb)
        return cq_err_set(err, CQ_EINVAL, "trigger needs project, token and ref");
    return start(g, "POST", api_url(g, project, "/trigger/pipeline"),
                 w_gitlab_trigger_form(token, ref, vars), true, false, false, 0, cb, opaque, err);
}

enum cq_rc w_gitlab_pipeline(struct w_gitlab *g, const char *project, long long id, w_gitlab_cb cb,
                             void *opaque, struct cq_err *err) {
    if (!g || !project || !cb) return cq_err_set(err, CQ_EINVAL, "missing project");
    char tail[64];
    snprintf(tail, sizeof(tail), "/pipelines/%lld", id);
    return start(g, "GET", api_url(g, project, tail), NULL, false, true, true, 0, cb, opaque, err);
}

enum cq_rc w_gitlab_jobs(struct w_gitlab *g, const char *project, long long id, const char *scope,
                         w_gitlab_cb cb, void *opaque, struct cq_err *err) {
    if (!g || !project || !cb) return cq_err_set(err, CQ_EINVAL, "missing project");
    char tail[160];
    snprintf(tail, sizeof(tail), "/pipelines/%lld/jobs?per_page=100%s%s", id,
             scope ? "&scope%5B%5D=" : "",
             scope && strspn(scope, "abcdefghijklmnopqrstuvwxyz_") == strlen(scope) ? scope : "");
    return start(g, "GET", api_url(g, project, tail), NULL, false, true, true, 0, cb, opaque, err);
}

enum cq_rc w_gitlab_trace(struct w_gitlab *g, const char *project, long long job_id, w_gitlab_cb cb,
                          void *opaque, struct cq_err *err) {
    if (!g || !project || !cb) return cq_err_set(err, CQ_EINVAL, "missing project");
    char tail[64];
    snprintf(tail, sizeof(tail), "/jobs/%lld/trace", job_id);
    return start(g, "GET", api_url(g, project, tail), NULL, false, true, true, TRACE_MAX, cb,
                 opaque, err);
}

enum cq_rc w_gitlab_cancel(struct w_gitlab *g, const char *project, long long id, w_gitlab_cb cb,
                           void *opaque, struct cq_err *err) {
    if (!g || !project || !cb) return cq_err_set(err, CQ_EINVAL, "missing project");
    /* Idempotent: cancelling a canceled or finished pipeline changes nothing (GitLab
     * answers with the pipeline), so it is retried like a read. */
    char tail[64];
    snprintf(tail, sizeof(tail), "/pipelines/%lld/cancel", id);
    return start(g, "POST", api_url(g, project, tail), NULL, false, true, true, 0, cb, opaque, err);
}

enum cq_rc w_gitlab_pipelines_since(struct w_gitlab *g, const char *project, const char *ref,
                                    long long updated_after_ms, int per_page, w_gitlab_cb cb,
                                    void *opaque, struct cq_err *err) {
    if (!g || !project || !ref || !cb) return cq_err_set(err, CQ_EINVAL, "missing project or ref");
    char when[40];
    time_t secs = (time_t)(updated_after_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return cq_err_set(err, CQ_EINVAL, "bad time");
    char *eref = cq_url_escape(ref, strlen(ref));
    char *ewhen = cq_url_escape(when, strlen(when));
    char *tail = eref && ewhen
                     ? cq_strprintf("/pipelines?ref=%s&source=trigger&updated_after=%s"
                                    "&order_by=id&sort=desc&per_page=%d",
                                    eref, ewhen, per_page > 0 && per_page <= 100 ? per_page : 20)
                     : NULL;
    free(eref);
    free(ewhen);
    if (!tail) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    char *url = api_url(g, project, tail);
    free(tail);
    return start(g, "GET", url, NULL, false, true, true, 0, cb, opaque, err);
}

enum cq_rc w_gitlab_pipeline_variables(struct w_gitlab *g, const char *project, long long id,
                                       w_gitlab_cb cb, void *opaque, struct cq_err *err) {
    if (!g || !project || !cb) return cq_err_set(err, CQ_EINVAL, "missing project");
    char tail[80];
    snprintf(tail, sizeof(tail), "/pipelines/%lld/variables?per_page=100", id);
    return start(g, "GET", api_url(g, project, tail), NULL, false, true, true, 0, cb, opaque, err);
}

enum cq_rc w_gitlab_set_token(struct w_gitlab *g, const char *api_token) {
    if (api_token && strpbrk(api_token, "\r\n")) return CQ_EINVAL;
    char *hdr = api_token ? cq_strprintf("PRIVATE-TOKEN: %s", api_token) : NULL;
    if (api_token && !hdr) return CQ_ENOMEM;
    if (g->token_hdr) { /* curl copied it into every request already made */
        memset(g->token_hdr, 0, strlen(g->token_hdr));
        free(g->token_hdr);
    }
    g->token_hdr = hdr;
    return CQ_OK;
}

void w_gitlab_free(struct w_gitlab *g) {
    if (!g) return;
    while (g->calls) {
        struct call *c = g->calls;
        bool in_http = c->in_http;
        struct w_gitlab_reply r = {.rc = CQ_ESHUTDOWN,
                                   .body = "",
                                   .errmsg = "shutting down",
                                   .attempts = c->attempts,
                                   .ambiguous = !c->idempotent && in_http};
        call_unlink(c);
        c->g = NULL;
        if (c->cb) c->cb(c->opaque, &r);
        c->cb = NULL;
        if (!in_http) /* else freed when httpc calls back */
            call_free(c);
    }
    free(g->base);
    if (g->token_hdr) {
        memset(g->token_hdr, 0, strlen(g->token_hdr));
        free(g->token_hdr);
    }
    free(g);
}

char *w_gitlab_error_text(const struct w_gitlab_reply *r, const char *what) {
    char msg[200] = ""; /* from GitLab: cut on a character and made valid UTF-8 */
    const cJSON *m = r->json ? cJSON_GetObjectItemCaseSensitive(r->json, "message") : NULL;
    if (!m && r->json) m = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    const char *text = cJSON_GetStringValue(m);
    if (text) {
        memcpy(msg, ": ", 3);
        cq_utf8_copy(msg + 2, sizeof(msg) - 2, text, strlen(text), NULL);
    } else if (m) {
        char *p = cJSON_PrintUnformatted(m);
        if (p) {
            memcpy(msg, ": ", 3);
            cq_utf8_copy(msg + 2, sizeof(msg) - 2, p, strlen(p), NULL);
        }
        free(p);
    }
    for (char *p = msg; *p; p++)
        if (*p == '\r' || *p == '\n') *p = ' ';
    if (r->rc == CQ_ETIMEOUT)
        return cq_strprintf("could not %s: GitLab did not answer in time; check GitLab before "
                            "trying again",
                            what);
    if (r->rc != CQ_OK)
        return cq_strprintf("could not %s: GitLab unreachable (%s)", what,
                            r->errmsg && *r->errmsg ? r->errmsg : cq_rc_str(r->rc));
    switch (r->status) {
    case 401:
        return cq_strprintf("could not %s: GitLab rejected the token (HTTP 401)%s", what, msg);
    case 403:
        return cq_strprintf("could not %s: GitLab refused it (HTTP 403: no permission)%s", what,
                            msg);
    case 404:
        return cq_strprintf("could not %s: GitLab project or pipeline not found (HTTP 404)%s", what,
                            msg);
    case 422:
        return cq_strprintf("could not %s: GitLab could not create it (HTTP 422, e.g. unknown ref "
                            "or invalid CI config)%s",
                            what, msg);
    case 429:
        return cq_strprintf("could not %s: GitLab is rate limiting (HTTP 429) after %d attempts",
                            what, r->attempts);
    default:
        if (r->status >= 500)
            return cq_strprintf("could not %s: GitLab error (HTTP %ld) after %d attempts%s", what,
                                r->status, r->attempts, msg);
        return cq_strprintf("could not %s: GitLab answered HTTP %ld%s", what, r->status, msg);
    }
}

/* Copies src[0..len) without ANSI CSI/OSC sequences, CRs and GitLab section markers. */
static size_t clean_log(const char *src, size_t len, char *dst) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == 0x1b) {
            if (i + 1 < len && src[i + 1] == '[') {
                i += 2;
                while (i < len && !((unsigned char)src[i] >= 0x40 && (unsigned char)src[i] <= 0x7e))
                    i++;
                continue;
            }
            if (i + 1 < len && src[i + 1] == ']') {
                while (i < len && src[i] != '\a')
                    i++;
                continue;
            }
            continue;
        }
        if (ch == '\r' || ch == '\0') { /* a NUL would end the text early */
            continue;
        }
        if ((ch == 's') && (o == 0 || dst[o - 1] == '\n' || dst[o - 1] == ' ') && (len - i > 14) &&
            (strncmp(src + i, "section_start:", 14) == 0 ||
             strncmp(src + i, "section_end:", 12) == 0)) {
            /* section_start:<ts>:<name>[opts] then ESC[0K (already stripped): skip the marker */
            size_t j = i;
            int colons = 0;
            while (j < len && colons < 2) {
                if (src[j] == ':') colons++;
                j++;
            }
            while (j < len && src[j] != 0x1b && src[j] != '\n' && src[j] != ' ' && src[j] != '\r')
                j++;
            i = j - 1;
            continue;
        }
        dst[o++] = (char)ch;
    }
    dst[o] = '\0';
    return o;
}

char *w_gitlab_log_tail(const char *log, size_t len, int max_lines, size_t max_bytes) {
    /* Only the end matters: clean at most a window proportional to the bound. */
    size_t window = max_bytes * 4 + 4096;
    if (len > window) {
        log += len - window;
        len = window;
    }
    char *clean = malloc(len + 1);
    if (!clean) return NULL;
    size_t n = clean_log(log, len, clean);
    while (n > 0 && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
        clean[--n] = '\0';
    size_t start = n;
    int lines = 0;
    while (start > 0) {
        size_t p = start - 1;
        while (p > 0 && clean[p - 1] != '\n')
            p--;
        if (max_lines > 0 && lines >= max_lines) break;
        if (max_bytes > 0 && n - p > max_bytes) {
            if (lines == 0) /* one line longer than the bound: keep its end (cut below) */
                start = p;
            break;
        }
        start = p;
        lines++;
    }
    /* A one-line cut may start inside a character, and job logs may hold any bytes: the tail
     * starts on a character, is valid UTF-8 (U+FFFD for invalid bytes) and stays in bound. */
    char *out = cq_utf8_tail(clean + start, n - start, max_bytes);
    free(clean);
    return out;
}
