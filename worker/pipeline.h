/* pipeline: the trigger_and_wait / trigger_and_return modes. Triggers GitLab pipelines
 * with the chat context as variables, and tracks waited-for pipelines in Redis so any
 * worker can carry on when the one that triggered it dies; produces progress and exactly
 * one final result per pipeline to chatops.results. One loop, no thread per pipeline.
 *
 * Redis (P = cfg->redis.prefix):
 *   P pl:<request_id>         hash: req (request JSON with reply routing), label, rtype,
 *                             project, pid, web_url, status, reported, deadline,
 *                             next_progress, poll_ms, seq, state (waiting|final), final
 *   P pl:due                  sorted set: request_id by next check time (epoch ms)
 *   P pl:lease:<request_id>   owner lease (worker id, PX lease_ms) while a worker checks it;
 *                             renewed by that worker; claimed atomically (Lua) only when due
 *                             and unleased, so a dead worker's entries come back due once its
 *                             leases expire and another worker carries on
 *   P pl:idx:<pipeline_id>    request_id, for GitLab Pipeline Hooks (fast path)
 *   P pl:user:<platform>:<id> set of the user's in-flight request ids (`pipelines`); the
 *                             owner is gitlab:<login> when the user has a GitLab login
 * Exactly one final: the final text is stored with state=final under the lease (Lua CAS)
 * before it is produced; the entry is deleted once Kafka acknowledged it. If the worker
 * dies between those two steps, the next owner re-sends the same stored final (the
 * notifier's once-claim makes that harmless); nothing else can produce a second final.
 *
 * Wiring into worker/service.c (the calls to add):
 *   1. w_service_new, after redis, httpc and producer exist:
 *        struct w_pipeline_deps d = {.loop = loop, .cfg = cfg, .redis = w->redis,
 *            .httpc = w->httpc, .producer = w->producer, .owner_id = w->owner};
 *        w->pipelines = w_pipeline_tracker_new(&d, err);   (NULL -> setup failure)
 *      and consume cfg->kafka.topic_pipeline_events too (or a second consumer on it):
 *      for each of its messages call w_pipeline_on_hook(w->pipelines, m->payload, m->len)
 *      and then cq_consumer_done right away (the hook is only a hint; polling remains).
 *   2. pipeline_start(j): after the run-once claim moved to "calling" (as direct mode does
 *      with mark_calling), call
 *        struct w_pipeline_trigger p = {.req = &j->req, .cmd = j->cmd, .vars = &v,
 *            .gitlab_login = j->person ? j->person->gitlab_login : NULL, .label = label};
 *        rc = w_pipeline_trigger(w->pipelines, &p, on_pipeline_started, j, &err);
 *      rc != CQ_OK -> finish_with(j, "failed", strdup(err.msg)) (nothing was sent).
 *      on_pipeline_started(j, o): store and produce a result with step o->step ("ack" for a
 *      tracked wait, else "final"), status o->status, text o->text and pipeline {id,
 *      web_url, status} exactly like finish_with does for "final" (result_json needs the
 *      step and pipeline fields). For step "ack" the tracker sends progress/final later.
 *   3. builtins in decide()/execute(): `cancel REQUEST_ID` ->
 *        w_pipeline_cancel(w->pipelines, id, j->req.platform, j->req.user_id, j->person,
 *                           on_builtin_text, j, &err);
 *      `pipelines` -> w_pipeline_list(w->pipelines, j->req.platform, j->req.user_id,
 *                                      j->person, on_builtin_text, j, &err);
 *      on_builtin_text(j, status, text): finish_with(j, status, strdup(text)).
 *   4. on_shutdown: w_pipeline_tracker_free(w->pipelines) BEFORE cq_redis_free /
 *      cq_httpc_free / cq_producer_free (it stops claiming; checks in flight are dropped
 *      and their leases lapse so another worker resumes them).
 *   5. metrics: gauge cq_worker_pipelines_checking (checks in flight, = w_pipeline_active),
 *      counters cq_worker_pipeline_{triggers,finals,progress,hooks}_total.
 * Tested by tests/integration/test_pipeline.c, which drives exactly these calls. */
#ifndef CQ_WORKER_PIPELINE_H
#define CQ_WORKER_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "envelope.h"
#include "errors.h"
#include "httpc.h"
#include "kafka.h"
#include "loop.h"
#include "redis.h"
#include "template.h"

struct w_pipeline_tracker;

/* Everything borrowed; must outlive the tracker. */
struct w_pipeline_deps {
    struct cq_loop *loop;
    const struct cq_config *cfg; /* gitlab.*, worker.*, redis.prefix, kafka.topic_results */
    struct cq_redis *redis;
    struct cq_httpc *httpc;
    struct cq_producer *producer; /* results go to cfg->kafka.topic_results, key request id */
    const char *owner_id;         /* this worker's id in leases (copied) */
    int scan_ms;                  /* how often due entries are claimed; 0 = 200 */
    int max_checks;               /* pipelines checked at once; 0 = 512 */
};

/* Returns a new tracker that starts claiming due pipelines at once, or NULL with err. */
struct w_pipeline_tracker *w_pipeline_tracker_new(const struct w_pipeline_deps *d,
                                                  struct cq_err *err);

