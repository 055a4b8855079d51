/* redis: hiredis 0.14 async on the libuv loop (see redis.h). hiredis owns the
 * privdata of each command until it calls back (reply or NULL on teardown), so a
 * command is a heap record that outlives its own timeout: the user's callback
 * fires once (reply, timeout, lost connection or shutdown) and the record is
 * freed when hiredis lets go of it. The connect handshake and Sentinel discovery are in
 * redis_sentinel.c (redis_int.h). */
#include "redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/async.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "redis_int.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define NTIMERS 4 /* sweep, connect, reconnect, defer */

/* One accepted command. Lives on r->pending (in hiredis, waiting) or r->deferred (to
 * be failed on the next loop turn); once done it is off both lists and, if hiredis
 * still holds it, freed when hiredis calls back. */
struct pending {
    struct pending *prev, *next;
    struct cq_redis *r;
    cq_redis_cb cb;
    void *opaque;
    uint64_t deadline;
    bool done;
    bool in_hiredis;
};

static void on_sweep(uv_timer_t *t);
static void on_reconnect(uv_timer_t *t);

/* ---- list helpers ---- */

static void list_push(struct pending **head, struct pending **tail, struct pending *p) {
    p->next = NULL;
    p->prev = *tail;
    if (*tail)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

static void list_remove(struct pending **head, struct pending **tail, struct pending *p) {
    if (p->prev)
        p->prev->next = p->next;
    else
        *head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        *tail = p->prev;
    p->prev = p->next = NULL;
}

/* Marks p done, takes it off the pending list and calls the user's callback. The
 * record itself is freed by the caller or, if hiredis holds it, by on_reply. */
static void complete(struct cq_redis *r, struct pending *p, const redisReply *reply,
                     const struct cq_err *err) {
    p->done = true;
    list_remove(&r->pending_head, &r->pending_tail, p);
    p->cb(p->opaque, reply, err);
}

/* ---- timers ---- */

static void arm_sweep(struct cq_redis *r) {
    uint64_t now = uv_now(r->uv), next = UINT64_MAX;
    if (r->closing) return;
    if (r->pending_head) next = r->pending_head->deadline;
    if (r->ac && r->abandoned > 0 && r->last_progress + (uint64_t)r->stall_ms < next)
        next = r->last_progress + (uint64_t)r->stall_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&r->sweep);
        return;
    }
    uv_timer_start(&r->sweep, on_sweep, next > now ? next - now : 0, 0);
}

