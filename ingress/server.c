/* server: HTTP in (libmicrohttpd, epoll), Kafka out.
 * Two modes. ingress.threads = 1 (default): MHD has no thread of its own; the loop thread
 * drives it (a uv_poll on MHD's epoll fd, a uv_timer for its connection timeouts), so a
 * request is read, verified, produced, reported and answered on one thread with no hand-off.
 * ingress.threads > 1: a pool of MHD threads does the HTTP side and the loop thread only
 * serves the reports and the guard.
 * The MHD side reads the body (bounded), routes through the platform table (platform.h:
 * path, media type, headers, the verifier/normaliser of slack.c, feishu.c, gitlab.c, ...),
 * then suspends an accepted connection and produces its message. The delivery
 * report (loop thread) or the budget guard (a loop timer) stores the answer and resumes the
 * connection; MHD then calls the handler again, which sends the stored answer. No thread
 * waits per request. A connection context is freed when both MHD (request completed) and
 * Kafka (report served) let go of it: two references. The lock and atomics below are for the
 * pool mode; in single-thread mode they are simply uncontended.
 * Size (~840 lines): one connection's life (read, hand over, report, answer, resume, complete)
 * and the MHD driving it stay in one file so its two-reference and locking rules are read in one
 * place; the wording of the answers is in answers.c and platforms.c, verification in one file
 * per platform (the table in platforms.c). */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config_reload.h"
#include "crypto.h"
#include "http.h"
#include "ingress.h"
#include "log.h"
#include "metrics.h"
#include "platform.h"
#include "utf8.h"

/* The guard answers a request this long after kafka.produce_timeout_ms (the budget) when no
 * report came. The producer's own timeout is a second earlier (main.c), so normally the
 * report, which knows whether the message may be in the log, answers first. */
#define GUARD_EXTRA_MS 200
#define DISCARD_FACTOR 4 /* past 4x max_body of a chunked upload, drop the connection */

/* /readyz and /metrics are on the admin listener only (ingress.admin_port): the public port
 * faces the platforms and the internet. /healthz stays public for load balancers. */
/* A route is an index into ing_routes (platform.h), or one of these two. */
#define R_HEALTH ((int)ING_MAX_ROUTES)
#define R_NONE ((int)ING_MAX_ROUTES + 1)

static const char *route_name(int route) {
    if (route >= 0 && (size_t)route < ing_n_routes) return ing_routes[route].label;
    return route == R_HEALTH ? "healthz" : "unknown";
}

enum cstate { ST_READ, ST_WAIT, ST_ANSWERED };

struct conn {
    struct ing_server *in;
    struct MHD_Connection *mc;
    atomic_int refs;
    const struct cq_config *cfg; /* referenced: the config current when the request came */
    int route;                   /* index into ing_routes, R_HEALTH or R_NONE */
    enum cstate state;
    char *buf;
    size_t len, cap, seen;
    bool too_big;
    bool resumed; /* the answer is stored and the handler must send it */
    bool handed;  /* counted in unfinished */
    /* set on the MHD thread before the hand-over */
    const char *topic;
    char *key, *value;
    size_t vlen;
    char req_id[CQ_UUID_LEN + 1];
    char *cmdline; /* Slack command: "deploy web production" for the acknowledgement */
    /* loop thread only, until the answer is published by MHD_resume_connection */
    uint64_t sent_ms, deadline_ms;
    int status;
    const char *ctype;
    char *answer;
    struct conn *next;          /* a batch of expired requests (guard) */
    struct conn *wprev, *wnext; /* waiting list (loop), in deadline order */
};

struct ing_server {
    const struct cq_config *cfg; /* referenced; written under cfg_mu (loop thread) */
    pthread_mutex_t cfg_mu;      /* a request takes its reference under it */
    struct cq_loop *loop;
    struct cq_producer *producer;
    struct MHD_Daemon *d;
    int port;
    struct cq_http_server *admin; /* /healthz /readyz /metrics on ingress.admin_port */
    uv_timer_t guard, drain_timer;
    /* single-thread mode only (external): MHD driven from the loop */
    bool external;
    bool poll_open;       /* mhd_poll initialised (it needs MHD's epoll fd) */
    uv_poll_t mhd_poll;   /* MHD's epoll fd: its listen socket and connections */
    uv_timer_t mhd_timer; /* MHD's next connection timeout */
    uv_idle_t mhd_again;  /* MHD has work pending that no fd will announce */
    bool mhd_resumed;     /* a connection was resumed since MHD last ran */
    int quiesced_fd;      /* pool mode: the listen socket, closed after MHD_stop_daemon */
    int open_handles;
    pthread_mutex_t mu;         /* the waiting list and each conn's state */
    struct conn *whead, *wtail; /* waiting for a report, oldest first */
    atomic_long inflight;       /* handed over, no answer yet */
    atomic_long unfinished;     /* handed over, answer not yet sent (MHD not completed) */
    atomic_bool closing;
    uint64_t drain_deadline;
    void (*drain_done)(void *);
    void *drain_arg;
    bool drained;
    struct cq_gauge *g_inflight;
    struct cq_histogram *h_produce;
    struct cq_counter *c_queued[ING_MAX_ROUTES], *c_failed[ING_MAX_ROUTES],
        *c_unknown[ING_MAX_ROUTES], *c_answered[ING_MAX_ROUTES];
};

