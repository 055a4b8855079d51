/* gitlab: the GitLab REST calls the pipeline modes need (trigger, pipeline status, jobs,
 * job trace, cancel) on the worker's curl multi. Form bodies are built with every name and
 * value percent-encoded whole, so no argument text can add a variable or a field.
 * Reads and cancel are retried on 429/5xx and transport errors on loop timers with backoff
 * within a bound; the trigger, which is not idempotent, only on 429 or when it was never
 * sent (its other failures are marked ambiguous: GitLab may have created the pipeline). */
#ifndef CQ_WORKER_GITLAB_H
#define CQ_WORKER_GITLAB_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "errors.h"
#include "httpc.h"
#include "loop.h"

struct w_gitlab;

/* The answer to one call. Everything is borrowed for the callback only. */
struct w_gitlab_reply {
    enum cq_rc rc;    /* CQ_OK: an HTTP answer arrived (any status); CQ_ETIMEOUT;
                         CQ_EHTTP (no answer); CQ_ESHUTDOWN (w_gitlab_free) */
    long status;      /* HTTP status, 0 without an answer */
    const char *body; /* never NULL */
    size_t body_len;
    const cJSON *json;  /* parsed body when it is JSON, else NULL */
    const char *errmsg; /* transport error text, "" otherwise */
    int attempts;       /* how many times the request was sent */
    bool ambiguous;     /* a non-idempotent call (the trigger) may have been carried out:
                           it reached GitLab, or may have, and no usable answer came back
                           (5xx or 408, timeout, reset, shutdown while in flight) */
};

typedef void (*w_gitlab_cb)(void *opaque, const struct w_gitlab_reply *r);

/* base_url: "http(s)://host[:port][/prefix]" (API is base_url + "/api/v4/...").
 * api_token: the PRIVATE-TOKEN for status/jobs/trace/cancel (copied, never logged; may be
 * NULL when only triggers are used). loop and httpc are borrowed and must outlive it.
 * max_attempts (<= 0: 4) bounds the sends of one call when GitLab answers 429/5xx;
 * backoff_ms (<= 0: 500) is the first delay, doubling, or Retry-After when given
 * (capped at 10 s). timeout_ms (<= 0: 10000) bounds each send. Returns a new client. */
struct w_gitlab *w_gitlab_new(struct cq_loop *loop, struct cq_httpc *httpc, const char *base_url,
                              const char *api_token, int max_attempts, int backoff_ms,
                              int timeout_ms, struct cq_err *err);

/* Every call: cb runs exactly once from the loop (never inside the call) when it returns
 * CQ_OK; any other return means cb will not run (err says why). Strings are copied. */

/* POST /projects/:project/trigger/pipeline with form token, ref, variables[NAME]=value.
 * vars: NULL-terminated "NAME", "value", ... pairs (may be NULL). project is a numeric id
 * or a "group/name" path (encoded here). */
enum cq_rc w_gitlab_trigger(struct w_gitlab *g, const char *project, const char *token,
                            const char *ref, const char *const *vars, w_gitlab_cb cb, void *opaque,
                            struct cq_err *err);
/* GET /projects/:project/pipelines/:id */
enum cq_rc w_gitlab_pipeline(struct w_gitlab *g, const char *project, long long id, w_gitlab_cb cb,
                             void *opaque, struct cq_err *err);
/* GET /projects/:project/pipelines/:id/jobs (scope: NULL = all, else e.g. "failed") */
enum cq_rc w_gitlab_jobs(struct w_gitlab *g, const char *project, long long id, const char *scope,
                         w_gitlab_cb cb, void *opaque, struct cq_err *err);
/* GET /projects/:project/jobs/:job_id/trace (plain text, up to 8 MiB) */
enum cq_rc w_gitlab_trace(struct w_gitlab *g, const char *project, long long job_id, w_gitlab_cb cb,
                          void *opaque, struct cq_err *err);
/* POST /projects/:project/pipelines/:id/cancel (idempotent: retried like a read) */
enum cq_rc w_gitlab_cancel(struct w_gitlab *g, const char *project, long long id, w_gitlab_cb cb,
                           void *opaque, struct cq_err *err);

/* GET /projects/:project/pipelines?ref=REF&source=trigger&updated_after=T&order_by=id
 * &sort=desc&per_page=N: the ref's triggered pipelines updated after T (epoch ms), newest
 * first (per_page 1..100, else 20). Finds a pipeline whose trigger answer was lost. */
enum cq_rc w_gitlab_pipelines_since(struct w_gitlab *g, const char *project, const char *ref,
                                    long long updated_after_ms, int per_page, w_gitlab_cb cb,
                                    void *opaque, struct cq_err *err);
/* GET /projects/:project/pipelines/:id/variables: [{"variable_type","key","value"}] */
enum cq_rc w_gitlab_pipeline_variables(struct w_gitlab *g, const char *project, long long id,
                                       w_gitlab_cb cb, void *opaque, struct cq_err *err);

/* Calls that have not called back yet. */
int w_gitlab_inflight(const struct w_gitlab *g);

/* Cancels everything pending (callbacks with CQ_ESHUTDOWN) and frees. NULL is a no-op. */
void w_gitlab_free(struct w_gitlab *g);

/* A config reload: later calls send api_token (copied; NULL = none). Calls in flight keep
 * what they sent. Loop thread. CQ_EINVAL (nothing changed) for a line break, CQ_ENOMEM. */
enum cq_rc w_gitlab_set_token(struct w_gitlab *g, const char *api_token);

/* ---- pure helpers (unit-tested) ---- */

/* The trigger form body: "token=..&ref=..&variables%5BNAME%5D=value..." with every name and
 * value percent-encoded whole. Returns a new string (caller frees) or NULL on ENOMEM. */
char *w_gitlab_trigger_form(const char *token, const char *ref, const char *const *vars);

/* A git ref a user may name: 1..255 bytes of [A-Za-z0-9._/-], not starting with '-' or
 * '/', no "..", "//", "@{", not ending with '/', '.' or ".lock". */
bool w_gitlab_ref_valid(const char *ref);

/* A sentence for a failed call ("GitLab rejected the trigger token (HTTP 401): ..."),
 * what = "trigger the pipeline" etc. Returns a new string; caller frees. */
char *w_gitlab_error_text(const struct w_gitlab_reply *r, const char *what);

/* The last max_lines lines of a job log, at most max_bytes bytes (cut at a line start when
 * possible, else on a character with "…" in front), with ANSI escape sequences, GitLab
 * section markers, CRs and NULs removed and invalid UTF-8 replaced by U+FFFD (the result
 * always fits an envelope). Returns a new string; caller frees. */
char *w_gitlab_log_tail(const char *log, size_t len, int max_lines, size_t max_bytes);

#endif
