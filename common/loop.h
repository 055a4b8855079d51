/* loop: the one libuv event loop per service thread. curl multi, hiredis async
 * and librdkafka queue events plug into it; SIGTERM/SIGINT only set the shutdown
 * flag and start the drain callbacks in registration order. */
#ifndef CQ_LOOP_H
#define CQ_LOOP_H

#include <stdbool.h>
#include <uv.h>

#include "errors.h"

struct cq_loop;

/* Returns a new loop owning a fresh uv_loop_t with SIGTERM/SIGINT watchers. */
struct cq_loop *cq_loop_new(struct cq_err *err);
/* Borrowed; valid until cq_loop_free. */
uv_loop_t *cq_loop_uv(struct cq_loop *l);

/* Registers a drain step run once when shutdown begins (signal or cq_loop_shutdown).
 * Steps run in registration order; each must eventually let its handles close. */
enum cq_rc cq_loop_on_shutdown(struct cq_loop *l, void (*cb)(void *arg), void *arg);
/* Begins shutdown from code (tests, fatal errors). Idempotent. Loop thread only (from
 * another thread, wake the loop with a uv_async_t and call it there). */
void cq_loop_shutdown(struct cq_loop *l);
bool cq_loop_stopping(const struct cq_loop *l);

/* Runs until no active handles remain (after shutdown the signal watchers are closed). */
int cq_loop_run(struct cq_loop *l);

/* Closes remaining handles (running the loop until their close callbacks ran, so modules
 * freed just before release their memory) and frees. NULL is a no-op. */
void cq_loop_free(struct cq_loop *l);

/* Milliseconds of the monotonic clock. */
uint64_t cq_now_ms(void);

#endif
