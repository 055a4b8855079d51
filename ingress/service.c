/* service: the ingress wiring (see service.h). Handlers run on libmicrohttpd threads: check
 * the content type, verify, normalise, encode, send to Kafka, and leave the connection
 * suspended. The delivery report (loop thread) answers it; a guard timer answers "not run"
 * when the report has not come within kafka.produce_timeout_ms. A job is shared by the
 * handler and the report (refcount under in->mu), so neither frees it under the other. */
#include "service.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto.h"
#include "envelope.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "platform.h"
#include "verify.h"

enum route { R_SLACK_CMD, R_SLACK_EV, R_FEISHU, R_GITLAB, R_COUNT };
static const char *const ROUTE_LABEL[R_COUNT] = {"slack_commands", "slack_events",
                                                 "feishu_events", "gitlab_webhook"};

#define M_REQUESTS "chatops_ingress_requests_total"
#define H_REQUESTS "Requests by route and outcome."
#define M_REJECTED "chatops_ingress_rejected_total"
#define H_REJECTED "Requests refused with a 4xx, by route and reason."
#define M_VERIFY "chatops_ingress_verify_failures_total"
#define H_VERIFY "Signature and token failures by reason."

enum job_state { J_SENDING, J_WAITING, J_ANSWERED };

struct job {
    struct cq_ingress *in;
    struct cq_http_exchange *x; /* NULL once taken for answering */
    enum route route;
    enum job_state state;
    int refs; /* handler + delivery report; under in->mu */
    char id[CQ_UUID_LEN + 1];
    char *cmdline; /* "deploy web production", for Slack's acknowledgement */
    unsigned long long t0, deadline;
    struct job *prev, *next; /* the waiting list, ordered by deadline */
};

struct cq_ingress {
    const struct cq_config *cfg;
    struct cq_loop *loop;
    struct cq_producer *prod;
    struct cq_http_server *http;
    pthread_mutex_t mu;
    struct job *head, *tail;
    int waiting;
    uv_timer_t guard, drain;
    unsigned long long drain_deadline;
    int budget_ms;
    struct cq_counter *queued[R_COUNT], *not_queued[R_COUNT];
    struct cq_gauge *inflight;
    struct cq_histogram *produce_seconds;
};

/* ---- answers ------------------------------------------------------------------------------ */

static void short_id(const char *id, char out[9]) {
    snprintf(out, 9, "%.8s", id);
}

static void respond_json_text(struct cq_http_exchange *x, const char *id, unsigned status,
                              const char *text) {
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "response_type", "ephemeral") &&
        cJSON_AddStringToObject(o, "text", text))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s)
        cq_http_respond_h(x, status, "application/json", s, strlen(s), "X-Request-Id", id);
    else
        cq_http_respond_h(x, 503, "text/plain", "out of memory\n", 14, "X-Request-Id", id);
    free(s);
}

static void respond_text(struct cq_http_exchange *x, const char *id, unsigned status,
                         const char *ctype, const char *body) {
    cq_http_respond_h(x, status, ctype, body, strlen(body), "X-Request-Id", id);
}

/* The answer once the fate of a produced request is known (any thread; x taken from j). */
static void answer_produced(struct cq_ingress *in, struct job *j, struct cq_http_exchange *x,
                            bool ok, const char *why) {
    char sid[9], text[600];
    short_id(j->id, sid);
    cq_gauge_add(in->inflight, -1);
    if (ok) {
        cq_counter_inc(in->queued[j->route]);
        switch (j->route) {
        case R_SLACK_CMD:
            snprintf(text, sizeof(text), "queued: %s \xc2\xb7 req %s", j->cmdline, sid);
            respond_json_text(x, j->id, 200, text);
            break;
        case R_SLACK_EV:
            respond_text(x, j->id, 200, "text/plain", "");
            break;
        default:
            respond_text(x, j->id, 200, "application/json", "{}");
        }
        return;
    }
    cq_counter_inc(in->not_queued[j->route]);
    cq_log_kv(CQ_LOG_ERROR, j->id, "not queued",
              (const char *const[]){"route", ROUTE_LABEL[j->route], "reason", why, NULL});
    if (j->route == R_SLACK_CMD) {
        /* Slack shows any non-200 as a generic "failed with the error" line; a 200 with an
         * ephemeral text is the only way to say plainly that nothing ran. */
        snprintf(text, sizeof(text),
                 "not run: `%s` could not be queued (%s). Nothing was executed; please retry. "
                 "\xc2\xb7 req %s",
                 j->cmdline, why, sid);
        respond_json_text(x, j->id, 200, text);
    } else { /* Slack events, Feishu and GitLab re-send on a 5xx */
        snprintf(text, sizeof(text), "not queued: %s; retry later\n", why);
        respond_text(x, j->id, 503, "text/plain", text);
    }
}

