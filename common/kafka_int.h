/* kafka_int: private to the kafka_*.c files (kafka.h is the services' API): the client
 * plumbing the producer, consumer and admin share (kafka.c): config setting that keeps
 * secret values out of errors, librdkafka log and error routing with a per-client rate
 * limit, the queue wake-up pipes, and the librdkafka -> cq_rc mapping. */
#ifndef CQ_KAFKA_INT_H
#define CQ_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

/* Per-client rate limit for the "brokers down" class of errors, which librdkafka repeats
 * on every reconnect attempt. */
struct cq_kafka_err_limiter {
    _Atomic uint64_t last_ms;
    _Atomic int suppressed;
};

enum cq_rc cq_kafka_conf_set(rd_kafka_conf_t *conf, const char *who, const char *k, const char *v,
                             struct cq_err *err);
void cq_kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
void cq_kafka_log_client_error(rd_kafka_t *rk, struct cq_kafka_err_limiter *lim, int code,
                               const char *reason);
enum cq_rc cq_kafka_pipe_open(int fds[2], struct cq_err *err);
void cq_kafka_pipe_drain(int fd);
void cq_kafka_pipe_close(int fds[2]);
enum cq_rc cq_kafka_map_err(rd_kafka_resp_err_t e);

#endif