static void schedule_reconnect(struct cq_redis *r) {
    if (r->closing) return;
    /* Every failed or lost connection ends here: in Sentinel mode the next attempt asks
     * again (the next sentinel if this one failed), so a failover is followed. */
    if (r->nsent > 0) cq_redis_sentinel_next(r);
    uv_timer_start(&r->reconnect, on_reconnect, (uint64_t)r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Drops the live connection from our side (timeout, failed AUTH, stall). hiredis
 * calls the pending commands back with NULL replies inside redisAsyncFree (or right
 * after the current hiredis callback returns); they then fail with CQ_EREDIS. */
void cq_redis_drop_conn(struct cq_redis *r, const char *why) {
    redisAsyncContext *ac = r->ac;
    bool was_ready = r->state == ST_READY;
    r->ac = NULL;
    r->state = ST_DOWN;
    r->abandoned = 0;
    uv_timer_stop(&r->conn_timer);
    if (!ac) return;
    if (was_ready)
        cq_warn(NULL, "redis %s:%d: %s; reconnecting", r->host, r->port, why);
    else
        cq_debug(NULL, "redis %s:%d: %s", r->host, r->port, why);
    ac->data = NULL; /* callbacks of this context no longer touch the connection state */
    redisAsyncFree(ac);
    schedule_reconnect(r);
}

static void on_sweep(uv_timer_t *t) {
    struct cq_redis *r = t->data;
    uint64_t now = uv_now(r->uv);
    struct cq_err e;
    cq_err_set(&e, CQ_ETIMEOUT, "redis command timed out after %d ms", r->command_timeout_ms);
    while (!r->closing && r->pending_head && r->pending_head->deadline <= now) {
        struct pending *p = r->pending_head;
        if (p->in_hiredis) r->abandoned++;
        complete(r, p, NULL, &e);
        if (!p->in_hiredis) free(p);
    }
    if (r->closing) return;
    if (r->ac && r->abandoned > 0 && now >= r->last_progress + (uint64_t)r->stall_ms)
        cq_redis_drop_conn(r, "connection stalled (no reply while commands time out)");
    arm_sweep(r);
}

static void on_defer(uv_timer_t *t) {
    struct cq_redis *r = t->data;
    struct cq_err e;
    cq_err_set(&e, CQ_EREDIS, "redis unavailable (%s:%d not connected)", r->host, r->port);
    /* Detach the batch first: callbacks may queue more (handled on the next turn). */
    struct cq_err shut;
    cq_err_set(&shut, CQ_ESHUTDOWN, "redis client shutting down");
    struct pending *p = r->deferred_head;
    r->deferred_head = r->deferred_tail = NULL;
    while (p) {
        struct pending *next = p->next;
        /* A callback may have called cq_redis_free: the rest of this batch still gets
         * its one callback, with the shutdown error. */
        p->cb(p->opaque, NULL, r->closing ? &shut : &e);
        free(p);
        p = next;
    }
    if (r->deferred_head && !r->closing) uv_timer_start(&r->defer, on_defer, 0, 0);
}

static void on_conn_timeout(uv_timer_t *t) {
    struct cq_redis *r = t->data;
    if (!r->ac) { /* still resolving the host: try again once that lookup is over */
        r->state = ST_DOWN;
        cq_debug(NULL, "redis %s:%d: resolving timed out", r->host, r->port);
        schedule_reconnect(r);
        return;
    }
    cq_redis_drop_conn(r, "connect timed out");
}

static void on_reconnect(uv_timer_t *t) {
    struct cq_redis *r = t->data;
    if (r->closing || r->ac) return;
    if (r->resolving) /* a lookup that outlived its connect timeout: wait for it */
        schedule_reconnect(r);
    else
        cq_redis_connect_start(r);
}

/* ---- hiredis callbacks ---- */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    struct pending *p = privdata;
    struct cq_redis *r = ac->data; /* NULL when we dropped this connection ourselves */
    if (reply == NULL && r && r->ac == ac) {
        /* hiredis is tearing the connection down (read/write error or EOF): commands
         * issued from the callbacks below must not reach the dying context. */
        r->ac = NULL;
        r->state = ST_DOWN;
    }
    if (reply && r) r->last_progress = uv_now(r->uv);
    const redisReply *rr = reply;
    if (r && r->nsent > 0 && r->ac == ac && rr && rr->type == REDIS_REPLY_ERROR && rr->str &&
        strncmp(rr->str, "READONLY", 8) == 0)
        /* The master we know was demoted (a failover we saw no disconnect for): this
         * command fails with the error, the ones after it with "connection lost". */
        cq_redis_drop_conn(r, "server is now a replica (READONLY)");
    if (p->done) {
        /* Timed out or failed earlier; the late reply is dropped. */
        if (r && r->abandoned > 0) r->abandoned--;
        free(p);
        return;
    }
    struct cq_redis *owner = p->r;
    p->in_hiredis = false;
    if (reply) {
        complete(owner, p, reply, NULL);
    } else {
        struct cq_err e;
        if (owner->closing)
            cq_err_set(&e, CQ_ESHUTDOWN, "redis client shutting down");
        else
            cq_err_set(&e, CQ_EREDIS, "redis connection to %s:%d lost", owner->host, owner->port);
        complete(owner, p, NULL, &e);
    }
    free(p);
}

/* ---- persistence check ---- */

static const char *config_value(const redisReply *rep) {
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING)
        return rep->element[1]->str;
    return NULL;
}