static void unlink_job(struct cq_ingress *in, struct job *j) {
    if (j->prev) j->prev->next = j->next; else in->head = j->next;
    if (j->next) j->next->prev = j->prev; else in->tail = j->prev;
    j->prev = j->next = NULL;
    in->waiting--;
}

static void job_unref(struct cq_ingress *in, struct job *j) {
    pthread_mutex_lock(&in->mu);
    int r = --j->refs;
    pthread_mutex_unlock(&in->mu);
    if (r == 0) {
        free(j->cmdline);
        free(j);
    }
}

/* Takes the exchange out of j if nobody answered it yet. Returns it or NULL. */
static struct cq_http_exchange *take(struct cq_ingress *in, struct job *j) {
    struct cq_http_exchange *x = NULL;
    pthread_mutex_lock(&in->mu);
    if (j->state != J_ANSWERED) {
        if (j->state == J_WAITING) unlink_job(in, j);
        j->state = J_ANSWERED;
        x = j->x;
        j->x = NULL;
    }
    pthread_mutex_unlock(&in->mu);
    return x;
}

/* Loop thread. */
static void on_delivery(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                        int64_t offset) {
    struct job *j = opaque;
    struct cq_ingress *in = j->in;
    cq_histogram_observe(in->produce_seconds, (double)(cq_now_ms() - j->t0) / 1000.0);
    struct cq_http_exchange *x = take(in, j);
    if (x) {
        if (rc == CQ_OK) {
            char part[16], off[24];
            snprintf(part, sizeof(part), "%d", (int)partition);
            snprintf(off, sizeof(off), "%lld", (long long)offset);
            cq_log_kv(CQ_LOG_DEBUG, j->id, "queued",
                      (const char *const[]){"route", ROUTE_LABEL[j->route], "partition", part,
                                            "offset", off, NULL});
            answer_produced(in, j, x, true, NULL);
        } else {
            char why[200];
            snprintf(why, sizeof(why), "Kafka: %s", errstr ? errstr : cq_rc_str(rc));
            answer_produced(in, j, x, false, why);
        }
    } else if (rc == CQ_OK) {
        /* The guard already said "not run" but the broker confirmed late (the message was on
         * the wire at the deadline): the worker will run it. Rare; logged loudly. */
        cq_log_kv(CQ_LOG_ERROR, j->id, "delivered after the not-run answer",
                  (const char *const[]){"route", ROUTE_LABEL[j->route], NULL});
    }
    job_unref(in, j);
}

/* Loop thread, every 20 ms: answers the requests whose budget ran out. */
static void on_guard(uv_timer_t *t) {
    struct cq_ingress *in = t->data;
    unsigned long long now = cq_now_ms();
    char why[96];
    snprintf(why, sizeof(why), "Kafka did not confirm within %d ms", in->budget_ms);
    for (;;) {
        struct job *j;
        struct cq_http_exchange *x = NULL;
        pthread_mutex_lock(&in->mu);
        j = in->head;
        if (j && j->deadline <= now) {
            unlink_job(in, j);
            j->state = J_ANSWERED;
            x = j->x;
            j->x = NULL;
        }
        pthread_mutex_unlock(&in->mu);
        if (!x) break;
        /* j stays alive: its report (this thread, later) holds a reference */
        answer_produced(in, j, x, false, why);
    }
}

