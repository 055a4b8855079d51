/* redis_sentinel: the connect handshake (AUTH, SELECT, PING) and Sentinel discovery
 * (SENTINEL get-master-addr-by-name, then ROLE on the master it names), split from
 * redis.c; see redis_int.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis_int.h"

enum cq_rc cq_redis_sentinels_init(struct cq_redis *r, char *const *sentinels, int nsent,
                                   const char *master_name, struct cq_err *err) {
    r->sent_host = calloc((size_t)nsent, sizeof(char *));
    r->sent_port = calloc((size_t)nsent, sizeof(int));
    r->master_name = strdup(master_name);
    if (!r->sent_host || !r->sent_port || !r->master_name) return CQ_ENOMEM;
    for (; r->nsent < nsent; r->nsent++) {
        char h[256];
        if (!cq_redis_parse_addr(sentinels[r->nsent], h, sizeof(h), &r->sent_port[r->nsent])) {
            cq_err_set(err, CQ_EINVAL, "redis: sentinel '%s' is not host:port",
                       sentinels[r->nsent]);
            return CQ_EINVAL;
        }
        if (!(r->sent_host[r->nsent] = strdup(h))) return CQ_ENOMEM;
    }
    return CQ_OK;
}

void cq_redis_sentinel_target(struct cq_redis *r) {
    r->asking = !r->have_master;
    snprintf(r->host, sizeof(r->host), "%s",
             r->asking ? r->sent_host[r->sent_idx] : r->master_host);
    r->port = r->asking ? r->sent_port[r->sent_idx] : r->master_port;
}

void cq_redis_sentinel_next(struct cq_redis *r) {
    if (r->asking) r->sent_idx = (r->sent_idx + 1) % r->nsent;
    r->have_master = false;
}

/* A handshake step's reply (AUTH, SELECT): an error fails the handshake, which PING's
 * reply then ends. Returns the error reply to report, or NULL. */
static const redisReply *step_rejected(redisAsyncContext *ac, void *reply) {
    struct cq_redis *r = ac->data;
    const redisReply *rep = reply;
    if (!r || !rep || r->ac != ac || rep->type != REDIS_REPLY_ERROR) return NULL;
    r->handshake_failed = true;
    return rep;
}

/* AUTH and PING are pipelined; AUTH's verdict is known before PING's reply. */
static void on_auth_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    const redisReply *rep = step_rejected(ac, reply);
    const struct cq_redis *r = ac->data;
    if (rep)
        cq_warn(NULL, "redis %s:%d: AUTH rejected: %.100s", r->host, r->port,
                rep->str ? rep->str : "");
}

static void on_select_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    const redisReply *rep = step_rejected(ac, reply);
    const struct cq_redis *r = ac->data;
    if (rep)
        cq_warn(NULL, "redis %s:%d: SELECT %d (redis.db) rejected: %.100s", r->host, r->port, r->db,
                rep->str ? rep->str : "");
}

/* Sentinel mode: a server that is not the master (yet, or any more: the sentinel's
 * answer may be stale during a failover) is not used; the next attempt asks again. */
static void on_role_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    struct cq_redis *r = ac->data;
    const redisReply *rep = reply;
    if (!r || !rep || r->ac != ac || r->handshake_failed) return;
    const char *role = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
                               rep->element[0]->type == REDIS_REPLY_STRING
                           ? rep->element[0]->str
                           : NULL;
    if (!role || strcmp(role, "master") != 0) {
        r->handshake_failed = true;
        cq_warn(NULL,
                "redis %s:%d: not the master of '%s' (ROLE: %.40s); asking the sentinels "
                "again",
                r->host, r->port, r->master_name,
                role                                         ? role
                : rep->type == REDIS_REPLY_ERROR && rep->str ? rep->str
                                                             : "?");
    }
}

/* Sentinel mode: the sentinel's answer to get-master-addr-by-name ([ip, port], or nil
 * when it does not know the name). The sentinel connection is closed either way. */
static void on_sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    struct cq_redis *r = ac->data;
    const redisReply *rep = reply;
    if (!r || !rep || r->ac != ac) return;
    long port = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING && rep->element[1]->type == REDIS_REPLY_STRING)
        port = strtol(rep->element[1]->str, NULL, 10);
    if (port <= 0 || port > 65535 || strlen(rep->element[0]->str) >= sizeof(r->master_host)) {
        cq_warn(NULL, "redis sentinel %s:%d: no master for '%s' (%.100s)", r->host, r->port,
                r->master_name,
                rep->type == REDIS_REPLY_ERROR && rep->str ? rep->str : "unknown name");
        cq_redis_drop_conn(r, "sentinel has no master address");
        return;
    }
    snprintf(r->master_host, sizeof(r->master_host), "%s", rep->element[0]->str);
    r->master_port = (int)port;
    cq_info(NULL, "redis sentinel %s:%d: master of '%s' is %s:%d", r->host, r->port, r->master_name,
            r->master_host, r->master_port);
    /* Close the sentinel connection (hiredis defers the free while in its callback)
     * and connect to the master at once, without the failure backoff. */
    r->ac = NULL;
    r->state = ST_DOWN;
    uv_timer_stop(&r->conn_timer);
    ac->data = NULL;
    redisAsyncFree(ac);
    r->have_master = true;
    cq_redis_connect_start(r);
}

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)privdata;
    struct cq_redis *r = ac->data;
    const redisReply *rep = reply;
    if (!r || !rep || r->ac != ac) return;
    if (r->handshake_failed || rep->type == REDIS_REPLY_ERROR) {
        cq_redis_drop_conn(r, "handshake failed");
        return;
    }
    cq_redis_become_ready(r);
}

void cq_redis_handshake(struct cq_redis *r, redisAsyncContext *ac) {
    r->handshake_failed = false;
    if (r->asking) {
        if (redisAsyncCommand(ac, on_sentinel_reply, NULL, "SENTINEL get-master-addr-by-name %s",
                              r->master_name) != REDIS_OK)
            cq_redis_drop_conn(r, "could not ask the sentinel");
        return;
    }
    int rc = REDIS_OK;
    if (r->password && r->username)
        rc = redisAsyncCommand(ac, on_auth_reply, NULL, "AUTH %s %s", r->username, r->password);
    else if (r->password)
        rc = redisAsyncCommand(ac, on_auth_reply, NULL, "AUTH %s", r->password);
    if (rc == REDIS_OK && r->db > 0)
        rc = redisAsyncCommand(ac, on_select_reply, NULL, "SELECT %d", r->db);
    if (rc == REDIS_OK && r->nsent > 0) rc = redisAsyncCommand(ac, on_role_reply, NULL, "ROLE");
    if (rc == REDIS_OK) rc = redisAsyncCommand(ac, on_ping_reply, NULL, "PING");
    if (rc != REDIS_OK) cq_redis_drop_conn(r, "could not send the handshake");
}