static void mhd_soon(struct ing_server *in);

static void conn_unref(struct conn *c) {
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1) return;
    free(c->buf);
    free(c->key);
    free(c->value);
    free(c->cmdline);
    free(c->answer);
    cq_config_unref(c->cfg);
    free(c);
}

/* ---- responses (MHD side: its threads, or the loop thread in single-thread mode) ---- */

static enum MHD_Result send_buf(struct MHD_Connection *mc, unsigned status, const char *ctype,
                                const char *body, size_t len, enum MHD_ResponseMemoryMode mode,
                                const char *req_id, bool allow_post) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (req_id && *req_id) MHD_add_response_header(r, "X-Request-Id", req_id);
    if (allow_post) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result ret = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A refused request's metrics (by route and reason) and warn log line. */
static void count_reject(struct conn *c, unsigned status, const char *reason, const char *detail) {
    char labels[256], esc[128];
    cq_metrics_escape(reason, esc, sizeof(esc));
    snprintf(labels, sizeof(labels), "route=\"%s\",reason=\"%s\"", route_name(c->route), esc);
    cq_metric_inc("chatops_ingress_rejected_total", "Requests refused, by route and reason",
                  labels);
    snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"rejected\"", route_name(c->route));
    cq_metric_inc("chatops_ingress_requests_total", "Requests by route and outcome", labels);
    if (status == 401) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", esc);
        cq_metric_inc("chatops_ingress_verify_failures_total",
                      "Signature/token/timestamp failures, by reason", labels);
    }
    const char *kv[] = {"route",
                        route_name(c->route),
                        "status",
                        NULL,
                        "reason",
                        reason,
                        detail && *detail ? "detail" : NULL,
                        detail,
                        NULL};
    char st[8];
    snprintf(st, sizeof(st), "%u", status);
    kv[3] = st;
    cq_log_kv(CQ_LOG_WARN, c->req_id, "request rejected", kv);
}

/* A rejected request: one-line reason (public_reason instead when set), metric by reason,
 * warn log with a request id. */
static enum MHD_Result reject(struct conn *c, unsigned status, const char *reason,
                              const char *public_reason, const char *detail) {
    char line[200];
    if (cq_uuid4(c->req_id) != CQ_OK) c->req_id[0] = '\0';
    count_reject(c, status, reason, detail);
    int n = snprintf(line, sizeof(line), "%s\n", public_reason ? public_reason : reason);
    c->state = ST_ANSWERED;
    return send_buf(c->mc, status, "text/plain; charset=utf-8", line,
                    n < 0                       ? 0
                    : (size_t)n >= sizeof(line) ? sizeof(line) - 1
                                                : (size_t)n,
                    MHD_RESPMEM_MUST_COPY, c->req_id, status == 405);
}

/* ---- answering: delivery report (loop thread), guard (loop thread), send failure (MHD) ---- */

/* The waiting list is in deadline order (appended under mu with a monotonic deadline). */
static void waiting_remove(struct ing_server *in, struct conn *c) {
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else if (in->whead == c)
        in->whead = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else if (in->wtail == c)
        in->wtail = c->wprev;
    c->wprev = c->wnext = NULL;
}

/* Takes c out of the waiting state; false when someone else answered it already. */
static bool claim(struct ing_server *in, struct conn *c) {
    bool mine = false;
    pthread_mutex_lock(&in->mu);
    if (c->state == ST_WAIT) {
        waiting_remove(in, c);
        c->state = ST_ANSWERED;
        mine = true;
    }
    pthread_mutex_unlock(&in->mu);
    return mine;
}

/* Stores the answer of a claimed c and resumes the connection (MHD_resume_connection is
 * thread-safe and publishes the stored fields to the MHD thread that sends them; in
 * single-thread mode nothing wakes MHD's epoll fd, so the loop is told to run MHD).
 * why: the failure reason. */