/* ---- handlers (MHD threads) --------------------------------------------------------------- */

struct ctx {
    struct cq_ingress *in;
    struct cq_http_exchange *x;
    enum route route;
    char id[CQ_UUID_LEN + 1];
};

static void count_outcome(const struct ctx *c, const char *outcome) {
    char labels[96];
    snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"%s\"", ROUTE_LABEL[c->route], outcome);
    cq_metric_inc(M_REQUESTS, H_REQUESTS, labels);
}

/* 4xx (and 5xx for our own failures): one-line reason, metric, log line, nothing produced. */
static void reject(const struct ctx *c, unsigned status, const char *reason, const char *detail) {
    char labels[128], st[8], body[256], esc[48];
    cq_metrics_escape(reason, esc, sizeof(esc)); /* reason labels are ours, but be safe */
    snprintf(labels, sizeof(labels), "route=\"%s\",reason=\"%s\"", ROUTE_LABEL[c->route], esc);
    if (status < 500) cq_metric_inc(M_REJECTED, H_REJECTED, labels);
    if (status == 401) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", esc);
        cq_metric_inc(M_VERIFY, H_VERIFY, labels);
    }
    count_outcome(c, status < 500 ? "rejected" : "error");
    snprintf(st, sizeof(st), "%u", status);
    cq_log_kv(CQ_LOG_WARN, c->id, "rejected",
              (const char *const[]){"route", ROUTE_LABEL[c->route], "status", st, "reason", reason,
                                    "detail", detail, NULL});
    snprintf(body, sizeof(body), "%s\n", detail);
    respond_text(c->x, c->id, status, "text/plain", body);
}

static bool ctx_init(struct ctx *c, struct cq_ingress *in, struct cq_http_exchange *x,
                     enum route r) {
    c->in = in;
    c->x = x;
    c->route = r;
    if (cq_uuid4(c->id) != CQ_OK) {
        snprintf(c->id, sizeof(c->id), "00000000-0000-4000-8000-000000000000");
        reject(c, 503, "no_entropy", "cannot generate a request id");
        return false;
    }
    return true;
}

