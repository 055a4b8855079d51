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

struct ntf_service;

/* Starts the consumer, producer (for chatops.dlq), Redis and HTTP clients on loop. cfg is
 * borrowed and must outlive the notifier. Registers its drain step with the loop: on
 * shutdown it stops fetching, lets in-flight requests finish (up to drain_ms), releases
 * the claims of waiting retries for another copy, flushes the DLQ producer and commits. */
struct ntf_service *ntf_service_new(struct cq_loop *loop, const struct cq_config *cfg,
                                    struct cq_err *err);

/* True when Redis answers, a Kafka broker is reachable and the consumer runs. */
bool ntf_service_ready(const struct ntf_service *n);

/* Results accepted from Kafka and not yet delivered/dead-lettered (tests, metrics). */
int ntf_service_inflight(const struct ntf_service *n);

/* Frees everything (after cq_loop_run returned). NULL is a no-op. */
void ntf_service_free(struct ntf_service *n);

/* A config reload (SIGHUP, loop thread): the next send reads cfg (the notifier takes a
 * reference and drops the one it held); a cached Feishu token goes when the app changed. */
void ntf_service_set_config(struct ntf_service *n, const struct cq_config *cfg);

#endif