static void answer(struct conn *c, enum ing_outcome out, const char *why) {
    struct ing_server *in = c->in;
    if (out == ING_QUEUED) {
        cq_counter_inc(in->c_queued[c->route]);
        cq_info(c->req_id, "queued on %s (%s)", c->topic, route_name(c->route));
    } else if (out == ING_UNKNOWN) {
        cq_counter_inc(in->c_unknown[c->route]);
        cq_log_kv(CQ_LOG_ERROR, c->req_id, "outcome unknown: sent, not confirmed by kafka",
                  (const char *const[]){"route", route_name(c->route), "reason", why, NULL});
    } else {
        cq_counter_inc(in->c_failed[c->route]);
        cq_log_kv(CQ_LOG_ERROR, c->req_id, "not queued by kafka",
                  (const char *const[]){"route", route_name(c->route), "reason", why, NULL});
    }
    c->answer = ing_route_answer(&ing_routes[c->route], out, c->cmdline, c->req_id, why, &c->status,
                                 &c->ctype);
    c->resumed = true;
    atomic_fetch_sub(&in->inflight, 1);
    cq_gauge_add(in->g_inflight, -1);
    MHD_resume_connection(c->mc);
    if (in->external) mhd_soon(in);
}

static void on_delivery(void *opaque, const struct cq_delivery_report *r) {
    struct conn *c = opaque;
    struct ing_server *in = c->in;
    cq_histogram_observe(in->h_produce, (double)(cq_now_ms() - c->sent_ms) / 1000.0);
    if (claim(in, c)) {
        enum ing_outcome out = r->rc == CQ_OK                     ? ING_QUEUED
                               : r->persisted == CQ_NOT_PERSISTED ? ING_NOT_RUN
                                                                  : ING_UNKNOWN;
        answer(c, out, r->errstr && *r->errstr ? r->errstr : cq_rc_str(r->rc));
    } else if (r->rc == CQ_OK) {
        /* answered "outcome unknown" by the guard, and it landed: the worker will run it.
         * Logged so an operator can match the two. */
        cq_warn(c->req_id, "confirmed by kafka after the budget answer");
    }
    conn_unref(c);
}

/* Answers every waiting request whose deadline passed (all of them when all is set). */
static void expire(struct ing_server *in, bool all, const char *why) {
    uint64_t now = cq_now_ms();
    struct conn *done = NULL, **tail = &done;
    pthread_mutex_lock(&in->mu);
    while (in->whead && (all || in->whead->deadline_ms <= now)) {
        struct conn *c = in->whead;
        waiting_remove(in, c);
        c->state = ST_ANSWERED;
        *tail = c;
        tail = &c->next;
    }
    pthread_mutex_unlock(&in->mu);
    while (done) {
        struct conn *next = done->next;
        done->next = NULL;
        /* handed to librdkafka and not reported: it may be on the wire or in the log */
        answer(done, ING_UNKNOWN, why);
        done = next;
    }
}

static void on_guard(uv_timer_t *t) {
    struct ing_server *in = t->data;
    char why[64];
    snprintf(why, sizeof(why), "no confirmation within %d ms", in->cfg->kafka.produce_timeout_ms);
    expire(in, false, why);
}

/* ---- MHD side: routing and checks ---- */

static int route_of(const struct cq_config *cfg, const char *url) {
    int r = ing_route_find(cfg, url);
    if (r >= 0) return r;
    if (strcmp(url, "/healthz") == 0) return R_HEALTH;
    return R_NONE;
}

