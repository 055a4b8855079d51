/* locks: named locks (issue 16) taken before an action and held until it ends, as leases
 * renewed by the holding worker; rate limits (ratelimit.c). Redis (P = redis.prefix):
 *   P lock:<name>       JSON {name, token, req, who, user, since, until_ms, reason, cmd, kind}
 *                       PX the lease (action) or worker.lock_manual_s (manual)
 *   P lockreq:<req_id>  the name of the lock request <req_id> holds (same PX)
 *   P locks             set of names (stale ones pruned by `locks`)
 *   P rl:<cmd>:<who>    sorted set of request ids by run time (ms), the sliding window */
#ifndef CQ_WORKER_LOCKS_H
#define CQ_WORKER_LOCKS_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "config.h"
#include "redis.h"

struct w_lock_hold;
struct job;
struct w_worker;

int64_t w_wall_ms(void);

/* ---- in the worker (service_int.h's job) ---- */
/* Before an allowed action (job.c's w_run_action): takes the command's lock, then its rate
 * limit; true when it took the job over (it runs the action with j->guarded set, or answers
 * the refusal). */
bool w_guard_start(struct job *j);
/* The job's final (w_finish_with): releases its lock unless a tracked pipeline holds it. */
void w_locks_on_final(struct job *j);
/* Lease timer: renews the action locks this worker holds, drops the ones it lost. */
void w_locks_renew(struct w_worker *w);
void w_locks_free_all(struct w_worker *w);
/* locks / lock / unlock: the decision (policy, usage); false for other words. */
bool w_locks_decide(struct job *j);
void w_locks_builtin(struct job *j);
/* explain.c */
bool w_explain_decide(struct job *j);
void w_explain_builtin(struct job *j);
/* The lock name a command's request takes (its `lock:` template), NULL with err. */
char *w_lock_name(const struct job *j, struct cq_err *err);

/* ratelimit.c */
typedef void (*w_limit_cb)(void *opaque, int allowed, long long used, long long retry_ms,
                           const char *err);
char *w_limit_key(const struct job *j);
/* Checks (and when consume, counts) j's command's limit; cb(allowed -1 on error). */
void w_limit_run(struct job *j, bool consume, w_limit_cb cb, void *opaque);
char *w_limit_refusal(const struct cq_command *c, int64_t retry_ms);
char *w_limit_state(const struct cq_command *c, long long used, long long retry_ms, bool ok);
void w_metric_refusal(const char *kind);

/* The tracker's final of a tracked pipeline (any worker): releases the lock request rid
 * holds, if it still holds one. */
void w_locks_release_req(struct cq_redis *r, const char *prefix, const char *rid);

/* "4m12s", "12s", "1h05m" */
void w_fmt_duration(char *buf, size_t size, int64_t ms);
/* One line about a lock record (JSON): "held by alice since 14:02:11 UTC (3m10s ago) for
 * `deploy web production` (req R)"; NULL for an unreadable record. */
char *w_lock_describe(const char *json, int64_t now_ms);

#endif
