/* redis: an async Redis client on the service's libuv loop (hiredis 0.14 async +
 * its libuv adapter), with what hiredis 0.14 lacks: connect and per-command
 * timeouts, AUTH, reconnect with backoff, and stall detection. Workers keep
 * idempotency keys, pipeline state and leases here; see ARCHITECTURE.md. */
#ifndef CQ_REDIS_H
#define CQ_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "errors.h"
#include "loop.h"

struct cq_redis;
struct cq_config;

/* Where and how to connect (all borrowed; copied by cq_redis_new_opts). */
struct cq_redis_opts {
    const char *host; /* used when sentinels is NULL */
    int port;
    const char *username;    /* NULL: AUTH password (default user); else AUTH username password */
    const char *password;    /* NULL: no AUTH; never logged */
    int db;                  /* > 0: SELECT db on every connect */
    char *const *sentinels;  /* "host:port", NULL-terminated; NULL: no Sentinel */
    const char *master_name; /* required with sentinels */
    int connect_timeout_ms, command_timeout_ms; /* both > 0 */
};

/* Completion of one command, called exactly once per accepted command, always from
 * the loop and never from inside cq_redis_command / cq_redis_commandargv.
 * Exactly one of reply / err is non-NULL:
 *  - reply: whatever Redis answered, INCLUDING error replies (reply->type ==
 *    REDIS_REPLY_ERROR, text in reply->str); borrowed, freed after the callback.
 *  - err:   no reply: CQ_ETIMEOUT (command_timeout_ms passed; a late reply is
 *    dropped), CQ_EREDIS (not connected: "redis unavailable"; or the connection
 *    was lost with the command in flight), CQ_ESHUTDOWN (cq_redis_free). Borrowed. */
typedef void (*cq_redis_cb)(void *opaque, const redisReply *reply, const struct cq_err *err);

/* Returns a new client that starts connecting at once (asynchronously: it is not
 * connected on return; see cq_redis_on_connect). password may be NULL (copied, never
 * logged). A connect (TCP + AUTH + PING) that has not finished after
 * connect_timeout_ms is abandoned; after any failure or disconnect the client
 * reconnects by itself after 100 ms, doubling to 2 s. Both timeouts must be > 0. */
struct cq_redis *cq_redis_new(struct cq_loop *loop, const char *host, int port,
                              const char *password, int connect_timeout_ms, int command_timeout_ms,
                              struct cq_err *err);

/* The same with every option. On every (re)connect: AUTH (username) password, SELECT
 * db, and in Sentinel mode first SENTINEL get-master-addr-by-name on the sentinels in
 * turn (a failure or nil answer moves to the next), then ROLE must say "master". A lost
 * connection, a failed connect or a READONLY reply makes the next attempt ask the
 * sentinels again, so a failover is followed; commands in flight on the lost
 * connection fail with CQ_EREDIS (never silently resent). */
struct cq_redis *cq_redis_new_opts(struct cq_loop *loop, const struct cq_redis_opts *o,
                                   struct cq_err *err);

/* cq_redis_new_opts with the redis: section of a loaded config. */
struct cq_redis *cq_redis_new_cfg(struct cq_loop *loop, const struct cq_config *cfg,
                                  struct cq_err *err);

/* Splits "host:port" (the last ':'; port 1-65535) into host (NUL-terminated, at most
 * hostlen - 1 bytes) and *port. False when it is not of that form. */
bool cq_redis_parse_addr(const char *s, char *host, size_t hostlen, int *port);

/* Sends a command (hiredis printf-like format: %s, %b with pointer+length, ...).
 * Many commands may be in flight; replies arrive in order. Returns CQ_OK when cb
 * WILL be called (also when not connected: then cb gets CQ_EREDIS "redis
 * unavailable" on the next loop turn). Any other return (CQ_EINVAL for a bad
 * format, CQ_ENOMEM, CQ_ESHUTDOWN once cq_redis_free started) means cb will NOT be
 * called. opaque is passed through untouched. */
enum cq_rc cq_redis_command(struct cq_redis *r, cq_redis_cb cb, void *opaque, const char *fmt, ...);

/* Same as cq_redis_command with binary-safe arguments (copied before return).
 * argvlen may be NULL when every argument is a NUL-terminated string. */
enum cq_rc cq_redis_commandargv(struct cq_redis *r, cq_redis_cb cb, void *opaque, int argc,
                                const char **argv, const size_t *argvlen);

/* True when connected, authenticated and answering (commands are sent, not failed). */
bool cq_redis_connected(const struct cq_redis *r);

/* Calls cb(arg) on every (re)connect, after AUTH succeeded, e.g. to reload Lua
 * scripts. One callback per client; a later call replaces it; cb NULL clears it. */
void cq_redis_on_connect(struct cq_redis *r, void (*cb)(void *), void *arg);

/* Reads the server's appendonly / appendfsync (CONFIG GET) now and on every reconnect;
 * when they cannot keep every acknowledged write (anything but appendonly yes +
 * appendfsync always) logs a warning; sets the gauge chatops_redis_persistence_ok to 1
 * (kept), 0 (not kept) or -1 (unknown: CONFIG refused or renamed, which is tolerated). */
void cq_redis_check_persistence(struct cq_redis *r);

/* A connection whose commands keep timing out with no reply at all for stall_ms is
 * dropped and reconnected (catches a peer that vanished without a reset). Default:
 * max(5 * command_timeout_ms, 2000). */
void cq_redis_set_stall_ms(struct cq_redis *r, int stall_ms);

/* Number of connections that reached the connected state so far (tests, metrics). */
unsigned long cq_redis_connect_count(const struct cq_redis *r);

/* Fails every pending command with CQ_ESHUTDOWN (each callback exactly once, before
 * this returns unless called from inside a callback of this client) and closes the
 * connection. The memory is released once the loop has run the handles' close
 * callbacks (cq_loop_run or cq_loop_free). NULL is a no-op. */
void cq_redis_free(struct cq_redis *r);

/* Blocking helper for tools and tests: connects with a timeout (also used as the
 * per-command socket timeout) and sends AUTH when password is not NULL. Returns a
 * new context (caller frees with redisFree) or NULL with err set. */
redisContext *cq_redis_connect_sync(const char *host, int port, const char *password,
                                    int timeout_ms, struct cq_err *err);

/* The same for the redis: section of a config (tools): asks the sentinels in turn when
 * redis.sentinels is set, then AUTH (username) password and SELECT db. */
redisContext *cq_redis_connect_cfg_sync(const struct cq_config *cfg, int timeout_ms,
                                        struct cq_err *err);

#endif