static bool media_is(const char *ct, const char *want) {
    size_t n = strlen(want);
    if (!ct || strncasecmp(ct, want, n) != 0) return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static const char *hdr(struct MHD_Connection *mc, const char *name) {
    return MHD_lookup_connection_value(mc, MHD_HEADER_KIND, name);
}

/* The public /healthz: the process answers (a load balancer's liveness probe). */
static enum MHD_Result health(struct conn *c, const char *method) {
    c->state = ST_ANSWERED;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_buf(c->mc, 405, "text/plain", "method not allowed\n", 19,
                        MHD_RESPMEM_PERSISTENT, NULL, false);
    return send_buf(c->mc, 200, "text/plain", CQ_HTTP_HEALTHZ_BODY, strlen(CQ_HTTP_HEALTHZ_BODY),
                    MHD_RESPMEM_PERSISTENT, NULL, false);
}

/* Admin /readyz (an MHD thread of the admin server; atomics only). */
static bool admin_ready(void *arg) {
    struct ing_server *in = arg;
    return !atomic_load(&in->closing) && cq_producer_ready(in->producer);
}

static const char *admin_not_ready(void *arg) {
    struct ing_server *in = arg;
    if (atomic_load(&in->closing)) return "shutting down";
    const char *fatal = cq_producer_fatal(in->producer);
    if (fatal) return fatal; /* "kafka producer fatal error: ..." (set once) */
    return "no kafka broker answers";
}

/* The first call for a request: headers only. Returns MHD_YES to read on, or queues a reply. */
static enum MHD_Result on_headers(struct conn *c, const char *method) {
    const struct cq_config *cfg = c->cfg;
    if (c->route == R_NONE) {
        c->state = ST_ANSWERED;
        return send_buf(c->mc, 404, "text/plain", "not found\n", 10, MHD_RESPMEM_PERSISTENT, NULL,
                        false);
    }
    if (c->route >= R_HEALTH) return MHD_YES; /* answered at the end (bodies swallowed) */
    if (strcmp(method, "POST") != 0) return reject(c, 405, "method not allowed", NULL, method);
    const char *ct = hdr(c->mc, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *media = ing_routes[c->route].media;
    if (!media_is(ct, media))
        return reject(c, 415,
                      strcmp(media, "application/json") == 0
                          ? "content type must be application/json"
                          : "content type must be application/x-www-form-urlencoded",
                      NULL, ct ? ct : "(none)");
    const char *cl = hdr(c->mc, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && n > cfg->limits.max_body)
            return reject(c, 413, "body too large", NULL, cl);
    }
    return MHD_YES;
}

static enum MHD_Result on_body(struct conn *c, const char *data, size_t n) {
    size_t max = c->cfg->limits.max_body;
    c->seen += n;
    if (c->too_big || c->len + n > max) {
        c->too_big = true;
        return c->seen > max * DISCARD_FACTOR ? MHD_NO : MHD_YES;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + n + 1)
            cap *= 2;
        if (cap > max + 1) cap = max + 1;
        char *nb = realloc(c->buf, cap);
        if (!nb) return MHD_NO;
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    c->buf[c->len] = '\0';
    return MHD_YES;
}

/* Suspends c, produces its message (cq_producer_send is thread-safe) and leaves it waiting
 * for the delivery report, which runs on the loop thread. Takes ownership of key/value. */
static enum MHD_Result hand_over(struct conn *c, const char *topic, char *key, char *value,
                                 size_t vlen) {
    struct ing_server *in = c->in;
    struct cq_err err = {0};
    const char *headers[] = {"req_id", c->req_id, NULL};
    c->topic = topic;
    c->key = key;
    c->value = value;
    c->vlen = vlen;
    /* inflight first, then closing: the drain sets closing, then reads inflight, so one of
     * the two sides always sees the other */
    atomic_fetch_add(&in->inflight, 1);
    if (atomic_load(&in->closing)) {
        atomic_fetch_sub(&in->inflight, 1);
        return reject(c, 503, "shutting down", NULL, NULL);
    }
    cq_gauge_add(in->g_inflight, 1);
    atomic_fetch_add(&in->unfinished, 1);
    c->handed = true;
    atomic_fetch_add(&c->refs, 1); /* the Kafka side's reference */
    /* suspended before the send: the report may come back at once on the loop thread */
    MHD_suspend_connection(c->mc);
    pthread_mutex_lock(&in->mu);
    c->sent_ms = cq_now_ms();
    c->deadline_ms = c->sent_ms + (uint64_t)in->cfg->kafka.produce_timeout_ms + GUARD_EXTRA_MS;
    c->state = ST_WAIT;
    c->wprev = in->wtail;
    if (in->wtail)
        in->wtail->wnext = c;
    else
        in->whead = c;
    in->wtail = c;
    pthread_mutex_unlock(&in->mu);
    if (cq_producer_send_r(in->producer, c->topic, c->key, strlen(c->key), c->value, c->vlen,
                           c->req_id[0] ? headers : NULL, on_delivery, c, &err) != CQ_OK) {
        /* refused before it entered librdkafka's queue: certainly not in the log */
        if (claim(in, c)) answer(c, ING_NOT_RUN, err.msg);
        conn_unref(c); /* no report will come */
    }
    return MHD_YES;
}

/* "platform:tenant:channel", pieces copied by length (snprintf parsed its format per request) */
static char *join_key(const struct cq_request *r) {
    const char *part[3] = {r->platform, r->tenant ? r->tenant : "",
                           r->channel_id ? r->channel_id : ""};
    size_t len[3], n = 0;
    for (int i = 0; i < 3; i++)
        n += len[i] = strlen(part[i]);
    char *k = malloc(n + 3), *w = k;
    for (int i = 0; k && i < 3; i++) {
        memcpy(w, part[i], len[i]);
        w += len[i];
        *w++ = i < 2 ? ':' : '\0';
    }
    return k;
}

/* A GitLab event (gitlab_events.c): a Pipeline Hook's raw copy goes to the tracking topic
 * first (fire and forget: a lost copy only means the tracker polls), then the event record is
 * handed over and answered after its delivery report. */
static enum MHD_Result event_hand_over(struct conn *c, const struct cq_config *cfg,
                                       struct ing_verdict *o, const char *body) {
    struct cq_err err = {0};
    char *key = strdup(o->key);
    if (!key || cq_uuid4(c->req_id) != CQ_OK) {
        free(key);
        return reject(c, 500, "out of memory", NULL, NULL);
    }
    if (o->track_key[0] &&
        cq_producer_send(c->in->producer, cfg->kafka.topic_pipeline_events, o->track_key,
                         strlen(o->track_key), body, c->len, NULL, NULL, NULL, &err) != CQ_OK)
        cq_warn(c->req_id, "pipeline hook not copied for tracking: %s", err.msg);
    char *value = o->body;
    o->body = NULL;
    return hand_over(c, cfg->kafka.topic_events, key, value, strlen(value));
}

static enum MHD_Result dispatch(struct conn *c) {
    const struct cq_config *cfg = c->cfg;
    struct ing_verdict o;
    struct MHD_Connection *mc = c->mc;
    const struct ing_route *rt = &ing_routes[c->route];
    struct ing_headers h = {0};
    for (const struct ing_header_slot *hs = rt->headers; hs->name; hs++) /* only its own */
        *(const char **)((char *)&h + hs->off) = hdr(mc, hs->name);
    const char *body = c->buf ? c->buf : "";
    time_t now = time(NULL);
    enum MHD_Result ret;
    if (c->too_big) return reject(c, 413, "body too large", NULL, NULL);
    rt->handle(cfg, &h, body, c->len, now, &o);
    switch (o.kind) {
    case ING_REJECT:
        ret = reject(c, (unsigned)o.status, o.reason, o.public_reason, o.detail);
        break;
    case ING_REPLY: {
        c->state = ST_ANSWERED;
        if (o.reason)
            count_reject(c, (unsigned)o.status, o.reason, o.detail);
        else
            cq_counter_inc(c->in->c_answered[c->route]);
        ret = send_buf(mc, (unsigned)o.status, o.content_type, o.body, strlen(o.body),
                       MHD_RESPMEM_MUST_COPY, NULL, false);
        break;
    }
    case ING_REQUEST: {
        char *key = join_key(&o.req);
        size_t cmdl = strlen(o.req.command), tl = strlen(o.req.text);
        c->cmdline = malloc(cmdl + tl + 2);
        if (!key || !c->cmdline) {
            free(key);
            ret = reject(c, 500, "out of memory", NULL, NULL);
            break;
        }
        /* "command text" (or "command"), and the id: copied by length, no snprintf */
        memcpy(c->cmdline, o.req.command, cmdl);
        if (tl) c->cmdline[cmdl++] = ' ';
        memcpy(c->cmdline + cmdl, o.req.text, tl + 1);
        size_t il = strnlen(o.req.id, sizeof(c->req_id) - 1);
        memcpy(c->req_id, o.req.id, il);
        c->req_id[il] = '\0';
        char *value = o.body;
        o.body = NULL;
        ret = hand_over(c, cfg->kafka.topic_requests, key, value, strlen(value));
        break;
    }
    case ING_EVENT:
        ret = event_hand_over(c, cfg, &o, body);
        break;
    default: { /* ING_PIPELINE: the raw hook body */
        char *key = strdup(o.key), *value = malloc(c->len + 1);
        if (!key || !value || cq_uuid4(c->req_id) != CQ_OK) {
            free(key);
            free(value);
            ret = reject(c, 500, "out of memory", NULL, NULL);
            break;
        }
        memcpy(value, body, c->len);
        value[c->len] = '\0';
        ret = hand_over(c, cfg->kafka.topic_pipeline_events, key, value, c->len);
        break;
    }
    }
    ing_verdict_clear(&o);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **state) {
    struct ing_server *in = cls;
    struct conn *c = *state;
    (void)version;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c) return MHD_NO;
        c->in = in;
        c->mc = mc;
        atomic_init(&c->refs, 1);
        pthread_mutex_lock(&in->cfg_mu); /* a reload may swap in->cfg meanwhile */
        c->cfg = cq_config_ref(in->cfg);
        pthread_mutex_unlock(&in->cfg_mu);
        c->route = route_of(c->cfg, url);
        *state = c;
        return on_headers(c, method);
    }
    if (c->resumed) { /* resumed with the stored answer */
        char *a = c->answer;
        c->answer = NULL;
        c->resumed = false;
        if (!a) return MHD_NO; /* out of memory building it: close the connection */
        return send_buf(mc, (unsigned)c->status, c->ctype, a, strlen(a), MHD_RESPMEM_MUST_FREE,
                        c->req_id, false);
    }
    if (c->state != ST_READ) { /* answered already: swallow what is left of the body */
        *upload_len = 0;
        return MHD_YES;
    }
    if (*upload_len) {
        enum MHD_Result r = c->route >= R_HEALTH ? MHD_YES : on_body(c, upload, *upload_len);
        *upload_len = 0;
        return r;
    }
    if (c->route >= R_HEALTH) return health(c, method);
    return dispatch(c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **state,
                         enum MHD_RequestTerminationCode code) {
    struct ing_server *in = cls;
    struct conn *c = *state;
    (void)mc;
    (void)code;
    if (c && c->handed) atomic_fetch_sub(&in->unfinished, 1);
    conn_unref(c);
    *state = NULL;
}

