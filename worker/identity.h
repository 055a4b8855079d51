/* identity: who a chat user is (issue 17). A resolver chain in the configured order
 * (identity.resolvers): `static` (people:, always wins when it names the user),
 * `gitlab_email` (the user's e-mail from Slack users.info or the Feishu contact API, then
 * the one GitLab user with that e-mail) and `roles_from_gitlab` (roles from group
 * membership). An asynchronous step before the decision: lookups go through httpc on the
 * loop, bounded per second, cached in Redis (identity_cache.h) with a TTL and a negative
 * TTL, and fail closed: a lookup that fails denies every command but whoami with one line.
 * The decision then sees one person record whatever the platform. */
#ifndef CQ_WORKER_IDENTITY_H
#define CQ_WORKER_IDENTITY_H

#include <stdbool.h>

#include "config.h"

struct job;
struct w_ident;
struct w_ident_state;

/* Starts resolving j's user when people: does not name them and gitlab_email is
 * configured for the platform. True: resolution goes on asynchronously (the job holds an op)
 * and ends in w_job_continue(j), or w_job_abandon when the worker stops meanwhile. False:
 * nothing to resolve (people: names them, no resolver applies, the request is too old):
 * the caller continues at once. */
bool w_identity_start(struct job *j);

/* The person the decision uses: people: (when static applies), else the resolved GitLab
 * user (person name = GitLab login, roles from GitLab), else NULL (unknown user). Borrowed
 * from the config or the job. Pure. */
const struct cq_person *w_identity_person(const struct job *j);

/* After w_decide: fail closed (a failed lookup denies everything but whoami with its
 * reason; nothing runs), and a refusal of a user no GitLab account matched says why. */
void w_identity_after_decide(struct job *j);

/* whoami: who, GitLab login, roles, where each fact came from and how old the cached entry
 * is. Returns a new text (caller frees), NULL on ENOMEM. */
char *w_identity_whoami(const struct job *j);

/* Who owns j's pipelines for `pipelines` and `cancel`: ("gitlab", login) when the user has
 * a GitLab login (the same person on every platform), else (platform, user id). Borrowed. */
void w_identity_owner(const struct job *j, const char **platform, const char **user_id);

/* For audit records: where the GitLab login and the roles came from; NULL when unknown. */
const char *w_identity_source(const struct job *j);
const char *w_identity_roles_source(const struct job *j);

/* NULL is a no-op. */
void w_ident_free(struct w_ident *id);
void w_identity_state_free(struct w_ident_state *s);

#endif