/* Stops claiming, drops checks in flight (their leases lapse: another worker resumes
 * them), and frees once its pending Redis/Kafka callbacks returned (the loop must run;
 * call it before freeing redis/httpc/producer). NULL is a no-op. */
void w_pipeline_tracker_free(struct w_pipeline_tracker *t);

/* A config reload: later checks and triggers read cfg (borrowed; the worker holds a
 * reference for as long as it is current). */
void w_pipeline_tracker_set_config(struct w_pipeline_tracker *t, const struct cq_config *cfg);

/* One trigger (all borrowed for the call only). */
struct w_pipeline_trigger {
    const struct cq_request *req;   /* id, platform, user, channel, text, reply routing */
    const struct cq_command *cmd;   /* mode and cmd->pipeline */
    const struct cq_tpl_vars *vars; /* for ref and variable templates */
    const char *gitlab_login;       /* GITLAB_USER_LOGIN; NULL = "" */
    const char *label;              /* "lb weight blue 30" for results; NULL = cmd name */
    const char *response_type;      /* for results; NULL = cmd->response_type/in_channel */
    /* Who owns it for `pipelines` and `cancel` (issue 17: "gitlab" + login, so one person is
     * one owner on every platform); NULL = req's platform and user id. */
    const char *owner_platform, *owner_id;
};

/* What the trigger led to (borrowed for the callback). */
struct w_pipeline_outcome {
    const char *step;            /* "ack": tracked, progress/final follow from the tracker;
                                    "final": nothing more comes */
    const char *status;          /* "ok" | "failed" */
    const char *text;            /* the reply */
    long long pipeline_id;       /* 0 when none was created */
    const char *web_url;         /* NULL when none */
    const char *pipeline_status; /* GitLab's status at creation, NULL when none */
};

typedef void (*w_pipeline_cb)(void *opaque, const struct w_pipeline_outcome *o);

/* The ref and the variables a trigger of p sends (pipeline_vars.c; explain shows them):
 * vars is NULL-terminated "NAME", "value", ... pairs, the chat context first. */
struct w_pipeline_vars {
    char *ref;
    char **vals; /* owned values of the configured variables */
    size_t n_vals;
    const char **vars;
};
enum cq_rc w_pipeline_vars_build(const struct w_pipeline_trigger *p, struct w_pipeline_vars *out,
                                 struct cq_err *err);
void w_pipeline_vars_clear(struct w_pipeline_vars *v);

/* Expands ref and variables, triggers, and for trigger_and_wait registers the pipeline
 * for tracking before cb runs. CQ_OK: cb runs exactly once from the loop (also with a
 * failed outcome on GitLab errors or shutdown). Otherwise (CQ_EINVAL invalid ref,
 * CQ_ECONFIG missing token/variable, CQ_ENOMEM, CQ_ESHUTDOWN) nothing was sent, cb will
 * not run and err->msg is the reply text. */
enum cq_rc w_pipeline_trigger(struct w_pipeline_tracker *t, const struct w_pipeline_trigger *p,
                              w_pipeline_cb cb, void *opaque, struct cq_err *err);

/* Fast path: a GitLab Pipeline Hook body (from chatops.pipeline-events). When it names a
 * tracked pipeline the entry becomes due now and is checked at once (by whichever worker
 * claims it first). Unknown pipelines and malformed bodies are ignored (returns false). */
bool w_pipeline_on_hook(struct w_pipeline_tracker *t, const char *json, size_t len);

/* Built-in replies: cb(opaque, status "ok"|"denied"|"invalid"|"failed", text) once. */
typedef void (*w_pipeline_text_cb)(void *opaque, const char *status, const char *text);

/* True when person holds one of cfg->worker.cancel_roles (sees and cancels all). */
bool w_pipeline_privileged(const struct cq_config *cfg, const struct cq_person *person);

/* `cancel REQUEST_ID`: allowed for the requester (same platform and user id) or a
 * privileged person; asks GitLab to cancel, and the tracker then reports `canceled`. */
enum cq_rc w_pipeline_cancel(struct w_pipeline_tracker *t, const char *request_id,
                             const char *platform, const char *user_id,
                             const struct cq_person *person, w_pipeline_text_cb cb, void *opaque,
                             struct cq_err *err);

/* `pipelines`: the in-flight pipelines this user may see (own; all when privileged),
 * at most 50 lines. */
enum cq_rc w_pipeline_list(struct w_pipeline_tracker *t, const char *platform, const char *user_id,
                           const struct cq_person *person, w_pipeline_text_cb cb, void *opaque,
                           struct cq_err *err);

/* Pipelines this tracker is checking right now (tests, metrics). */
int w_pipeline_active(const struct w_pipeline_tracker *t);

/* Counters since start (tests, bench): finals produced and acknowledged, progress sent. */
struct w_pipeline_stats {
    unsigned long triggered, finals, progress, checks, hooks, takeovers;
};
void w_pipeline_stats(const struct w_pipeline_tracker *t, struct w_pipeline_stats *out);

/* Wall-clock milliseconds (the clock of due times and deadlines shared by workers). */
long long w_pipeline_now_ms(void);

#endif
