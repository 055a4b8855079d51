/* service: the chatops-ingress process wiring: HTTP routes (common/http) -> verify and
 * normalise (verify.c, platform.c) -> Kafka producer (common/kafka) -> answer from the
 * delivery report on the loop thread, or from the budget guard when Kafka is silent. */
#ifndef CQ_INGRESS_SERVICE_H
#define CQ_INGRESS_SERVICE_H

#include "config.h"
#include "errors.h"
#include "loop.h"

struct cq_ingress;

/* Starts the producer and the HTTP server (port_override >= 0 replaces ingress.port) and
 * registers the drain step with the loop (SIGTERM: quiesce, answer every waiting request
 * from its delivery report, flush, stop). cfg and loop are borrowed and must outlive it.
 * Returns a new service or NULL with err set. */
struct cq_ingress *cq_ingress_new(const struct cq_config *cfg, struct cq_loop *loop,
                                  int port_override, struct cq_err *err);
/* The bound HTTP port. */
int cq_ingress_port(const struct cq_ingress *in);
/* Frees what the drain left (call after cq_loop_run returned). NULL is a no-op. */
void cq_ingress_free(struct cq_ingress *in);

#endif
