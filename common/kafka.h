/* kafka: librdkafka producer, consumer and admin, plugged into the cq_loop via
 * rd_kafka_queue_io_event_enable so delivery reports and messages wake the loop
 * (no polling thread). Producer: acks=all, enable.idempotence=true, and every
 * message's delivery report handed back to its caller. Consumer: a group member
 * with manual commits: an offset is committed only once it and every earlier
 * offset of its partition were marked done. */
#ifndef CQ_KAFKA_H
#define CQ_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "loop.h"

struct cq_producer;
struct cq_consumer;

/* Delivery report: rc CQ_OK when the broker acknowledged (acks=all); otherwise
 * CQ_EKAFKA / CQ_ETIMEOUT with a readable errstr (CQ_ESHUTDOWN when cq_producer_free
 * had to purge it, CQ_ETOOBIG for an oversized message). offset is -1 on failure.
 * Called exactly once per message that cq_producer_send accepted, on the loop thread
 * (or in cq_producer_poll / cq_producer_flush / cq_producer_free). errstr is borrowed. */
typedef void (*cq_delivery_cb)(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                               int64_t offset);

/* What the broker may hold of a message whose report failed (rd_kafka_message_status):
 * NOT_PERSISTED: never written (not sent, or refused): a retry cannot duplicate it.
 * POSSIBLY_PERSISTED: sent but not acknowledged (timed out or purged in flight, a
 * connection lost mid-request): it may be in the log; a retry may duplicate it.
 * PERSISTED: acknowledged (rc CQ_OK). */
enum cq_persisted { CQ_NOT_PERSISTED, CQ_POSSIBLY_PERSISTED, CQ_PERSISTED };

/* The full delivery report (cq_producer_send_r). errstr is borrowed for the call. */
struct cq_delivery_report {
    enum cq_rc rc;
    const char *errstr;
    int32_t partition;
    int64_t offset;
    enum cq_persisted persisted;
};
typedef void (*cq_delivery_report_cb)(void *opaque, const struct cq_delivery_report *r);

/* delivery_timeout_ms bounds the time from send to report (message.timeout.ms; reports
 * may lag it by up to ~1 s, librdkafka's timeout scan interval).
 * loop may be NULL: then the caller drives reports with cq_producer_poll.
 * extra_conf: NULL-terminated "key","value" librdkafka settings, may be NULL; applied
 * after the defaults (acks=all, enable.idempotence=true, linger.ms=1), so they override.
 * Returns a new producer (caller frees with cq_producer_free) or NULL with err set. */
struct cq_producer *cq_producer_new(const char *brokers, int delivery_timeout_ms,
                                    struct cq_loop *loop, const char *const *extra_conf,
                                    struct cq_err *err);
/* Thread-safe. Copies key/value. headers: NULL-terminated "name","value" pairs or NULL.
 * cb may be NULL (fire and forget). opaque is borrowed until the report.
 * On error (queue full, unknown topic...) returns non-OK and cb is never called. */
enum cq_rc cq_producer_send(struct cq_producer *p, const char *topic, const void *key,
                            size_t keylen, const void *value, size_t len,
                            const char *const *headers, cq_delivery_cb cb, void *opaque,
                            struct cq_err *err);
/* cq_producer_send with the full report, which says whether a failed message may still
 * be in the log (see enum cq_persisted). Same contract otherwise. */
enum cq_rc cq_producer_send_r(struct cq_producer *p, const char *topic, const void *key,
                              size_t keylen, const void *value, size_t len,
                              const char *const *headers, cq_delivery_report_cb cb, void *opaque,
                              struct cq_err *err);
/* NULL while the producer is usable; after a fatal error (the idempotent producer's
 * sequence broke: librdkafka refuses every later message until the process restarts) a
 * one-line reason, stable for the producer's life. Thread-safe. Counted in
 * chatops_kafka_producer_fatal_total; cq_producer_ready is false from then on. */
const char *cq_producer_fatal(struct cq_producer *p);
/* Tests only: raises a fatal error as the broker would (rd_kafka_test_fatal_error). */
void cq_producer_test_fatal(struct cq_producer *p, const char *reason);
/* Serves delivery reports; returns how many were served. */
int cq_producer_poll(struct cq_producer *p, int timeout_ms);
/* Delivery reports (and producer errors) stop waking the loop on their own: while messages
 * are outstanding they are served each loop turn just before the loop waits, and a timer
 * wakes an otherwise idle loop after at most max_delay_ms. For callers whose reports are
 * bookkeeping, not on a user's path (the worker's results and audit records: the notifier
 * reads the result from Kafka, not from the report). With nothing outstanding, errors come
 * out within a second. Needs a loop; max_delay_ms <= 0 keeps a wake-up per report. */
