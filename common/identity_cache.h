/* identity_cache: the record the worker keeps in Redis for a resolved chat user (issue 17)
 * and chatopsctl reads: key "<prefix>ident:<platform>:<user_id>", value one JSON object
 * ("v":1) with the GitLab login and id, the roles, where each fact came from, when it was
 * resolved and for how long it is reused; or, for a negative entry, the one-line reason no
 * GitLab account matched. Never an e-mail address or a token. */
#ifndef CQ_IDENTITY_CACHE_H
#define CQ_IDENTITY_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

#define CQ_IDENT_VERSION 1
#define CQ_IDENT_MAX_LEN 16384 /* an entry larger than this is refused on decode */

struct cq_ident_entry {
    bool resolved;       /* true: login etc.; false: a negative entry (reason) */
    long long at_ms;     /* when it was resolved (epoch ms) */
    int ttl_s;           /* how long it is reused from then */
    char *login;         /* GitLab username */
    long long gitlab_id; /* GitLab user id */
    char *gitlab_state;  /* GitLab's user state: active, blocked, deactivated, ... */
    char *login_source;  /* "gitlab_email (slack users.info)" */
    char **roles;        /* NULL-terminated, NULL = none */
    char *roles_source;  /* "roles_from_gitlab: ops/sre maintainer" ..., or why none */
    char *reason;        /* negative entries: the line the user reads */
};

/* "<prefix>ident:<platform>:<user_id>". Returns a new string (caller frees), NULL on ENOMEM. */
char *cq_ident_key(const char *prefix, const char *platform, const char *user_id);

/* One JSON object (caller frees), NULL on ENOMEM. */
char *cq_ident_encode(const struct cq_ident_entry *e);

/* Fills *out (cleared first) from json[0..len). CQ_EPARSE with err for anything else
 * (too long, not JSON, another version, a field of the wrong type). */
enum cq_rc cq_ident_decode(const char *json, size_t len, struct cq_ident_entry *out,
                           struct cq_err *err);

/* Frees what e holds and zeroes it; NULL is a no-op. */
void cq_ident_clear(struct cq_ident_entry *e);

/* "42 s", "3 min", "2 h": an age or a remaining time for people. out needs 32 bytes. */
void cq_ident_age(long long ms, char out[32]);

#endif
