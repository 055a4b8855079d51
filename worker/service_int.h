/* service_int: private to the worker's service files (service.c, job.c, decide.c,
 * runonce.c, direct.c, trigger.c, records.c): the job and worker structs and the
 * functions one of these files calls in another (w_ prefix). Not for other services. */
#ifndef CQ_WORKER_SERVICE_INT_H
#define CQ_WORKER_SERVICE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin_http.h"
#include "args.h"
#include "config.h"
#include "envelope.h"
#include "httpc.h"
#include "kafka.h"
#include "loop.h"
#include "pipeline.h"
#include "policy.h"
#include "redis.h"
#include "service.h"
#include "template.h"

#define CONV_BUCKETS 4096

#define RETRY_TICK_MS 100

#define MAX_REPLY_TEXT 3000

struct job;

struct conv {
    char *key;
    struct job *head, *tail;
    struct conv *next;
};

struct retry {
    uint64_t at;
    void (*fn)(void *arg); /* runs with the retry's op on job held */
    void *arg;
    struct job *job;
    struct retry *next;
};

struct outmsg {
    struct job *job;
    const char *topic; /* borrowed from cfg */
    char *key;
    char *value;
    size_t len;
    int attempts;
};

enum job_kind { JK_BUILTIN, JK_UNKNOWN, JK_INVALID, JK_DENIED, JK_ACTION, JK_EXPIRED };

enum { PB_NONE, PB_CANCEL, PB_LIST, PB_SUBS, PB_LOCKS, PB_EXPLAIN };

/* The lifetime of a job (job.c owns the transitions, w_job_set_state asserts them):
 *   QUEUED --start--> RUNNING --final handed to the producer--> FINAL_QUEUED
 *   FINAL_QUEUED --every report ok--> COMPLETE        (offset may be committed)
 *   RUNNING --> COMPLETE     (nothing to produce: a delivered duplicate, dropped, odd claim)
 *   any --> ABANDONED        (left for redelivery: offset never marked done; sticky)
 * A job is freed once COMPLETE or ABANDONED, out of its conversation (conv == NULL) and with
 * no operation outstanding (ops == 0; outs counts the produced messages among them). */
enum job_state { JS_QUEUED, JS_RUNNING, JS_FINAL_QUEUED, JS_COMPLETE, JS_ABANDONED, JS_N };

struct job {
    struct w_worker *w;
    /* referenced: the config current when the job started (a reload does not change it) */
    const struct cq_config *cfg;
    struct conv *conv; /* while queued in / holding its conversation */
    struct job *qnext;
    struct job *all_prev, *all_next;
    char *topic;
    int32_t partition;
    int64_t offset;
    char *convkey;
    struct cq_request req;
    uint64_t t0;

    enum job_kind kind;
    const struct cq_command *cmd;
    struct w_argv argv;
    struct w_bound_args args;
    const char *input; /* the arguments text: req.text after the command's name (borrowed) */
    const struct cq_person *person;
    const struct cq_channel *channel;
    struct w_decision dec;
    const char *status; /* final status (static) */
    char *text;         /* final reply text */

    char *run_key;
    char *stored;           /* the claim value we last wrote (for compare-and-set) */
    char *next_stored;      /* the value a compare-and-set in flight writes */
    const char *next_state; /* "calling" / "done" when next_stored is such a value: a retry
                               after a timed-out CAS writes the same value again */
    char *target;           /* "POST http://host/path" of a direct call, for unknown outcomes */
    struct w_http_call call;
    uint64_t call_t0;
    int store_attempts;
    int busy_tries;       /* claim found a live owner this many times */
    uint64_t dup_since;   /* when the claim first found a live owner (0 = never) */
    int64_t received_ms;  /* the request's received_at (Unix ms), 0 when unreadable */
    bool reclaim;         /* the claim vanished before "calling": claimed again, then call */
    bool outcome_unknown; /* the final says the outcome is unknown (superseded by a true one) */

    /* Pipeline modes: what the trigger led to (carried in the result and the claim). */
    const char *step; /* "ack" for a tracked wait; NULL = "final" */
    long long pl_id;  /* 0 = no pipeline */
    char *pl_url, *pl_status;
    int pl_builtin; /* PB_* for cancel / pipelines */

    enum job_state state; /* change it with w_job_set_state only */
    int ops;              /* async operations outstanding (redis, http, deliveries, retries) */
    int outs;             /* produced messages without a delivery report yet */
    bool resend_only;     /* a duplicate answered from the stored result */

    /* confirmation and approval (approval.c, issue 16) */
    bool ap_click;         /* approve / deny / confirm, or a Cancel button */
    const char *buttons;   /* the result's buttons: "approval" | "confirm" (static), NULL = none */
    int seq;               /* the result's seq (a parked request's progress) */
    char *approvers;       /* who approved a continuation: audit records, CHATOPS_APPROVERS */
    struct w_ident *ident; /* identity.c: who the user is when people: does not say (owned) */

    /* locks and rate limits (locks.c, ratelimit.c, issue 16) */
    bool guarded;     /* the lock and limit step passed: run the action */
    char *lock_key;   /* the lock this job holds (Redis key), NULL = none */
    char *lock_token; /* its owner token */
};

