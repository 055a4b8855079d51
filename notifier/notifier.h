/* notifier: the notifier service engine on one libuv loop. Consumes chatops.results, delivers
 * each (request, step, seq) once to Slack or Feishu through curl multi, retries on timers
 * with backoff and per-channel pacing, dead-letters what cannot be delivered, and commits
 * an offset only once its result was delivered or dead-lettered. main.c wires it up. */
#ifndef CQ_NOTIFIER_SERVICE_H
#define CQ_NOTIFIER_SERVICE_H

#include <stdbool.h>

#include "config.h"
#include "errors.h"
#include "loop.h"

struct cq_notifier;

/* Starts the consumer, producer (for chatops.dlq), Redis and HTTP clients on loop. cfg is
 * borrowed and must outlive the notifier. Registers its drain step with the loop: on
 * shutdown it stops fetching, lets in-flight requests finish (up to drain_ms), releases
 * the claims of waiting retries for another copy, flushes the DLQ producer and commits. */
struct cq_notifier *cq_notifier_new(struct cq_loop *loop, const struct cq_config *cfg,
                                    struct cq_err *err);

/* True when Redis answers, a Kafka broker is reachable and the consumer runs. */
bool cq_notifier_ready(const struct cq_notifier *n);

/* Results accepted from Kafka and not yet delivered/dead-lettered (tests, metrics). */
int cq_notifier_inflight(const struct cq_notifier *n);

/* Frees everything (after cq_loop_run returned). NULL is a no-op. */
void cq_notifier_free(struct cq_notifier *n);

/* Parses an RFC 3339 timestamp ("2026-01-02T03:04:05.678Z", offsets allowed) into Unix
 * milliseconds; -1 when malformed. */
long long cq_rfc3339_ms(const char *s);

#endif
