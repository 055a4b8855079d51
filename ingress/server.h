/* server: the ingress's HTTP side. libmicrohttpd (epoll; run by the loop thread when
 * ingress.threads is 1, else by its own thread pool) reads and checks each request and
 * produces an accepted one to Kafka; its connection stays suspended until the loop thread
 * resumes it with the answer once the delivery report (or the budget guard) decides. No
 * thread waits per request. */
#ifndef CQ_INGRESS_SERVER_H
#define CQ_INGRESS_SERVER_H

#include <stddef.h>

#include "config.h"
#include "errors.h"
#include "kafka.h"
#include "loop.h"

struct ing_server;

/* Starts listening on cfg->ingress.listen:port (port 0 = any free port) for the platforms
 * (and /healthz), and on cfg->ingress.admin_listen:admin_port for /healthz, /readyz (503
 * with the reason: no broker, a fatal producer error, shutting down) and /metrics, on a
 * thread of its own (admin_port 0 = any free port, < 0 = no admin listener). cfg, loop and
 * producer are borrowed and must outlive the ingress. Call on the loop thread.
 * Returns a new ingress (ing_server_free) or NULL with err set. */
struct ing_server *ing_server_new(const struct cq_config *cfg, int port, int admin_port,
                                  struct cq_loop *loop, struct cq_producer *producer,
                                  struct cq_err *err);
/* The bound port. */
int ing_server_port(const struct ing_server *in);
/* The admin listener's bound port, or -1 without one. */
int ing_server_admin_port(const struct ing_server *in);
/* Requests waiting for their delivery report (thread-safe). */
long ing_server_inflight(const struct ing_server *in);
/* Begins the drain (loop thread): stops accepting connections, answers new requests on open
 * connections with 503, and calls done(arg) on the loop thread once nothing waits on Kafka or
 * max_wait_ms passed. Call once. */
void ing_server_drain(struct ing_server *in, int max_wait_ms, void (*done)(void *arg), void *arg);
/* A config reload (SIGHUP; loop thread): requests that arrive from now on use cfg (the
 * ingress takes a reference); a request in progress keeps the config it started with. */
void ing_server_set_config(struct ing_server *in, const struct cq_config *cfg);
/* Answers whatever still waits (503 / "NOT run"), stops the HTTP server (and its threads)
 * and closes the loop handles; the memory goes when the loop runs again. Call on the loop
 * thread, after the producer's final reports were served (cq_producer_free). NULL is a no-op. */
void ing_server_free(struct ing_server *in);

#endif
