/* identity_int: shared by identity.c (the lookups) and identity_text.c (what the decision,
 * whoami and audit read from the result). Private to those two files. */
#ifndef CQ_WORKER_IDENTITY_INT_H
#define CQ_WORKER_IDENTITY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "httpc.h"
#include "identity.h"
#include "identity_cache.h"

enum w_ident_status {
    WI_RESOLVING,
    WI_RESOLVED, /* e.resolved: a GitLab login (roles possibly none) */
    WI_NONE,     /* no GitLab account matches (e.reason): an unknown user */
    WI_FAILED    /* a lookup failed (fail): every command but whoami is refused */
};

struct w_ident {
    enum w_ident_status status;
    struct cq_ident_entry e; /* the facts; what is cached */
    struct cq_person person; /* WI_RESOLVED: name/gitlab_login/roles borrowed from e */
    bool from_cache;
    char *fail;                  /* WI_FAILED: the line the user reads */
    const char *platform;        /* "Slack" / "Feishu" for messages (static) */
    char *key;                   /* the Redis cache key */
    char *email;                 /* in flight only: personal data, never logged or stored */
    size_t rule;                 /* next identity.roles_from_gitlab rule to check */
    char *granted;               /* "ops/sre (maintainer)" of the rules that gave a role */
    uint64_t t0;                 /* when resolution started (bounds the wait for a slot) */
    void (*next)(struct job *j); /* the request waiting for a lookup slot */
    bool token_retried;          /* a refused Feishu token was fetched again once */
};

struct w_ident_state {
    double slots; /* token bucket of identity.lookups_per_s */
    uint64_t refill_ms;
    char *feishu_token; /* tenant_access_token, in memory only */
    long long feishu_expire_ms;
    bool feishu_fetching;
};

struct job;
struct w_worker;

/* identity.c: the steps the platform lookups (identity_platform.c) share */
void w_ident_metric_lookup(const char *lookup, const char *outcome);
int64_t w_ident_wall_ms(void);
struct w_ident_state *w_ident_state_of(struct w_worker *w); /* NULL on ENOMEM */
/* A lookup failed: nothing cached, every command but whoami refused with "cannot resolve
 * your GitLab account right now: <why>". Ends the resolution. */
void w_ident_fail(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* No GitLab account: "cannot match you to a GitLab account: <why>", cached
 * negative_ttl_s. Ends the resolution. */
void w_ident_none(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs fn(j) once a slot of identity.lookups_per_s is free (fails the job after
 * identity.timeout_ms without one). */
void w_ident_http_step(struct job *j, void (*fn)(struct job *));
/* One request with identity.timeout_ms; cb(j, resp) runs once (the job holds an op: the
 * callback ends with w_job_op_end). False (the job already failed) when not sent. */
bool w_ident_send(struct job *j, const char *method, const char *url, const char *const *hdrs,
                  const char *body, cq_http_cb cb, const char *lookup);
/* A callback's first test: false when the job was abandoned meanwhile (now left). */
bool w_ident_still_wanted(struct job *j);
/* The sentence for no answer, a timeout, 429 or 5xx from who; NULL for any other answer. */
const char *w_ident_transport(const struct cq_http_response *r, char *buf, size_t n,
                              const char *who, int timeout_ms);
/* An identifier from outside, cut to 60 bytes of [A-Za-z0-9_.-] ('?' for others). */
void w_ident_word(char *dst, size_t n, const char *src);
/* The platform gave the user's e-mail (copied): find the GitLab user. */
void w_ident_have_email(struct job *j, const char *email);

/* identity_platform.c: the e-mail from Slack users.info / the Feishu contact API */
void w_ident_slack_send(struct job *j);
void w_ident_feishu_step(struct job *j);

#endif