/* Media type of the request equals want (parameters such as charset ignored). */
static bool content_type_is(const struct ctx *c, const char *want) {
    const char *ct = cq_http_header(c->x, "Content-Type");
    size_t n = strlen(want);
    if (!ct) return false;
    while (*ct == ' ') ct++;
    return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static bool need_type(const struct ctx *c, const char *want) {
    if (content_type_is(c, want)) return true;
    char detail[128];
    snprintf(detail, sizeof(detail), "unsupported content type: expected %s", want);
    reject(c, 415, "content_type", detail);
    return false;
}

static int retry_num(const struct ctx *c) {
    const char *h = cq_http_header(c->x, "X-Slack-Retry-Num");
    long v = 0;
    if (!h) return 0;
    for (const char *p = h; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
        if (v > CQ_ENV_MAX_RETRY_NUM) return CQ_ENV_MAX_RETRY_NUM;
    }
    return (int)v;
}

/* Encodes and sends; the answer comes from the report or the guard. Takes over o->req. */
static void produce(const struct ctx *c, const char *topic, const char *key, const char *value,
                    size_t len, const char *cmdline) {
    struct cq_ingress *in = c->in;
    struct cq_err err = {0};
    struct job *j = calloc(1, sizeof *j);
    if (!j || !(j->cmdline = strdup(cmdline ? cmdline : ""))) {
        free(j);
        reject(c, 503, "no_memory", "out of memory");
        return;
    }
    j->in = in;
    j->x = c->x;
    j->route = c->route;
    j->state = J_SENDING;
    j->refs = 2;
    memcpy(j->id, c->id, sizeof(j->id));
    j->t0 = cq_now_ms();
    j->deadline = j->t0 + (unsigned long long)in->budget_ms;
    cq_gauge_add(in->inflight, 1);
    const char *const headers[] = {"req_id", j->id, NULL};
    enum cq_rc rc = cq_producer_send(in->prod, topic, key, strlen(key), value, len, headers,
                                     on_delivery, j, &err);
    if (rc != CQ_OK) { /* no report will come: the handler owns the answer */
        struct cq_http_exchange *x = take(in, j);
        char why[300];
        snprintf(why, sizeof(why), "Kafka: %s", err.msg[0] ? err.msg : cq_rc_str(rc));
        if (x) answer_produced(in, j, x, false, why);
        free(j->cmdline);
        free(j);
        return;
    }
    pthread_mutex_lock(&in->mu);
    if (j->state == J_SENDING) { /* report not yet in: wait for it (or the guard) */
        j->state = J_WAITING;
        j->prev = in->tail;
        if (in->tail) in->tail->next = j; else in->head = j;
        in->tail = j;
        in->waiting++;
    }
    pthread_mutex_unlock(&in->mu);
    job_unref(in, j);
}

/* The common tail of every chat route: outcome -> answer or envelope on the requests topic. */
static void finish_chat(const struct ctx *c, struct cq_in_outcome *o) {
    struct cq_ingress *in = c->in;
    struct cq_err err = {0};
    char *json = NULL, *key = NULL, *cmdline = NULL;
    switch (o->kind) {
    case CQ_IN_BAD:
        reject(c, 400, o->reason, o->detail);
        goto out;
    case CQ_IN_UNAUTH:
        reject(c, 401, o->reason, o->detail);
        goto out;
    case CQ_IN_ERROR:
        reject(c, 503, o->reason, o->detail);
        goto out;
    case CQ_IN_IGNORE:
        count_outcome(c, "ignored");
        cq_log_kv(CQ_LOG_DEBUG, c->id, "ignored",
                  (const char *const[]){"route", ROUTE_LABEL[c->route], "reason", o->reason, NULL});
        respond_text(c->x, c->id, 200, c->route == R_FEISHU ? "application/json" : "text/plain",
                     c->route == R_FEISHU ? "{}" : "");
        goto out;
    case CQ_IN_CHALLENGE: {
        cJSON *r = cJSON_CreateObject();
        char *s = r && cJSON_AddStringToObject(r, "challenge", o->challenge)
                      ? cJSON_PrintUnformatted(r) : NULL;
        cJSON_Delete(r);
        if (!s) {
            reject(c, 503, "no_memory", "out of memory");
            goto out;
        }
        count_outcome(c, "challenge");
        respond_text(c->x, c->id, 200, "application/json", s);
        free(s);
        goto out;
    }
    case CQ_IN_REFUSED: {
        /* The user sees why; 200 so Slack shows our text (Feishu: nothing to re-send). */
        char labels[128], text[300], sid[9];
        snprintf(labels, sizeof(labels), "route=\"%s\",reason=\"%s\"", ROUTE_LABEL[c->route],
                 o->reason);
        cq_metric_inc(M_REJECTED, H_REJECTED, labels);
        count_outcome(c, "refused");
        cq_log_kv(CQ_LOG_WARN, c->id, "refused",
                  (const char *const[]){"route", ROUTE_LABEL[c->route], "reason", o->reason,
                                        "detail", o->detail, NULL});
        short_id(c->id, sid);
        snprintf(text, sizeof(text), "not run: %s \xc2\xb7 req %s", o->detail, sid);
        if (c->route == R_SLACK_CMD)
            respond_json_text(c->x, c->id, 200, text);
        else
            respond_text(c->x, c->id, 200, c->route == R_FEISHU ? "application/json" : "text/plain",
                         c->route == R_FEISHU ? "{}" : "");
        goto out;
    }
    case CQ_IN_REQUEST:
        break;
    }
    char ts[32];
    cq_now_rfc3339(ts);
    o->req.id = strdup(c->id);
    o->req.received_at = strdup(ts);
    if (!o->req.id || !o->req.received_at) {
        reject(c, 503, "no_memory", "out of memory");
        goto out;
    }
    json = cq_request_encode(&o->req, &err);
    if (!json) {
        if (err.code == CQ_ENOMEM)
            reject(c, 503, "no_memory", "out of memory");
        else
            reject(c, 400, "invalid_field", err.msg);
        goto out;
    }
    size_t len = strlen(json);
    if (len > in->cfg->limits.max_envelope) {
        reject(c, 413, "envelope_too_big", "request envelope over limits.max_envelope");
        goto out;
    }
    const char *tenant = o->req.tenant ? o->req.tenant : "";
    const char *chan = o->req.channel_id ? o->req.channel_id : "";
    size_t kl = strlen(o->req.platform) + strlen(tenant) + strlen(chan) + 3;
    size_t cl = strlen(o->req.command) + strlen(o->req.text) + 2;
    key = malloc(kl);
    cmdline = malloc(cl);
    if (!key || !cmdline) {
        reject(c, 503, "no_memory", "out of memory");
        goto out;
    }
    snprintf(key, kl, "%s:%s:%s", o->req.platform, tenant, chan);
    snprintf(cmdline, cl, "%s%s%s", o->req.command, *o->req.text ? " " : "", o->req.text);
    produce(c, in->cfg->kafka.topic_requests, key, json, len, cmdline);
out:
    free(json);
    free(key);
    free(cmdline);
    cq_in_outcome_clear(o);
}

/* ssl_check=1 as a whole form field (Slack's unsigned health probe). */
static bool is_ssl_check(const char *body, size_t len) {
    static const char f[] = "ssl_check=1";
    const size_t fl = sizeof(f) - 1;
    for (size_t i = 0; i + fl <= len; i++) {
        if ((i == 0 || body[i - 1] == '&') && memcmp(body + i, f, fl) == 0 &&
            (i + fl == len || body[i + fl] == '&'))
            return true;
    }
    return false;
}

static bool slack_verified(const struct ctx *c, const char *body, size_t len) {
    const struct cq_config *cfg = c->in->cfg;
    enum cq_verify v = cq_verify_slack(
        cfg->slack.signing_secret.value, cq_http_header(c->x, "X-Slack-Request-Timestamp"),
        cq_http_header(c->x, "X-Slack-Signature"), body, len, (long long)time(NULL),
        cfg->limits.replay_window_s);
    if (v == CQ_VERIFY_OK) return true;
    char detail[128];
    snprintf(detail, sizeof(detail), "slack signature: %s", cq_verify_text(v));
    reject(c, 401, cq_verify_label(v), detail);
    return false;
}

static void on_slack_command(struct cq_http_exchange *x, void *arg) {
    struct ctx c;
    struct cq_in_outcome o;
    size_t len;
    if (!ctx_init(&c, arg, x, R_SLACK_CMD)) return;
    const char *body = cq_http_body(x, &len);
    if (!need_type(&c, "application/x-www-form-urlencoded")) return;
    if (!cq_http_header(x, "X-Slack-Signature") && is_ssl_check(body, len)) {
        count_outcome(&c, "ssl_check");
        respond_text(x, c.id, 200, "text/plain", "");
        return;
    }
    if (!slack_verified(&c, body, len)) return;
    cq_slack_command_parse(body, len, c.in->cfg->limits.max_text, retry_num(&c), &o);
    finish_chat(&c, &o);
}

static void on_slack_event(struct cq_http_exchange *x, void *arg) {
    struct ctx c;
    struct cq_in_outcome o;
    size_t len;
    if (!ctx_init(&c, arg, x, R_SLACK_EV)) return;
    const char *body = cq_http_body(x, &len);
    if (!need_type(&c, "application/json")) return;
    if (!slack_verified(&c, body, len)) return;
    cq_slack_event_parse(body, len, c.in->cfg->limits.max_text, retry_num(&c), &o);
    finish_chat(&c, &o);
}

static void on_feishu_event(struct cq_http_exchange *x, void *arg) {
    struct ctx c;
    struct cq_in_outcome o;
    size_t len;
    if (!ctx_init(&c, arg, x, R_FEISHU)) return;
    const char *body = cq_http_body(x, &len);
    if (!need_type(&c, "application/json")) return;
    const struct cq_config *cfg = c.in->cfg;
    struct cq_feishu_conf fc = {
        .verification_token = cfg->feishu.verification_token.value,
        .encrypt_key = cfg->feishu.encrypt_key.value,
        .bot_open_id = cfg->feishu.bot_open_id,
        .max_text = cfg->limits.max_text,
    };
    struct cq_feishu_headers h = {
        .ts = cq_http_header(x, "X-Lark-Request-Timestamp"),
        .nonce = cq_http_header(x, "X-Lark-Request-Nonce"),
        .sig = cq_http_header(x, "X-Lark-Signature"),
    };
    cq_feishu_event_parse(&fc, &h, body, len, &o);
    finish_chat(&c, &o);
}

static void on_gitlab(struct cq_http_exchange *x, void *arg) {
    struct ctx c;
    struct cq_in_outcome o;
    size_t len;
    char key[64];
    if (!ctx_init(&c, arg, x, R_GITLAB)) return;
    const char *body = cq_http_body(x, &len);
    enum cq_verify v = cq_verify_token(c.in->cfg->gitlab.webhook_token.value,
                                       cq_http_header(x, "X-Gitlab-Token"));
    if (v != CQ_VERIFY_OK) {
        char detail[96];
        snprintf(detail, sizeof(detail), "X-Gitlab-Token: %s", cq_verify_text(v));
        reject(&c, 401, cq_verify_label(v), detail);
        return;
    }
    if (!need_type(&c, "application/json")) return;
    const char *ev = cq_http_header(x, "X-Gitlab-Event");
    if (!ev || strcmp(ev, "Pipeline Hook") != 0) {
        count_outcome(&c, "ignored");
        respond_text(x, c.id, 200, "application/json", "{}");
        return;
    }
    if (cq_gitlab_pipeline_key(body, len, key, sizeof(key), &o) != 0) {
        reject(&c, 400, o.reason, o.detail);
        return;
    }
    produce(&c, c.in->cfg->kafka.topic_pipeline_events, key, body, len, "pipeline hook");
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static bool is_ready(void *arg) {
    struct cq_ingress *in = arg;
    return cq_producer_ready(in->prod);
}

static void on_closed(uv_handle_t *h) { (void)h; }

/* Loop thread, every 10 ms after SIGTERM: once nothing waits, stop HTTP, flush Kafka. */
static void on_drain(uv_timer_t *t) {
    struct cq_ingress *in = t->data;
    pthread_mutex_lock(&in->mu);
    int waiting = in->waiting;
    pthread_mutex_unlock(&in->mu);
    int inflight = cq_http_server_inflight(in->http);
    if ((waiting > 0 || inflight > 0) && cq_now_ms() < in->drain_deadline) return;
    uv_timer_stop(t);
    cq_http_server_free(in->http, 1000);
    in->http = NULL;
    cq_producer_free(in->prod); /* flushes; reports of guard-answered jobs free them */
    in->prod = NULL;
    uv_close((uv_handle_t *)&in->guard, on_closed);
    uv_close((uv_handle_t *)&in->drain, on_closed);
    cq_info(NULL, "drained: HTTP stopped, producer flushed");
}

static void on_shutdown(void *arg) {
    struct cq_ingress *in = arg;
    cq_info(NULL, "shutting down: no new connections, answering %d waiting request(s)",
            in->waiting);
    cq_http_server_quiesce(in->http);
    in->drain_deadline = cq_now_ms() + (unsigned long long)in->budget_ms + 3000;
    uv_timer_start(&in->drain, on_drain, 0, 10);
}

struct cq_ingress *cq_ingress_new(const struct cq_config *cfg, struct cq_loop *loop,
                                  int port_override, struct cq_err *err) {
    struct cq_ingress *in = calloc(1, sizeof *in);
    struct cq_http_route routes[R_COUNT];
    size_t n = 0;
    if (!in) {
        cq_err_set(err, CQ_ENOMEM, "ingress: out of memory");
        return NULL;
    }
    in->cfg = cfg;
    in->loop = loop;
    in->budget_ms = cfg->kafka.produce_timeout_ms;
    pthread_mutex_init(&in->mu, NULL);
    for (int r = 0; r < R_COUNT; r++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"queued\"", ROUTE_LABEL[r]);
        in->queued[r] = cq_counter_get(M_REQUESTS, H_REQUESTS, labels);
        snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"not_queued\"", ROUTE_LABEL[r]);
        in->not_queued[r] = cq_counter_get(M_REQUESTS, H_REQUESTS, labels);
    }
    in->inflight = cq_gauge_get("chatops_ingress_inflight",
                                "Requests waiting for Kafka's delivery report.", NULL);
    in->produce_seconds = cq_histogram_get("chatops_ingress_produce_seconds",
                                           "Time from send to delivery report.", NULL, NULL, 0);
    uv_timer_init(cq_loop_uv(loop), &in->guard);
    uv_timer_init(cq_loop_uv(loop), &in->drain);
    in->guard.data = in->drain.data = in;

    in->prod = cq_producer_new(cfg->kafka.brokers, in->budget_ms, loop, NULL, err);
    if (!in->prod) goto fail;

    if (cfg->slack.enabled && cfg->slack.signing_secret.value) {
        routes[n++] = (struct cq_http_route){"POST", cfg->ingress.slack_commands_path,
                                             on_slack_command, in};
        routes[n++] = (struct cq_http_route){"POST", cfg->ingress.slack_events_path,
                                             on_slack_event, in};
    }
    if (cfg->feishu.enabled && cfg->feishu.verification_token.value)
        routes[n++] = (struct cq_http_route){"POST", cfg->ingress.feishu_events_path,
                                             on_feishu_event, in};
    if (cfg->gitlab.webhook_token.value)
        routes[n++] = (struct cq_http_route){"POST", cfg->ingress.gitlab_webhook_path, on_gitlab,
                                             in};
    struct cq_http_options opt = {
        .listen = cfg->ingress.listen,
        .port = port_override >= 0 ? port_override : cfg->ingress.port,
        .threads = cfg->ingress.threads,
        .max_body = cfg->limits.max_body,
        .ready = is_ready,
        .ready_arg = in,
    };
    in->http = cq_http_server_new(&opt, routes, n, err);
    if (!in->http) goto fail;
    if (cq_loop_on_shutdown(loop, on_shutdown, in) != CQ_OK) {
        cq_err_set(err, CQ_ENOMEM, "ingress: out of memory");
        goto fail;
    }
    uv_timer_start(&in->guard, on_guard, 20, 20);
    return in;
fail:
    cq_http_server_free(in->http, 0);
    cq_producer_free(in->prod);
    uv_close((uv_handle_t *)&in->guard, on_closed);
    uv_close((uv_handle_t *)&in->drain, on_closed);
    /* the timers' memory is in *in: let the loop run their close callbacks first */
    uv_run(cq_loop_uv(loop), UV_RUN_NOWAIT);
    pthread_mutex_destroy(&in->mu);
    free(in);
    return NULL;
}

int cq_ingress_port(const struct cq_ingress *in) { return in ? cq_http_server_port(in->http) : 0; }

void cq_ingress_free(struct cq_ingress *in) {
    if (!in) return;
    /* normally the drain already stopped both; this covers a loop that ended otherwise */
    cq_http_server_free(in->http, 0);
    cq_producer_free(in->prod);
    if (!uv_is_closing((uv_handle_t *)&in->guard)) {
        uv_close((uv_handle_t *)&in->guard, on_closed);
        uv_close((uv_handle_t *)&in->drain, on_closed);
        uv_run(cq_loop_uv(in->loop), UV_RUN_NOWAIT);
    }
    pthread_mutex_destroy(&in->mu);
    free(in);
}
