/* kafka: librdkafka clients on the service's libuv loop (see kafka.h). This file holds
 * the plumbing the three clients share (kafka_int.h); the clients themselves are
 * kafka_producer.c, kafka_consumer.c (with its lag thread) and kafka_admin.c.
 * Each client's reply queue has an IO event on a pipe watched by a uv_poll_t: librdkafka
 * writes a byte when the queue goes from empty to non-empty, the loop drains the pipe and
 * serves the queue until it is empty (or re-arms itself through a uv_idle_t when a batch
 * bound is hit), so nothing is stranded and no thread polls. A producer with lazy reports
 * (cq_producer_lazy_reports: the worker's) turns its IO event off and serves its queue
 * before each loop wait instead. */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_int.h"
#include "log.h"
#include "metrics.h"

#define DOWN_LOG_INTERVAL_MS 10000

/* Config values can be secrets (sasl.password, ssl.key.password...): errors name the key
 * and only quote librdkafka's explanation when the key is not secret-bearing. */
static bool cq_kafka_secret_key(const char *k) {
    return strstr(k, "password") || strstr(k, "secret") || strstr(k, "key") || strstr(k, "token") ||
           strstr(k, "jaas");
}

enum cq_rc cq_kafka_conf_set(rd_kafka_conf_t *conf, const char *who, const char *k, const char *v,
                             struct cq_err *err) {
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK) return CQ_OK;
    if (cq_kafka_secret_key(k))
        return cq_err_set(err, CQ_ECONFIG, "kafka %s: setting %s rejected", who, k);
    return cq_err_set(err, CQ_ECONFIG, "kafka %s: setting %s rejected: %s", who, k, errstr);
}

const char **cq_kafka_conf_join(const char *const *a, const char *const *b) {
    size_t na = 0, nb = 0;
    while (a && a[na])
        na++;
    while (b && b[nb])
        nb++;
    const char **kv = calloc(na + nb + 1, sizeof(*kv));
    if (!kv) return NULL;
    if (na) memcpy(kv, a, na * sizeof(*kv));
    if (nb) memcpy(kv + na, b, nb * sizeof(*kv));
    return kv;
}

enum cq_rc cq_kafka_conf_apply(rd_kafka_conf_t *conf, const char *who, const char *const *kv,
                               struct cq_err *err) {
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (!kv[i + 1]) return cq_err_set(err, CQ_EINVAL, "kafka %s: %s has no value", who, kv[i]);
        enum cq_rc rc = cq_kafka_conf_set(conf, who, kv[i], kv[i + 1], err);
        if (rc != CQ_OK) return rc;
    }
    return CQ_OK;
}

void cq_kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    /* librdkafka logs every refused connection at LOG_ERR; the error_cb (rate-limited)
     * is where real errors surface, so its syslog 3 is a warning here. */
    /* authentication and TLS failures are reported (once for all clients, with a hint) by
     * cq_kafka_log_client_error from the error callback: librdkafka's own line is detail */
    if (level == 3 && strcmp(fac, "FAIL") == 0 &&
        (strstr(buf, "SASL authentication error") || strstr(buf, "SSL handshake failed"))) {
        cq_log(CQ_LOG_DEBUG, NULL, "rdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
        return;
    }
    enum cq_log_level l = level <= 2   ? CQ_LOG_ERROR
                          : level <= 4 ? CQ_LOG_WARN
                          : level <= 6 ? CQ_LOG_INFO
                                       : CQ_LOG_DEBUG;
    cq_log(l, NULL, "rdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

void cq_kafka_log_client_error(rd_kafka_t *rk, struct cq_kafka_err_limiter *lim, int code,
                               const char *reason) {
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        cq_error(NULL, "kafka %s: fatal error %s: %s", rd_kafka_name(rk), rd_kafka_err2name(orig),
                 why);
        return;
    }
    if (code == RD_KAFKA_RESP_ERR__AUTHENTICATION || code == RD_KAFKA_RESP_ERR__SSL) {
        /* Wrong credentials or certificates: repeated on every reconnect by every client of
         * the process, so one line per interval for all of them. The reason names the
         * mechanism or the TLS problem, never a credential. */
        static struct cq_kafka_err_limiter auth_lim;
        uint64_t now = cq_now_ms(), last = atomic_load(&auth_lim.last_ms);
        if (last && now - last < DOWN_LOG_INTERVAL_MS) {
            atomic_fetch_add(&auth_lim.suppressed, 1);
            return;
        }
        atomic_store(&auth_lim.last_ms, now);
        int n = atomic_exchange(&auth_lim.suppressed, 0);
        /* librdkafka#4895: before 2.6.1 its SCRAM proof is refused by Kafka 4.x brokers */
        bool old_scram = strstr(reason, "SCRAM") && rd_kafka_version() < 0x020601ff;
        cq_error(NULL,
                 "kafka: %s failed, check kafka.security_protocol, kafka.sasl.* and "
                 "kafka.ssl.*: %s%s (%d similar suppressed)",
                 code == RD_KAFKA_RESP_ERR__SSL ? "TLS" : "authentication", reason,
                 old_scram ? " (librdkafka before 2.6.1 cannot do SCRAM with Kafka 4.x brokers: "
                             "librdkafka#4895; use PLAIN over TLS or a newer librdkafka)"
                           : "",
                 n);
        return;
    }
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__TRANSPORT ||
        code == RD_KAFKA_RESP_ERR__RESOLVE) {
        uint64_t now = cq_now_ms(), last = atomic_load(&lim->last_ms);
        if (last && now - last < DOWN_LOG_INTERVAL_MS) {
            atomic_fetch_add(&lim->suppressed, 1);
            return;
        }
        atomic_store(&lim->last_ms, now);
        int n = atomic_exchange(&lim->suppressed, 0);
        cq_warn(NULL, "kafka %s: %s: %s (%d similar suppressed)", rd_kafka_name(rk),
                rd_kafka_err2name((rd_kafka_resp_err_t)code), reason, n);
        return;
    }
    cq_warn(NULL, "kafka %s: %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
}

/* Pipe whose read end the loop watches; librdkafka writes one byte to the write end. */
enum cq_rc cq_kafka_pipe_open(int fds[2], struct cq_err *err) {
    if (pipe(fds) != 0) {
        fds[0] = fds[1] = -1;
        cq_err_set(err, CQ_EIO, "kafka: pipe: %s", strerror(errno));
        if (err) err->sys_errno = errno;
        return CQ_EIO;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    return CQ_OK;
}

/* One read empties the pipe unless it held a full buffer: the poll on it is level-triggered,
 * so a byte written meanwhile (or left) only wakes the loop once more. Reading until EAGAIN
 * cost a second read(2) per wake-up, i.e. per batch of delivery reports. */
void cq_kafka_pipe_drain(int fd) {
    char buf[256];
    while (read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf)) {
    }
}

void cq_kafka_pipe_close(int fds[2]) {
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) close(fds[i]);
    fds[0] = fds[1] = -1;
}

enum cq_rc cq_kafka_map_err(rd_kafka_resp_err_t e) {
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return CQ_OK;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return CQ_ETIMEOUT;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
        return CQ_ESHUTDOWN;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return CQ_ETOOBIG;
    default:
        return CQ_EKAFKA;
    }
}