/* ---- single-thread mode: MHD driven by the loop ---- */

static void on_mhd_timer(uv_timer_t *t);
static void on_mhd_again(uv_idle_t *h);

/* Runs MHD once (accept, read, call the handlers, resume, write, expire idle connections)
 * and arms what wakes it next. Its epoll fd is watched all along (new connections and their
 * data); MHD_get_timeout adds the earliest connection timeout, or 0 when MHD holds work that
 * no fd will announce (its epoll is edge-triggered: a connection with data left stays on
 * MHD's own ready list). A resumed connection is announced by nothing: without an MHD thread,
 * libmicrohttpd (0.9.75) has no ITC in its epoll set and MHD_resume_connection writes to no
 * fd (checked with strace), so answer() calls mhd_soon. */
static void mhd_run(struct ing_server *in) {
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (!in->d) return;
    in->mhd_resumed = false;
    MHD_run(in->d);
    /* read after MHD_run: a handler may have resumed one (a refused produce is answered
     * at once), and MHD_get_timeout does not count resumed connections */
    bool has_timeout = MHD_get_timeout(in->d, &ms) == MHD_YES;
    if (in->mhd_resumed || (has_timeout && ms == 0)) {
        /* an idle handle, not a 0 ms timer: it runs once per loop iteration and keeps the
         * loop from blocking meanwhile, where a timer re-armed to 0 from its own callback
         * runs again at once (libuv < 1.45) and would starve the loop */
        uv_timer_stop(&in->mhd_timer);
        uv_idle_start(&in->mhd_again, on_mhd_again);
    } else {
        uv_idle_stop(&in->mhd_again);
        if (has_timeout)
            uv_timer_start(&in->mhd_timer, on_mhd_timer, (uint64_t)ms, 0);
        else
            uv_timer_stop(&in->mhd_timer);
    }
}

