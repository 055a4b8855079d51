/* notifier_int.h: private to the notifier (service.c, route.c, feishu_token.c, dlq.c,
 * metrics.c): the
 * job and service structs and the steps one file hands a job to in another. A job walks
 * claim (service.c) -> route and send (route.c) -> Feishu token (feishu_token.c) -> answer,
 * retry, delivered (service.c) | dead letter (dlq.c). Not a public header: nothing outside
 * notifier/ includes it. */
#ifndef CQ_NOTIFIER_INT_H
#define CQ_NOTIFIER_INT_H

#include "notifier.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backoff.h"
#include "classify.h"
#include "clock.h"
#include "crypto.h"
#include "envelope.h"
#include "feishu_format.h"
#include "httpc.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "platforms.h"
#include "redis.h"
#include "slack_format.h"
#include "utf8.h"

#define REQ_BUCKETS 16384 /* request id -> its jobs; power of two (chains past it) */

/* ------------------------------------------------------------------ types */

enum platform { P_SLACK, P_FEISHU, P_DINGTALK, P_MATTERMOST, P_DISCORD, P_WEBEX, P_COUNT };
/* R_MM_* .. R_DT_*: issue 18's platforms (notifier/platforms.c and <platform>_send.c) */
enum route {
    R_NONE,
    R_RURL,
    R_POST,
    R_UPDATE,
    R_FS_REPLY,
    R_FS_SEND,
    R_FS_PATCH,
    R_MM_RURL,
    R_MM_POST,
    R_DC_ORIGINAL,
    R_DC_FOLLOWUP,
    R_DC_CHANNEL,
    R_WX_MESSAGE,
    R_DT_WEBHOOK,
    R_DT_GROUP,
    R_DT_DIRECT
};
enum wait { W_OP, W_TIMER, W_TOKEN, W_PRED, W_SLOT };
enum next { N_CLAIM, N_ROUTE, N_PACE, N_SEND, N_DLQ };

struct job {
    struct ntf_service *s;
    struct job *prev, *next; /* all jobs */
    struct job *tok_next;    /* token waiters */
    struct job *pred, *succ; /* results of the same request, settled in order */
    struct job *slot_next;   /* waiting for a free send slot (FIFO) */
    struct job *req_next;    /* same hash bucket of request ids (newest first) */
    bool hashed;
    uv_timer_t timer;
    enum wait wait;
    enum next next_step; /* what the timer does */
    bool abandoned;      /* shutting down: free on the next callback, no commit */
    bool claimed;
    bool rurl_spent;
    bool token_retried;
    bool update_failed;
    bool settling;   /* posted or dead-lettered: only its mark/report is left, then commit */
    bool claim_lost; /* a renewal found the claim gone: claim again before sending */

    char *topic;
    int32_t partition;
    int64_t offset;
    char *payload;
    size_t len;
    int64_t msg_ts_ms;

    struct cq_result r;
    bool decoded;
    enum platform plat;
    const struct ntf_platform *pt; /* issue 18's platforms: their table row (platforms.c) */
    enum route route;
    char *update_ts;  /* chat.update target */
    char *used_token; /* Feishu token of the last attempt */
    char owner[80];
    char once_key[512];
    char pace_key[300];
    int attempts;
    uint64_t started_ms;

    char reason[160];
    long last_status;
    char *last_body;
    char *dlq_reason_class;
};

struct tokstate {
    char *token;
    long long fetched_ms, expire_ms; /* wall clock */
    char *stale;
    bool busy, lock_held;
    int failures;
    struct job *waiters;
    uv_timer_t timer;
};

struct ntf_service {
    struct cq_loop *loop;
    const struct cq_config *cfg;
    struct cq_consumer *cons;
    struct cq_producer *prod;
    struct cq_redis *redis;
    struct cq_httpc *http;
    struct ntf_pacer *slack_pacer, *feishu_pacer;
    struct ntf_pacer *plat_pacer[P_COUNT]; /* issue 18's platforms, per conversation */
    char instance[CQ_UUID_LEN + 1];
    unsigned long job_seq;
    struct job *jobs;
    int njobs;
    struct job *by_req[REQ_BUCKETS];   /* decoded jobs by request id: finds a request's tail
                                          in O(1) instead of scanning every job in flight */
    int sending;                       /* HTTP sends in flight */
    struct job *slot_head, *slot_tail; /* jobs waiting for a send slot */
    bool paused, stopping, finished;
    int closing; /* startup failure: handles left to close before s is freed */
    struct tokstate tok;
    struct tokstate dtok; /* DingTalk app access token (dingtalk_send.c), no timer */
    uv_timer_t drain_timer;
    uint64_t drain_deadline;
    uv_timer_t renew_timer;
    int claim_lease_ms;
    char key_prefix[128];
};

/* release(key, owner): delete only our own claim or lock (service.c) */
extern const char NTF_RELEASE_LUA[];
extern const char *const ntf_route_name[];

/* small helpers (service.c) */
uint64_t ntf_rnd64(void);
void ntf_ignore_reply(void *opaque, const redisReply *reply, const struct cq_err *err);

/* job lifecycle (service.c) */
void ntf_job_unlink(struct job *j);
void ntf_job_finish(struct job *j, const char *outcome);
void ntf_job_abandon(struct job *j);
void ntf_job_wait(struct job *j, uint64_t ms, enum next step);
bool ntf_job_gone(struct job *j);
void ntf_job_claim(struct job *j);
void ntf_job_pace(struct job *j);
/* feishu_update.c: Feishu quiet updates (update_ts holds the card's message_id) */
bool ntf_feishu_updatable(const struct job *j);
void ntf_feishu_update_route(struct job *j);
void ntf_feishu_remember(struct job *j);
char *ntf_feishu_patch_body(const struct cq_result *r, struct cq_err *err);
void ntf_on_answer(void *opaque, const struct cq_http_response *resp);

/* route.c: pick the platform route, build and send the platform request */
void ntf_job_route(struct job *j);
void ntf_job_send(struct job *j);

/* feishu_token.c: hand the job a tenant_access_token (cached, shared via Redis), then send */
void ntf_token_get(struct job *j);

/* dlq.c: produce the result to chatops.dlq, then commit */
void ntf_job_dead_letter(struct job *j, const char *cls, const char *reason);

/* metrics.c: the notifier's metrics, one table; label values are short fixed words */
void ntf_metric_delivery(const char *platform, const char *outcome);
void ntf_metric_attempt(const char *platform, const char *route, const char *outcome);
void ntf_metric_inflight(int n);
void ntf_metric_latency(const char *platform, double seconds);
/* result produced -> consumed here; consumed -> the platform accepted it */
void ntf_metric_queue_seconds(const char *platform, double seconds);
void ntf_metric_post_seconds(const char *platform, double seconds);
void ntf_metric_claim_lost(void);
void ntf_metric_dlq(const char *reason_class);
void ntf_metric_token_fetch(const char *outcome);
void ntf_metric_token_age(long long seconds);

#endif