struct w_worker {
    /* referenced; a reload (SIGHUP) replaces it */
    const struct cq_config *cfg;
    struct cq_loop *loop;
    char owner[200]; /* unique per process instance: --id (if any) + a random suffix */
    char *lease_key;
    char *epoch_key;
    char *lease_prefix;
    struct cq_producer *producer;
    struct cq_consumer *consumer;
    struct cq_redis *redis;
    struct cq_httpc *httpc;
    struct w_pipeline_tracker *pipelines;
    struct w_events *events; /* GitLab event router (events.c), NULL unless events.enabled */
    struct conv *convs[CONV_BUCKETS];
    struct job *jobs; /* every live job */
    size_t n_jobs;
    bool paused, stopping, torn_down;
    struct retry *retries;
    uv_timer_t retry_timer, lease_timer, drain_timer, ready_timer;
    struct cq_admin_http *admin; /* /healthz /readyz /metrics; NULL when off */
    int open_handles;
    bool orphaned; /* setup failed: the last handle's close frees it (no w_service_free) */
    uint64_t drain_deadline;
    int drain_ms;
    int max_inflight;
    struct w_ident_state *ident; /* identity.c: lookup rate and the Feishu token (owned) */
    struct w_lock_hold *locks;   /* locks.c: action locks this worker renews (owned) */
};

/* runonce.c */
extern const char w_cas_lua[];
void w_finish_with(struct job *j, const char *status, char *text);
/* The template variables of a job's request (no response: reply templates add it). */
struct cq_tpl_vars w_job_tpl_vars(const struct job *j);
void w_mark_calling(void *arg);
void w_claim(struct job *j);
void w_renew_lease(uv_timer_t *t);
void w_on_redis_connect(void *arg);

/* metrics.c: the request steps' metrics, one table */
void w_metric_expired(void);
void w_metric_action_seconds(double seconds);
void w_metric_request_seconds(double seconds);
/* received_at (RFC 3339, the ingress's clock) to now (this host's clock); unreadable: none */
void w_metric_queue_seconds(const char *received_at);
void w_metric_claim_lost(void);
void w_metric_duplicate(const char *outcome);
/* outcome: parked, approved, counted, denied, self, role, twice, notyours, gone, ended,
 * expired, wrongkind (approval.c) */
void w_metric_approval(const char *outcome);

/* records.c */
void w_metric_decision(const char *outcome);
void w_metric_action(const char *outcome);
void w_metric_result(const char *status);
void w_metric_inflight(struct w_worker *w);
char *w_audit_json(const struct job *j, const char *kind, const char *decision,
                   const char *result_status, const char *detail);
void w_command_label(const struct cq_request *q, char *label, size_t size);
char *w_result_json(const struct job *j, const char *status, const char *text);
char *w_dlq_json(const struct cq_message *m, const char *reason);

/* job.c */
const char *w_job_state_name(enum job_state s);
/* Whether the lifetime allows from -> to (the table in job.c; a state to itself is fine). */
bool w_job_transition_ok(enum job_state from, enum job_state to);
/* Moves j to state to. ABANDONED is sticky (a later step of a job left for redelivery does
 * not revive it: false); any other transition the table forbids is a bug: asserted, logged
 * and not taken (false). */
bool w_job_set_state(struct job *j, enum job_state to);
/* j need not continue: the worker was torn down or j was left for redelivery. */
bool w_job_gone(const struct job *j);
void w_job_op_begin(struct job *j);
void w_retry_tick(uv_timer_t *t);
bool w_retry_later(struct job *j, int ms, void (*fn)(void *), void *arg);
void w_job_free(struct job *j);
void w_job_maybe_free(struct job *j);
void w_job_op_end(struct job *j);
void w_job_release_conv(struct job *j);
void w_job_abandon(struct job *j, const char *why);
void w_ignore_reply(void *opaque, const redisReply *reply, const struct cq_err *err);
void w_produce(struct job *j, const char *topic, const char *key, char *value);
void w_produce_final(struct job *j, char *result, bool audit);
void w_execute(struct job *j);
void w_on_message(void *opaque, const struct cq_message *m);
/* After the identity step (identity.c): decide, then claim. */
void w_job_continue(struct job *j);

/* decide.c */
const char *w_cmd_name(const struct job *j);
const char *w_decision_word(const struct job *j);
void w_decide(struct job *j);
/* text_fetch.c (issue 18): true when the request's text must be read from the platform
 * first (text_source "webex"); w_text_fetch reads it, decides (a failure becomes a failed
 * final) and calls then(j). */
bool w_text_pending(const struct job *j);
void w_text_fetch(struct job *j, void (*then)(struct job *));

/* approval.c (issue 16) */
/* What an allowed action needs before it runs: an approval (*ap, from the command, else the
 * rule that allowed it) or a confirmation (*confirm); false when neither (explain may show it). */
bool w_approval_needed(const struct job *j, const struct cq_approval **ap, bool *confirm);
/* A click (approve / deny / confirm / Cancel button): fills the decision; false otherwise. */
bool w_approval_decide(struct job *j);
/* Decides a click against the pending record in Redis and answers it. */
void w_approval_click(struct job *j);
/* For an allowed action that needs a confirmation or an approval: parks it (answer with
 * buttons) or, for an approved continuation, runs it; true when it took the job over. */
bool w_approval_gate(struct job *j);
/* One due-set look (lease timer): announces the records that expired. */
void w_approval_sweep(struct w_worker *w);
/* job.c: the action of an allowed, claimed request (direct call or pipeline). */
void w_run_action(struct job *j);

/* direct.c */
void w_start_call(struct job *j);
void w_direct_start(struct job *j);

/* trigger.c */
void w_pipeline_trigger_now(struct job *j);
void w_pipeline_start(struct job *j);
void w_pipeline_builtin(struct job *j);
/* subscriptions_builtins.c: subscribe / unsubscribe / subscriptions under the policy */
void w_subs_decide(struct job *j);
void w_subs_builtin(struct job *j);

#endif