/* MHD must run soon: a connection was resumed with its answer. Runs MHD once per loop
 * iteration however many reports came in it (the idle phase comes before the next poll). */
static void mhd_soon(struct ing_server *in) {
    in->mhd_resumed = true;
    uv_idle_start(&in->mhd_again, on_mhd_again);
}

static void on_mhd_poll(uv_poll_t *p, int status, int events) {
    (void)status; /* an error on the epoll fd itself: MHD_run finds out what it is */
    (void)events;
    mhd_run(p->data);
}

static void on_mhd_timer(uv_timer_t *t) {
    mhd_run(t->data);
}

static void on_mhd_again(uv_idle_t *h) {
    mhd_run(h->data);
}

/* Starts watching MHD's epoll fd (single-thread mode). */
static enum cq_rc mhd_watch(struct ing_server *in, uv_loop_t *uv, struct cq_err *err) {
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(in->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!ep || ep->epoll_fd < 0)
        return cq_err_set(err, CQ_EIO, "ingress: the HTTP server has no epoll fd");
    int rc = uv_poll_init(uv, &in->mhd_poll, ep->epoll_fd);
    if (rc == 0) {
        in->poll_open = true;
        in->open_handles++;
        in->mhd_poll.data = in;
        rc = uv_poll_start(&in->mhd_poll, UV_READABLE, on_mhd_poll);
    }
    if (rc != 0)
        return cq_err_set(err, CQ_EIO, "ingress: cannot watch the HTTP server: %s",
                          uv_strerror(rc));
    mhd_run(in); /* arms the timer like every later run does */
    return CQ_OK;
}

