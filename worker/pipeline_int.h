/* pipeline_int.h: private to the pipeline tracker (pipeline.c, pipeline_store.c,
 * pipeline_check.c, pipeline_builtins.c): the tracker, check and owed-clean-up structs and
 * the functions one of those files calls in another. Not a public header: nothing outside
 * worker/pipeline*.c includes it (the public API is pipeline.h). */
#ifndef CQ_PIPELINE_INT_H
#define CQ_PIPELINE_INT_H

#include "pipeline.h"
#include "strutil.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gitlab.h"
#include "log.h"
#include "metrics.h"
#include "utf8.h"

#define MAX_FAILED_JOBS 5
#define MAX_TEXT 60000
#define LIST_MAX 50

struct pending_done; /* a final acknowledged by Kafka whose Redis clean-up is owed */

struct w_pipeline_tracker {
    struct cq_loop *loop;
    const struct cq_config *cfg;
    struct cq_redis *redis;
    struct cq_producer *producer;
    struct w_gitlab *gl;
    char *owner, *prefix, *due_key;
    uv_timer_t scan_timer, renew_timer;
    int open_timers;
    bool closing, scanning, rescan;
    int refs; /* async callbacks outstanding that reference the tracker */
    struct check *checks;
    int n_checks, max_checks, scan_ms, lease_ms, poll_min, poll_max, tail_lines;
    size_t tail_bytes;
    struct pending_done *owed;
    struct trig *lookups; /* triggers waiting to look their pipeline up again */
    struct w_pipeline_stats st;
};

struct pending_done {
    struct w_pipeline_tracker *t;
    char *rid, *pid, *userkey;
    struct pending_done *next;
    bool sending;
};

struct check {
    struct w_pipeline_tracker *t;
    struct check *prev, *next;
    char *rid;
    /* from the hash (owned) */
    char *req_json, *label, *rtype, *project, *web_url, *status, *reported, *state, *final;
    char *pid_s, *platform, *user_id;
    long long pid, deadline, next_progress, seq;
    int poll_ms, progress_s, timeout_s;
    bool cancel_on_timeout;
    /* this check */
    char *cur;           /* status now */
    const char *fstatus; /* final result status */
    char *ftext;         /* final text being built */
    cJSON *failed_jobs;  /* borrowed items of jobs_doc */
    cJSON *jobs_doc;
    int job_i, n_jobs;
};

/* pipeline.c: tracker references, metrics, the result and audit encoders */
void pl_unref(struct w_pipeline_tracker *t);
struct cq_gauge *pl_gauge_active(void);
void pl_count(const char *name, const char *help, const char *labels);
char *pl_encode_result(const struct check *c, const char *step, const char *status,
                       const char *text, int seq, const char *pstatus);
void pl_audit_final(struct check *c);

/* pipeline_store.c: Lua scripts, key layout, claim / lease / due-set operations */
extern const char PL_REGISTER_LUA[];
extern const char PL_FINAL_LUA[];
extern const char PL_HOOK_LUA[];
extern const char PL_LIST_LUA[];
bool pl_redis_send(struct w_pipeline_tracker *t, cq_redis_cb cb, void *op, int argc,
                   const char **argv);
bool pl_redis_bad(const redisReply *r, const struct cq_err *err);
const char *pl_why(const redisReply *r, const struct cq_err *err);
char *pl_hkey(const struct w_pipeline_tracker *t, const char *rid);
char *pl_lkey(const struct w_pipeline_tracker *t, const char *rid);
char *pl_ikey(const struct w_pipeline_tracker *t, const char *pid);
char *pl_ukey(const struct w_pipeline_tracker *t, const char *platform, const char *user);
void pl_scan(uv_timer_t *timer);
void pl_renew(uv_timer_t *timer);
void pl_reschedule(struct check *c, bool changed, bool reported, long long seq);
void pl_owe_done(struct check *c);

/* pipeline_check.c: the check loop (polling, progress, finals, log tails, hooks) */
void pl_check_free(struct check *c);
struct check *pl_check_new(struct w_pipeline_tracker *t, const char *rid, size_t len);
void pl_scan_soon(struct w_pipeline_tracker *t);
void pl_on_ignore(void *opaque, const redisReply *r, const struct cq_err *err);
void pl_check_drop(struct check *c, const char *reason);
void pl_produce_stored_final(struct check *c);
bool pl_append(char **buf, const char *add);
void pl_poll_status(struct check *c);

#endif