static void on_aof_reply(void *opaque, const redisReply *rep, const struct cq_err *err) {
    struct cq_redis *r = opaque;
    const char *v = err ? NULL : config_value(rep);
    snprintf(r->aof, sizeof(r->aof), "%s", v ? v : "");
}

/* The run-once promise needs every acknowledged write on disk before the side effect:
 * appendonly yes with appendfsync always. everysec loses up to 1 s of writes on a crash,
 * no (RDB only) up to the snapshot interval. */
static void on_fsync_reply(void *opaque, const redisReply *rep, const struct cq_err *err) {
    struct cq_redis *r = opaque;
    const char *fsync = err ? NULL : config_value(rep);
    int ok;
    if (err && err->code == CQ_ESHUTDOWN) return;
    if (!r->aof[0] || !fsync) {
        ok = -1;
        cq_warn(NULL,
                "redis %s:%d: cannot read the persistence settings (CONFIG GET refused "
                "or disabled): the run-once promise needs appendonly yes and appendfsync "
                "always; check them on the server",
                r->host, r->port);
    } else if (strcmp(r->aof, "yes") != 0 || strcmp(fsync, "always") != 0) {
        ok = 0;
        cq_warn(NULL,
                "redis %s:%d: appendonly %s, appendfsync %s: a Redis crash may lose %s "
                "of run-once records; such requests are answered 'outcome unknown', "
                "never run twice (set appendonly yes, appendfsync always)",
                r->host, r->port, r->aof, fsync,
                strcmp(r->aof, "yes") != 0 ? "everything since the last snapshot" : "up to 1 s");
    } else {
        ok = 1;
        cq_info(NULL, "redis %s:%d: appendonly yes, appendfsync always", r->host, r->port);
    }
    cq_gauge_set(cq_gauge_get("chatops_redis_persistence_ok",
                              "1 when the Redis server persists every write before answering "
                              "(appendonly yes, appendfsync always), 0 when not, -1 unknown",
                              NULL),
                 ok);
}

static void persistence_check(struct cq_redis *r) {
    r->aof[0] = '\0';
    const char *a[] = {"CONFIG", "GET", "appendonly"};
    const char *f[] = {"CONFIG", "GET", "appendfsync"};
    if (cq_redis_commandargv(r, on_aof_reply, r, 3, a, NULL) == CQ_OK)
        cq_redis_commandargv(r, on_fsync_reply, r, 3, f, NULL);
}

void cq_redis_check_persistence(struct cq_redis *r) {
    if (!r) return;
    r->check_persistence = true;
    if (cq_redis_connected(r)) persistence_check(r);
}

void cq_redis_become_ready(struct cq_redis *r) {
    r->state = ST_READY;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->connects++;
    r->last_progress = uv_now(r->uv);
    uv_timer_stop(&r->conn_timer);
    cq_info(NULL, "redis %s:%d: connected", r->host, r->port);
    if (r->check_persistence) persistence_check(r);
    if (r->on_connect) r->on_connect(r->on_connect_arg);
}

static void on_connected(const redisAsyncContext *cac, int status) {
    struct cq_redis *r = cac->data;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    if (!r || r->ac != ac) return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns. */
        cq_debug(NULL, "redis %s:%d: connect failed: %s", r->host, r->port, cac->errstr);
        r->ac = NULL;
        r->state = ST_DOWN;
        uv_timer_stop(&r->conn_timer);
        schedule_reconnect(r);
        return;
    }
    cq_redis_handshake(r, ac);
}