/* ---- lifecycle (loop thread) ---- */

struct ing_server *ing_server_new(const struct cq_config *cfg, int port, int admin_port,
                                  struct cq_loop *loop, struct cq_producer *producer,
                                  struct cq_err *err) {
    struct ing_server *in = calloc(1, sizeof(*in));
    struct sockaddr_in sa = {0};
    char labels[96];
    if (!in) {
        cq_err_set(err, CQ_ENOMEM, "ingress: out of memory");
        return NULL;
    }
    in->cfg = cq_config_ref(cfg);
    pthread_mutex_init(&in->cfg_mu, NULL);
    in->loop = loop;
    in->producer = producer;
    atomic_init(&in->inflight, 0);
    atomic_init(&in->unfinished, 0);
    atomic_init(&in->closing, false);
    in->quiesced_fd = -1;
    pthread_mutex_init(&in->mu, NULL);
    in->g_inflight = cq_gauge_get("chatops_ingress_inflight",
                                  "Requests waiting for their Kafka delivery report", NULL);
    in->h_produce = cq_histogram_get("chatops_ingress_produce_seconds",
                                     "Time from produce to delivery report", NULL, NULL, 0);
    for (int r = 0; r < (int)ing_n_routes; r++) {
        snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"queued\"", route_name(r));
        in->c_queued[r] = cq_counter_get("chatops_ingress_requests_total",
                                         "Requests by route and outcome", labels);
        snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"failed\"", route_name(r));
        in->c_failed[r] = cq_counter_get("chatops_ingress_requests_total",
                                         "Requests by route and outcome", labels);
        snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"unknown\"", route_name(r));
        in->c_unknown[r] = cq_counter_get("chatops_ingress_requests_total",
                                          "Requests by route and outcome", labels);
        snprintf(labels, sizeof(labels), "route=\"%s\",outcome=\"answered\"", route_name(r));
        in->c_answered[r] = cq_counter_get("chatops_ingress_requests_total",
                                           "Requests by route and outcome", labels);
    }
    uv_loop_t *uv = cq_loop_uv(loop);
    uv_timer_init(uv, &in->guard);
    uv_timer_init(uv, &in->drain_timer);
    uv_timer_init(uv, &in->mhd_timer);
    uv_idle_init(uv, &in->mhd_again);
    in->guard.data = in->drain_timer.data = in->mhd_timer.data = in->mhd_again.data = in;
    in->open_handles = 4;
    /* the guard looks at the oldest waiting request every 50 ms (one timer, no per-request
     * handle); answers come at most 50 ms after budget + GUARD_EXTRA_MS */
    uv_timer_start(&in->guard, on_guard, 50, 50);

    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, cfg->ingress.listen ? cfg->ingress.listen : "0.0.0.0", &sa.sin_addr) !=
        1) {
        cq_err_set(err, CQ_ECONFIG, "ingress: bad listen address '%s'", cfg->ingress.listen);
        goto fail;
    }
    /* one thread: no MHD thread at all, the loop runs MHD (no hand-off between threads, no
     * ITC wake-up of another thread per answer); more: MHD's own pool */
    in->external = cfg->ingress.threads <= 1;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     (in->external ? 0u : (unsigned)MHD_USE_INTERNAL_POLLING_THREAD);
    unsigned threads = in->external ? 0 : (unsigned)cfg->ingress.threads;
    /* connection_memory holds one request's headers and read buffer (bodies are streamed
     * to on_body): MHD zeroes it for every request, so the 32 KiB default cost time */
    in->d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, in, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->ingress.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->ingress.idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->ingress.connection_memory,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, in,
        threads ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, MHD_OPTION_END);
    if (!in->d) {
        cq_err_set(err, CQ_EIO, "ingress: cannot listen on %s:%d", cfg->ingress.listen, port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(in->d, MHD_DAEMON_INFO_BIND_PORT);
    in->port = info ? info->port : port;
    if (in->external && mhd_watch(in, uv, err) != CQ_OK) goto fail;
    if (admin_port >= 0) {
        struct cq_http_options opt = {.listen = cfg->ingress.admin_listen,
                                      .port = admin_port,
                                      .threads = 1,
                                      .max_body = 4096,
                                      .max_connections = 256,
                                      .ready = admin_ready,
                                      .ready_arg = in,
                                      .ready_reason = admin_not_ready};
        if (!(in->admin = cq_http_server_new(&opt, NULL, 0, err))) goto fail;
    }
    return in;
fail:
    ing_server_free(in);
    return NULL;
}

int ing_server_port(const struct ing_server *in) {
    return in ? in->port : 0;
}

int ing_server_admin_port(const struct ing_server *in) {
    return in && in->admin ? cq_http_server_port(in->admin) : -1;
}

long ing_server_inflight(const struct ing_server *in) {
    return in ? atomic_load(&in->inflight) : 0;
}

static void on_drain_tick(uv_timer_t *t) {
    struct ing_server *in = t->data;
    if (in->drained) return;
    /* done when every handed-over request has been answered AND its answer sent */
    /* inflight is read first: a request counts there before it can be unfinished, and leaves
     * it only after it was counted unfinished, so this order never misses one */
    long waiting = atomic_load(&in->inflight);
    long unsent = atomic_load(&in->unfinished);
    if ((waiting > 0 || unsent > 0) && cq_now_ms() < in->drain_deadline) return;
    in->drained = true;
    uv_timer_stop(t);
    if (waiting > 0 || unsent > 0)
        cq_warn(NULL, "drain budget over with %ld requests unfinished (%ld waiting on kafka)",
                unsent, waiting);
    if (in->drain_done) in->drain_done(in->drain_arg);
}

void ing_server_drain(struct ing_server *in, int max_wait_ms, void (*done)(void *arg), void *arg) {
    atomic_store(&in->closing, true);
    MHD_socket fd = MHD_quiesce_daemon(in->d);
    if (fd != MHD_INVALID_SOCKET) {
        if (in->external) {
            close(fd);
        } else {
            /* MHD's threads may still hold the number: it must not be closed (and reused by
             * another open) before MHD_stop_daemon. shutdown() refuses new connections now
             * and resets those waiting in the backlog, so clients go elsewhere at once. */
            shutdown(fd, SHUT_RDWR);
            in->quiesced_fd = fd;
        }
    }
    in->drain_deadline = cq_now_ms() + (uint64_t)(max_wait_ms > 0 ? max_wait_ms : 0);
    in->drain_done = done;
    in->drain_arg = arg;
    cq_info(NULL, "draining: %ld requests waiting on kafka", (long)atomic_load(&in->inflight));
    uv_timer_start(&in->drain_timer, on_drain_tick, 0, 20);
}

static void on_closed(uv_handle_t *h) {
    struct ing_server *in = h->data;
    if (--in->open_handles == 0) {
        pthread_mutex_destroy(&in->mu);
        pthread_mutex_destroy(&in->cfg_mu);
        cq_config_unref(in->cfg);
        free(in);
    }
}

void ing_server_set_config(struct ing_server *in, const struct cq_config *cfg) {
    const struct cq_config *old = in->cfg;
    pthread_mutex_lock(&in->cfg_mu);
    in->cfg = cq_config_ref(cfg);
    pthread_mutex_unlock(&in->cfg_mu);
    cq_config_unref(old); /* requests in flight hold their own reference */
}

void ing_server_free(struct ing_server *in) {
    if (!in) return;
    atomic_store(&in->closing, true);
    cq_http_server_free(in->admin, 0); /* built-ins answer synchronously: nothing is owed */
    in->admin = NULL;
    if (in->d) {
        /* everything suspended must be resumed before MHD may stop; the producer is gone
         * (its purge answered what it held), so this is only a safety net */
        expire(in, true, "shutting down");
        if (in->external) {
            /* no thread runs MHD meanwhile: give the answers stored by the producer's last
             * reports and by expire a few rounds to go out before the connections close */
            MHD_UNSIGNED_LONG_LONG ms = 0;
            for (int i = 0; i < 8; i++) {
                MHD_run(in->d);
                if (MHD_get_timeout(in->d, &ms) != MHD_YES || ms != 0) break;
            }
        }
        /* libuv must stop watching the epoll fd before MHD closes it */
        if (in->poll_open) uv_close((uv_handle_t *)&in->mhd_poll, on_closed);
        in->poll_open = false;
        MHD_stop_daemon(in->d);
        in->d = NULL;
        if (in->quiesced_fd >= 0) close(in->quiesced_fd);
        in->quiesced_fd = -1;
    }
    uv_close((uv_handle_t *)&in->guard, on_closed);
    uv_close((uv_handle_t *)&in->drain_timer, on_closed);
    uv_close((uv_handle_t *)&in->mhd_timer, on_closed);
    uv_close((uv_handle_t *)&in->mhd_again, on_closed);
}
