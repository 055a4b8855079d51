/* redis_int: private to the redis*.c files (redis.h is the services' API): the client
 * record, and what the connection code (redis.c) and the connect handshake with Sentinel
 * discovery (redis_sentinel.c) call of each other. */
#ifndef CQ_REDIS_INT_H
#define CQ_REDIS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <uv.h>

#include "errors.h"
#include "redis.h"

enum conn_state { ST_DOWN, ST_CONNECTING, ST_READY };

struct pending;

struct cq_redis {
    uv_loop_t *uv;
    char host[256]; /* what is being connected to now: the master, or a sentinel */
    int port;
    char *username, *password;
    int db;
    /* Sentinel mode (nsent > 0): master_host:master_port is known while have_master; a
     * connect without it asks sentinel[sent_idx] first (asking), the next one on failure. */
    char **sent_host;
    int *sent_port;
    int nsent, sent_idx;
    char *master_name;
    bool asking, have_master;
    char master_host[256];
    int master_port;
    int connect_timeout_ms, command_timeout_ms, stall_ms;
    redisAsyncContext *ac; /* NULL when there is no live connection */
    enum conn_state state;
    int backoff_ms;
    bool closing;
    bool handshake_failed;
    int open_timers;
    unsigned long connects;
    uint64_t last_progress; /* uv_now of the last reply, or of becoming ready */
    int abandoned;          /* timed-out commands hiredis still holds on this connection */
    struct pending *pending_head, *pending_tail; /* in deadline (= send) order */
    struct pending *deferred_head, *deferred_tail;
    void (*on_connect)(void *);
    void *on_connect_arg;
    uv_timer_t sweep, conn_timer, reconnect, defer;
    bool check_persistence; /* CONFIG GET appendonly/appendfsync on every connect */
    char aof[16];           /* appendonly as last read ("" = unknown) */
    uv_getaddrinfo_t gai;   /* host -> address on libuv's thread pool, never on the loop */
    bool resolving;         /* gai in flight: it holds one of open_timers' references */
};

/* redis.c */
void cq_redis_connect_start(struct cq_redis *r);
/* Drops the live connection from our side and schedules a reconnect. */
void cq_redis_drop_conn(struct cq_redis *r, const char *why);
void cq_redis_become_ready(struct cq_redis *r);

/* redis_uv.c: hiredis's event hooks on the loop (instead of hiredis/adapters/libuv.h: the
 * fd stays registered, and the commands of one loop turn go out in one write). REDIS_OK or
 * REDIS_ERR (out of memory, or the context already attached). */
int cq_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* redis_sentinel.c */
/* Copies the nsent "host:port" sentinels and master_name into r. CQ_EINVAL (err set) for a
 * sentinel that is not host:port, CQ_ENOMEM; r->nsent counts what was copied either way. */
enum cq_rc cq_redis_sentinels_init(struct cq_redis *r, char *const *sentinels, int nsent,
                                   const char *master_name, struct cq_err *err);
/* Before a connect: the master when known, else the current sentinel (r->asking). */
void cq_redis_sentinel_target(struct cq_redis *r);
/* After a failed or lost connection: forget the master; move on to the next sentinel if
 * this one was being asked. */
void cq_redis_sentinel_next(struct cq_redis *r);
/* On a new connection: asks the sentinel for the master, or sends AUTH, SELECT, ROLE (in
 * Sentinel mode) and PING; the last reply makes the connection ready or drops it. */
void cq_redis_handshake(struct cq_redis *r, redisAsyncContext *ac);

#endif
