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
 * CQ_EKAFKA / CQ_ETIMEOUT with a readable errstr. Called exactly once per message
 * that cq_producer_send accepted, on the loop thread (or in cq_producer_poll). */
typedef void (*cq_delivery_cb)(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                               int64_t offset);

/* delivery_timeout_ms bounds the time from send to report (message.timeout.ms).
 * loop may be NULL: then the caller drives reports with cq_producer_poll.
 * extra_conf: NULL-terminated "key","value" librdkafka settings, may be NULL. */
struct cq_producer *cq_producer_new(const char *brokers, int delivery_timeout_ms,
                                    struct cq_loop *loop, const char *const *extra_conf,
                                    struct cq_err *err);
/* Thread-safe. Copies key/value. headers: NULL-terminated "name","value" pairs or NULL.
 * On error (queue full, unknown topic...) returns non-OK and cb is never called. */
enum cq_rc cq_producer_send(struct cq_producer *p, const char *topic, const void *key,
                            size_t keylen, const void *value, size_t len,
                            const char *const *headers, cq_delivery_cb cb, void *opaque,
                            struct cq_err *err);
/* Serves delivery reports; returns how many were served. */
int cq_producer_poll(struct cq_producer *p, int timeout_ms);
/* Waits for every outstanding report (rd_kafka_flush). CQ_ETIMEOUT if some remain. */
enum cq_rc cq_producer_flush(struct cq_producer *p, int timeout_ms);
/* Messages sent whose report has not yet been served. */
int cq_producer_outq(struct cq_producer *p);
/* Cached readiness: true when the last metadata request (refreshed in the background
 * every second while a loop is attached) reached a broker. Thread-safe, never blocks. */
bool cq_producer_ready(struct cq_producer *p);
/* Flushes up to 5 s and destroys. NULL is a no-op. */
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
 * the callee must eventually call cq_consumer_done(c, topic, partition, offset). */
typedef void (*cq_message_cb)(void *opaque, const struct cq_message *m);

/* Joins group and subscribes to topics (NULL-terminated). auto.offset.reset=earliest,
 * enable.auto.commit=false. loop may be NULL: drive with cq_consumer_poll. */
struct cq_consumer *cq_consumer_new(const char *brokers, const char *group,
                                    const char *const *topics, struct cq_loop *loop,
                                    cq_message_cb cb, void *opaque,
                                    const char *const *extra_conf, struct cq_err *err);
/* Marks one message processed; commits the partition's contiguous watermark (batched). */
void cq_consumer_done(struct cq_consumer *c, const char *topic, int32_t partition,
                      int64_t offset);
/* Serves up to max messages waiting up to timeout_ms; returns how many. */
int cq_consumer_poll(struct cq_consumer *c, int timeout_ms, int max);
/* Synchronously commits every done watermark now. */
enum cq_rc cq_consumer_commit_now(struct cq_consumer *c, struct cq_err *err);
/* Pauses/resumes fetching (back-pressure when too much is in flight). */
void cq_consumer_pause(struct cq_consumer *c, bool paused);
/* Commits, closes (leaves the group) and destroys. NULL is a no-op. */
void cq_consumer_free(struct cq_consumer *c);

/* Creates missing topics (NULL-terminated names) with partitions/replication via the
 * admin API; existing topics are left as they are (reported in err->msg if their
 * partition count differs only as a warning: returns CQ_OK). */
enum cq_rc cq_kafka_ensure_topics(const char *brokers, const char *const *topics, int partitions,
                                  int replication, int timeout_ms, struct cq_err *err);

#endif