static void on_disconnected(const redisAsyncContext *cac, int status) {
    struct cq_redis *r = cac->data;
    (void)status;
    if (!r) return; /* dropped by us: reconnect already scheduled */
    /* r->ac is already NULL when on_reply saw the teardown first. */
    if (r->ac == cac || r->ac == NULL) {
        r->ac = NULL;
        r->state = ST_DOWN;
        r->abandoned = 0;
        uv_timer_stop(&r->conn_timer);
        cq_warn(NULL, "redis %s:%d: connection lost (%s); reconnecting", r->host, r->port,
                cac->errstr[0] ? cac->errstr : "closed by server");
        schedule_reconnect(r);
    }
}

/* ---- connection ---- */

static void timer_closed(uv_handle_t *h);

static void free_all(struct cq_redis *r) {
    if (r->password) {
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
    }
    free(r->username);
    for (int i = 0; r->sent_host && i < r->nsent; i++)
        free(r->sent_host[i]);
    free(r->sent_host);
    free(r->sent_port);
    free(r->master_name);
    free(r);
}

/* The address is resolved on libuv's thread pool (uv_getaddrinfo): hiredis 0.14 would
 * call a blocking getaddrinfo on the loop for every (re)connect, stalling every request
 * for as long as DNS takes. hiredis then gets a numeric address, which it parses without
 * a lookup. The connect timeout covers the resolution too. */
static void connect_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

void cq_redis_connect_start(struct cq_redis *r) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (r->nsent > 0) cq_redis_sentinel_target(r);
    r->state = ST_CONNECTING;
    uv_timer_start(&r->conn_timer, on_conn_timeout, (uint64_t)r->connect_timeout_ms, 0);
    r->resolving = true;
    r->open_timers++;
    if (uv_getaddrinfo(r->uv, &r->gai, connect_resolved, r->host, NULL, &hints) != 0) {
        r->resolving = false;
        r->open_timers--;
        r->state = ST_DOWN;
        uv_timer_stop(&r->conn_timer);
        cq_debug(NULL, "redis %s:%d: cannot start resolving", r->host, r->port);
        schedule_reconnect(r);
    }
}