void cq_producer_lazy_reports(struct cq_producer *p, int max_delay_ms);
/* Waits for every outstanding report (rd_kafka_flush). CQ_ETIMEOUT if some remain. */
enum cq_rc cq_producer_flush(struct cq_producer *p, int timeout_ms);
/* Messages sent whose report has not yet been served. */
int cq_producer_outq(struct cq_producer *p);
/* Cached readiness: true when the last metadata request (refreshed in the background
 * every second while a loop is attached) reached a broker. Thread-safe, never blocks.
 * Without a loop there is no background probe: it asks synchronously (up to 500 ms). */
bool cq_producer_ready(struct cq_producer *p);
/* Flushes up to 5 s (serving reports on this thread), purges what is left (those get
 * CQ_ESHUTDOWN reports), and destroys. With a loop: call it on the loop thread before
 * cq_loop_free; the uv handles close asynchronously and the memory is released from
 * their close callbacks (and after an in-flight readiness probe returns), so the loop
 * must run again (cq_loop_run or cq_loop_free do). NULL is a no-op. */
void cq_producer_free(struct cq_producer *p);

struct cq_message {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t keylen;
    const void *payload;
    size_t len;
    int64_t timestamp_ms;
    /* header lookup: see cq_message_header */
    void *rkm; /* borrowed rd_kafka_message_t* */
};

/* Borrowed value of header name (NUL-terminated copy in a static thread-local buffer is
 * NOT made: *len gives its size). NULL when absent. */
const void *cq_message_header(const struct cq_message *m, const char *name, size_t *len);

/* Called for every message on the loop thread. The message is borrowed for the call;
 * the callee must eventually call cq_consumer_done(c, topic, partition, offset).
 * The callback must not call cq_consumer_free. With a loop, at most 256 messages are
 * served per wakeup; the rest follow on the next loop iterations. */
typedef void (*cq_message_cb)(void *opaque, const struct cq_message *m);

/* Joins group and subscribes to topics (NULL-terminated). auto.offset.reset=earliest,
 * enable.auto.commit=false. loop may be NULL: drive with cq_consumer_poll. Watermarks are
 * committed every 200 ms (loop timer, or inside cq_consumer_poll without a loop), before
 * partitions are revoked (asynchronously) and on free. With a loop the same timer also
 * polls, so an idle or paused consumer stays within max.poll.interval.ms. Each rebalance
 * event counts in chatops_kafka_rebalances_total{group,event}. Not thread-safe: use from
 * the loop thread.
 * Returns a new consumer (caller frees with cq_consumer_free) or NULL with err set. */
struct cq_consumer *cq_consumer_new(const char *brokers, const char *group,
                                    const char *const *topics, struct cq_loop *loop,
                                    cq_message_cb cb, void *opaque, const char *const *extra_conf,
                                    struct cq_err *err);
/* Marks one message processed; commits the partition's contiguous watermark (batched). */
void cq_consumer_done(struct cq_consumer *c, const char *topic, int32_t partition, int64_t offset);
/* Serves up to max messages waiting up to timeout_ms; returns how many. */
int cq_consumer_poll(struct cq_consumer *c, int timeout_ms, int max);
/* Synchronously commits every done watermark now. */
enum cq_rc cq_consumer_commit_now(struct cq_consumer *c, struct cq_err *err);
/* Pauses/resumes fetching (back-pressure when too much is in flight). */
void cq_consumer_pause(struct cq_consumer *c, bool paused);
/* Commits, closes (leaves the group) and destroys. With a loop: call it on the loop
 * thread before cq_loop_free; the handles' memory is released from their close
 * callbacks when the loop runs again. NULL is a no-op. */
void cq_consumer_free(struct cq_consumer *c);

/* Creates missing topics (NULL-terminated names) with partitions/replication via the
 * admin API; existing topics are left as they are (reported in err->msg if their
 * partition count differs only as a warning: returns CQ_OK). Blocking (startup only):
 * returns once every partition has a leader, or CQ_ETIMEOUT after timeout_ms. */
enum cq_rc cq_kafka_ensure_topics(const char *brokers, const char *const *topics, int partitions,
                                  int replication, int timeout_ms, struct cq_err *err);
/* The same with client settings (cfg->kafka.client_conf: security, properties), may be NULL. */
enum cq_rc cq_kafka_ensure_topics_conf(const char *brokers, const char *const *conf,
                                       const char *const *topics, int partitions, int replication,
                                       int timeout_ms, struct cq_err *err);

/* a then b as one NULL-terminated "key","value" list (pointers borrowed; b's settings come
 * last, so they win). Either may be NULL. Free the array with free(); NULL = out of memory. */
const char **cq_kafka_conf_join(const char *const *a, const char *const *b);

/* Applies "key","value" pairs to a librdkafka conf (rd_kafka_conf_t *) for code that makes
 * its own clients (chatopsctl). Errors name the key; the value or librdkafka's reason only
 * when the key does not carry a secret. who: "producer", "admin"... for the message. */
struct rd_kafka_conf_s;
enum cq_rc cq_kafka_conf_apply(struct rd_kafka_conf_s *conf, const char *who, const char *const *kv,
                               struct cq_err *err);

#endif
