/* events: the worker's GitLab event router (issue 15). A second consumer group
 * (kafka.groups.events) on kafka.topics.events, in the worker process beside the request
 * consumer: it shares the worker's Redis connection and producer, but its own group means its
 * offsets and lag never hold back commands (docs/architecture.md, "GitLab events").
 * events.c: consumer, serial queue, Redis steps, produce, commit;
 * events_match.c: what an event says (facts), subscription matching, the message text. */
#ifndef CQ_WORKER_EVENTS_H
#define CQ_WORKER_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "errors.h"
#include "kafka.h"
#include "loop.h"
#include "redis.h"

/* ---- facts: what one hook says (pure, events_match.c) ---- */

#define W_EV_MAX_LABELS 16
#define W_EV_MAX_FAILED 10

struct w_ev_job {
    char *name, *url;
};

struct w_ev_facts {
    const char *kind;  /* event kind (cq_event_kinds) */
    char *project;     /* path_with_namespace */
    char *project_url; /* project web_url */
    long long project_id;
    char *ref;         /* branch or tag (refs/heads/ and refs/tags/ stripped) */
    char *status;      /* pipeline/job/deployment status; MR state */
    char *environment; /* deployment (or job) environment */
    char *action;      /* MR / issue / release action */
    char *labels[W_EV_MAX_LABELS];
    size_t n_labels;
    long long object_id;   /* pipeline id, MR iid, job id, deployment id, issue iid: 0 = none */
    char *title;           /* commit title / MR title / release name / issue title / note */
    char *author;          /* user name */
    char *url;             /* the object's page */
    char *source, *target; /* MR branches */
    char *tag;             /* release / tag push */
    char *notes;           /* release notes excerpt */
    long long duration_s;
    int commits;                             /* push: total_commits_count */
    struct w_ev_job failed[W_EV_MAX_FAILED]; /* failed jobs of a pipeline */
    size_t n_failed;
    const char *transition; /* "fixed" / "broken" / NULL, set by the router */
};

/* Reads a hook body of kind into f (caller calls w_ev_facts_clear). CQ_EPARSE with a reason
 * when the body is not an object or lacks the project; CQ_ENOMEM. */
enum cq_rc w_ev_facts_parse(const char *kind, const char *body, size_t len, struct w_ev_facts *f,
                            struct cq_err *err);
void w_ev_facts_clear(struct w_ev_facts *f);

/* A subscription's match (config or chat): every list NULL = anything. */
struct w_ev_match {
    char *const *projects, *const *kinds, *const *statuses, *const *refs, *const *environments,
                                                                              *const *actions,
                                                                                  *const *labels;
};
bool w_ev_matches(const struct w_ev_match *m, const struct w_ev_facts *f);
/* Project glob: fnmatch, or a plain group path that prefixes the project ("ops" ~ "ops/web"). */
bool w_ev_project_match(const char *pattern, const char *project);

/* The one-line headline and the detail text of a notification (new strings, caller frees),
 * all text cut to the given budget on a character boundary. NULL on ENOMEM. */
char *w_ev_headline(const struct w_ev_facts *f);
char *w_ev_text(const struct w_ev_facts *f, size_t max_bytes);
/* "ok" or "failed" for the result record. */
const char *w_ev_result_status(const struct w_ev_facts *f);
/* Whether the event's messages are updated in place (one per pipeline, MR, deployment,
 * job) rather than posted once. */
bool w_ev_updates_in_place(const struct w_ev_facts *f);

/* ---- the router (events.c) ---- */

struct w_events;

struct w_events_deps {
    struct cq_loop *loop;
    const struct cq_config *cfg; /* the current one; w_events_set_config on a reload */
    struct cq_redis *redis;      /* borrowed from the worker */
    struct cq_producer *producer;
};

/* Joins kafka.groups.events on kafka.topics.events. NULL with err. */
struct w_events *w_events_new(const struct w_events_deps *d, struct cq_err *err);
void w_events_set_config(struct w_events *e, const struct cq_config *cfg);
/* Drain: stop fetching; what is queued stays on Kafka (not committed). */
void w_events_pause(struct w_events *e);
/* Events taken and not yet finished. */
size_t w_events_inflight(const struct w_events *e);
/* Commits what is done, leaves the group and frees (loop thread). NULL is a no-op. */
void w_events_free(struct w_events *e);

#endif