static void connect_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    struct cq_redis *r = req->data;
    char ip[64] = "";
    r->resolving = false;
    if (r->closing) {
        uv_freeaddrinfo(res);
        if (--r->open_timers == 0) free_all(r);
        return;
    }
    r->open_timers--;
    /* IPv4 first, as hiredis itself tries it ("localhost" is often ::1 first, while
     * Redis is commonly bound to 127.0.0.1 only). */
    for (struct addrinfo *a = status == 0 ? res : NULL; a && !ip[0]; a = a->ai_next)
        if (a->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof(ip));
    for (struct addrinfo *a = status == 0 ? res : NULL; a && !ip[0]; a = a->ai_next)
        if (a->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    if (r->state != ST_CONNECTING || r->ac) return; /* the connect timeout fired meanwhile */
    if (!ip[0]) {
        cq_debug(NULL, "redis %s:%d: cannot resolve: %s", r->host, r->port,
                 status ? uv_strerror(status) : "no address");
        r->state = ST_DOWN;
        uv_timer_stop(&r->conn_timer);
        schedule_reconnect(r);
        return;
    }
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
    if (!ac || ac->err) {
        cq_debug(NULL, "redis %s:%d: connect: %s", r->host, r->port,
                 ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    if (cq_redis_uv_attach(ac, r->uv) != REDIS_OK) {
        cq_warn(NULL, "redis %s:%d: cannot attach to the loop", r->host, r->port);
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    r->ac = ac;
    r->abandoned = 0;
    redisAsyncSetConnectCallback(ac, on_connected); /* also arms the first write event */
    redisAsyncSetDisconnectCallback(ac, on_disconnected);
}

/* ---- public API ---- */

static void timer_closed(uv_handle_t *h) {
    struct cq_redis *r = h->data;
    if (--r->open_timers == 0) free_all(r);
}

bool cq_redis_parse_addr(const char *s, char *host, size_t hostlen, int *port) {
    const char *colon = s ? strrchr(s, ':') : NULL;
    char *end = NULL;
    if (!colon || colon == s || (size_t)(colon - s) >= hostlen) return false;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p <= 0 || p > 65535) return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (int)p;
    return true;
}

struct cq_redis *cq_redis_new_opts(struct cq_loop *loop, const struct cq_redis_opts *o,
                                   struct cq_err *err) {
    struct cq_redis *r = NULL;
    int nsent = 0;
    while (o && o->sentinels && o->sentinels[nsent])
        nsent++;
    if (!loop || !o || o->connect_timeout_ms <= 0 || o->command_timeout_ms <= 0 || o->db < 0 ||
        (nsent == 0 && (!o->host || !o->host[0] || o->port <= 0 || o->port > 65535 ||
                        strlen(o->host) >= sizeof(r->host))) ||
        (nsent > 0 && (!o->master_name || !o->master_name[0]))) {
        cq_err_set(err, CQ_EINVAL,
                   "redis: host, port 1-65535 (or sentinels + master_name) and positive "
                   "timeouts required");
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) goto out;
    r->uv = cq_loop_uv(loop);
    if (o->password && !(r->password = strdup(o->password))) goto out;
    if (o->username && !(r->username = strdup(o->username))) goto out;
    if (nsent > 0) {
        enum cq_rc rc = cq_redis_sentinels_init(r, o->sentinels, nsent, o->master_name, err);
        if (rc == CQ_EINVAL) {
            free_all(r);
            return NULL;
        }
        if (rc != CQ_OK) goto out;
    } else {
        snprintf(r->host, sizeof(r->host), "%s", o->host);
        r->port = o->port;
    }
    r->db = o->db;
    r->connect_timeout_ms = o->connect_timeout_ms;
    r->command_timeout_ms = o->command_timeout_ms;
    r->stall_ms = o->command_timeout_ms > 400 ? 5 * o->command_timeout_ms : 2000;
    if (r->stall_ms < 2000) r->stall_ms = 2000;
    r->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_t *timers[NTIMERS] = {&r->sweep, &r->conn_timer, &r->reconnect, &r->defer};
    for (int i = 0; i < NTIMERS; i++) {
        uv_timer_init(r->uv, timers[i]); /* cannot fail on Linux */
        timers[i]->data = r;
    }
    r->gai.data = r;
    r->open_timers = NTIMERS;
    cq_redis_connect_start(r);
    return r;
out:
    if (r) free_all(r);
    cq_err_set(err, CQ_ENOMEM, "redis: out of memory");
    return NULL;
}

struct cq_redis *cq_redis_new(struct cq_loop *loop, const char *host, int port,
                              const char *password, int connect_timeout_ms, int command_timeout_ms,
                              struct cq_err *err) {
    struct cq_redis_opts o = {.host = host,
                              .port = port,
                              .password = password,
                              .connect_timeout_ms = connect_timeout_ms,
                              .command_timeout_ms = command_timeout_ms};
    return cq_redis_new_opts(loop, &o, err);
}

struct cq_redis *cq_redis_new_cfg(struct cq_loop *loop, const struct cq_config *cfg,
                                  struct cq_err *err) {
    struct cq_redis_opts o = {.host = cfg->redis.host,
                              .port = cfg->redis.port,
                              .username = cfg->redis.username,
                              .password = cfg->redis.password.value,
                              .db = cfg->redis.db,
                              .sentinels = cfg->redis.sentinels,
                              .master_name = cfg->redis.master_name,
                              .connect_timeout_ms = cfg->redis.connect_timeout_ms,
                              .command_timeout_ms = cfg->redis.command_timeout_ms};
    return cq_redis_new_opts(loop, &o, err);
}

/* Takes a new record for cb; queues it to fail on the next turn when not ready. */
static struct pending *new_pending(struct cq_redis *r, cq_redis_cb cb, void *opaque) {
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->r = r;
    p->cb = cb;
    p->opaque = opaque;
    return p;
}

static enum cq_rc submit(struct cq_redis *r, struct pending *p, int sent) {
    if (sent != REDIS_OK) {
        free(p);
        return CQ_EINVAL;
    }
    p->in_hiredis = true;
    p->deadline = uv_now(r->uv) + (uint64_t)r->command_timeout_ms;
    list_push(&r->pending_head, &r->pending_tail, p);
    if (!uv_is_active((uv_handle_t *)&r->sweep)) arm_sweep(r);
    return CQ_OK;
}

static enum cq_rc defer_unavailable(struct cq_redis *r, struct pending *p) {
    list_push(&r->deferred_head, &r->deferred_tail, p);
    if (!uv_is_active((uv_handle_t *)&r->defer)) uv_timer_start(&r->defer, on_defer, 0, 0);
    return CQ_OK;
}

enum cq_rc cq_redis_command(struct cq_redis *r, cq_redis_cb cb, void *opaque, const char *fmt,
                            ...) {
    if (!r || !cb || !fmt) return CQ_EINVAL;
    if (r->closing) return CQ_ESHUTDOWN;
    struct pending *p = new_pending(r, cb, opaque);
    if (!p) return CQ_ENOMEM;
    if (r->state != ST_READY || !r->ac) return defer_unavailable(r, p);
    va_list ap;
    va_start(ap, fmt);
    int sent = redisvAsyncCommand(r->ac, on_reply, p, fmt, ap);
    va_end(ap);
    return submit(r, p, sent);
}

enum cq_rc cq_redis_commandargv(struct cq_redis *r, cq_redis_cb cb, void *opaque, int argc,
                                const char **argv, const size_t *argvlen) {
    if (!r || !cb || argc <= 0 || !argv) return CQ_EINVAL;
    if (r->closing) return CQ_ESHUTDOWN;
    struct pending *p = new_pending(r, cb, opaque);
    if (!p) return CQ_ENOMEM;
    if (r->state != ST_READY || !r->ac) return defer_unavailable(r, p);
    return submit(r, p, redisAsyncCommandArgv(r->ac, on_reply, p, argc, argv, argvlen));
}

bool cq_redis_connected(const struct cq_redis *r) {
    return r && r->state == ST_READY && r->ac != NULL;
}

void cq_redis_on_connect(struct cq_redis *r, void (*cb)(void *), void *arg) {
    if (!r) return;
    r->on_connect = cb;
    r->on_connect_arg = arg;
}

void cq_redis_set_stall_ms(struct cq_redis *r, int stall_ms) {
    if (r && stall_ms > 0) r->stall_ms = stall_ms;
}

unsigned long cq_redis_connect_count(const struct cq_redis *r) {
    return r ? r->connects : 0;
}

void cq_redis_free(struct cq_redis *r) {
    if (!r || r->closing) return;
    r->closing = true;
    struct cq_err e;
    cq_err_set(&e, CQ_ESHUTDOWN, "redis client shutting down");
    /* Our callbacks first (records hiredis holds stay allocated until it lets go). */
    while (r->pending_head) {
        struct pending *p = r->pending_head;
        complete(r, p, NULL, &e);
        if (!p->in_hiredis) free(p);
    }
    struct pending *d = r->deferred_head;
    r->deferred_head = r->deferred_tail = NULL;
    while (d) {
        struct pending *next = d->next;
        d->cb(d->opaque, NULL, &e);
        free(d);
        d = next;
    }
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->state = ST_DOWN;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* deferred by hiredis when inside one of its callbacks */
    }
    if (r->password) {
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
        r->password = NULL;
    }
    if (r->resolving) uv_cancel((uv_req_t *)&r->gai); /* its callback drops its reference */
    uv_timer_t *timers[NTIMERS] = {&r->sweep, &r->conn_timer, &r->reconnect, &r->defer};
    for (int i = 0; i < NTIMERS; i++)
        uv_close((uv_handle_t *)timers[i], timer_closed);
}

redisContext *cq_redis_connect_sync(const char *host, int port, const char *password,
                                    int timeout_ms, struct cq_err *err) {
    if (!host || port <= 0 || port > 65535 || timeout_ms <= 0) {
        cq_err_set(err, CQ_EINVAL, "redis: host, port and a positive timeout required");
        return NULL;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    redisReply *rep = NULL;
    if (!c) {
        cq_err_set(err, CQ_ENOMEM, "redis: out of memory");
        return NULL;
    }
    if (c->err) {
        cq_err_set(err, CQ_EREDIS, "redis %s:%d: connect: %s", host, port, c->errstr);
        goto out;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        cq_err_set(err, CQ_EREDIS, "redis %s:%d: cannot set timeout", host, port);
        goto out;
    }
    if (password) {
        rep = redisCommand(c, "AUTH %s", password);
        if (!rep) {
            cq_err_set(err, CQ_EREDIS, "redis %s:%d: AUTH: %s", host, port, c->errstr);
            goto out;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            cq_err_set(err, CQ_EAUTH, "redis %s:%d: AUTH rejected: %.100s", host, port, rep->str);
            goto out;
        }
        freeReplyObject(rep);
    }
    return c;
out:
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return NULL;
}

/* The master's address from the sentinels (blocking: tools only), in turn. */
static bool sync_ask_sentinels(const struct cq_config *cfg, int timeout_ms, char *host,
                               size_t hostlen, int *port, struct cq_err *err) {
    for (size_t i = 0; cfg->redis.sentinels[i]; i++) {
        char sh[256];
        int sp;
        if (!cq_redis_parse_addr(cfg->redis.sentinels[i], sh, sizeof(sh), &sp)) continue;
        redisContext *c = cq_redis_connect_sync(sh, sp, NULL, timeout_ms, err);
        if (!c) continue;
        redisReply *rep =
            redisCommand(c, "SENTINEL get-master-addr-by-name %s", cfg->redis.master_name);
        bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                  rep->element[0]->type == REDIS_REPLY_STRING &&
                  rep->element[1]->type == REDIS_REPLY_STRING &&
                  strlen(rep->element[0]->str) < hostlen;
        if (ok) {
            snprintf(host, hostlen, "%s", rep->element[0]->str);
            *port = atoi(rep->element[1]->str);
        }
        if (rep) freeReplyObject(rep);
        redisFree(c);
        if (ok) return true;
        cq_err_set(err, CQ_EREDIS, "redis sentinel %s: no master for '%s'", cfg->redis.sentinels[i],
                   cfg->redis.master_name);
    }
    return false;
}

redisContext *cq_redis_connect_cfg_sync(const struct cq_config *cfg, int timeout_ms,
                                        struct cq_err *err) {
    char host[256];
    int port = cfg->redis.port;
    redisContext *c = NULL;
    redisReply *rep = NULL;
    snprintf(host, sizeof(host), "%s", cfg->redis.host);
    if (cfg->redis.sentinels &&
        !sync_ask_sentinels(cfg, timeout_ms, host, sizeof(host), &port, err))
        return NULL;
    const char *pw = cfg->redis.password.value;
    c = cq_redis_connect_sync(host, port, cfg->redis.username ? NULL : pw, timeout_ms, err);
    if (!c) return NULL;
    if (cfg->redis.username && pw) {
        rep = redisCommand(c, "AUTH %s %s", cfg->redis.username, pw);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            cq_err_set(err, CQ_EAUTH, "redis %s:%d: AUTH rejected: %.100s", host, port,
                       rep ? rep->str : c->errstr);
            goto out;
        }
        freeReplyObject(rep);
    }
    if (cfg->redis.db > 0) {
        rep = redisCommand(c, "SELECT %d", cfg->redis.db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            cq_err_set(err, CQ_EREDIS, "redis %s:%d: SELECT %d: %.100s", host, port, cfg->redis.db,
                       rep ? rep->str : c->errstr);
            goto out;
        }
        freeReplyObject(rep);
    }
    return c;
out:
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return NULL;
}
