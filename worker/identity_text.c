/* identity_text: what the rest of the worker reads from a resolution (identity.h): the person
 * the policy sees, failing closed after the decision, whoami with the source and age of every
 * fact, the owner of a user's pipelines (one person across platforms) and the audit sources.
 * Pure: reads the job and its config only. */
#include "identity_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "policy.h"
#include "service_int.h"
#include "strutil.h"

static bool static_applies(const struct cq_config *cfg) {
    if (!cfg->identity.resolvers) return true;
    for (char **r = cfg->identity.resolvers; *r; r++)
        if (strcmp(*r, "static") == 0) return true;
    return false;
}

const struct cq_person *w_identity_person(const struct job *j) {
    const struct w_ident *id = j->ident;
    if (id) return id->status == WI_RESOLVED ? &id->person : NULL;
    if (!static_applies(j->cfg)) return NULL;
    return w_policy_person(j->cfg, j->req.platform, j->req.user_id);
}

void w_identity_after_decide(struct job *j) {
    const struct w_ident *id = j->ident;
    if (!id) return;
    bool whoami = j->kind == JK_BUILTIN && j->req.command && strcmp(j->req.command, "whoami") == 0;
    if (id->status == WI_FAILED) {
        /* Fail closed: nothing but whoami runs, whatever a rule would allow. Answers about
         * the text itself (expired, invalid, unknown command) stay as they are. */
        if (whoami || j->kind == JK_EXPIRED || j->kind == JK_INVALID || j->kind == JK_UNKNOWN)
            return;
        char *t = strdup(id->fail);
        if (!t) return; /* the caller abandons a job without text */
        j->kind = JK_DENIED;
        j->status = "denied";
        j->pl_builtin = PB_NONE;
        j->dec.allowed = false;
        j->dec.rule = NULL;
        snprintf(j->dec.reason, sizeof(j->dec.reason), "%s", id->fail);
        free(j->text);
        j->text = t;
        return;
    }
    if (id->status == WI_NONE && j->kind == JK_DENIED && id->e.reason && j->text) {
        char *t = cq_strprintf("%s; %s", j->text, id->e.reason);
        if (t) {
            free(j->text);
            j->text = t;
        }
    }
}

/* "Looked up 12 s ago (cached); looked up again in 4 min." */
static char *freshness(const struct w_ident *id) {
    char age[32], left[32];
    long long now = w_ident_wall_ms(), ago = now - id->e.at_ms;
    cq_ident_age(ago, age);
    cq_ident_age((long long)id->e.ttl_s * 1000 - ago, left);
    if (!id->from_cache) return cq_strprintf("Looked up just now; kept for %s.", left);
    return cq_strprintf("Looked up %s ago (cached); looked up again in %s.", age, left);
}

static char *join_roles(char **roles) {
    size_t n = 1;
    for (char **r = roles; r && *r; r++)
        n += strlen(*r) + 2;
    char *s = malloc(n + 8);
    if (!s) return NULL;
    s[0] = '\0';
    for (char **r = roles; r && *r; r++) {
        if (r != roles) strcat(s, ", ");
        strcat(s, *r);
    }
    if (!s[0]) strcpy(s, "(none)");
    return s;
}

char *w_identity_whoami(const struct job *j) {
    const struct w_ident *id = j->ident;
    const char *p = j->req.platform ? j->req.platform : "?",
               *u = j->req.user_id ? j->req.user_id : "?";
    char *base = NULL, *fresh = NULL, *roles = NULL, *out = NULL;
    if (!id) {
        base = w_builtin_whoami(j->person, p, u);
        if (!base || !j->person) return base;
        out = cq_strprintf("%s (Login and roles from people: in the chatops config.)", base);
        goto out;
    }
    if (id->status == WI_FAILED || id->status == WI_RESOLVING) {
        out = cq_strprintf("You are %s user %s; %s (nothing is cached: every command but "
                           "whoami is refused until the lookup works).",
                           p, u, id->fail ? id->fail : "cannot resolve your GitLab account");
        goto out;
    }
    if (!(fresh = freshness(id))) goto out;
    if (id->status == WI_NONE) {
        out = cq_strprintf("You are not a known user (%s user %s), so you have no roles: %s. %s", p,
                           u, id->e.reason ? id->e.reason : "no GitLab account", fresh);
        goto out;
    }
    if (!(roles = join_roles(id->e.roles))) goto out;
    out = cq_strprintf(
        "You are %s, GitLab login %s (user #%lld%s%s), roles: %s. Login from %s; "
        "roles from %s. %s",
        id->e.login, id->e.login, id->e.gitlab_id,
        id->e.gitlab_state && strcmp(id->e.gitlab_state, "active") != 0 ? ", " : "",
        id->e.gitlab_state && strcmp(id->e.gitlab_state, "active") != 0 ? id->e.gitlab_state : "",
        roles, id->e.login_source ? id->e.login_source : "gitlab_email",
        id->e.roles_source ? id->e.roles_source : "nowhere", fresh);
out:
    free(base);
    free(fresh);
    free(roles);
    return out;
}

void w_identity_owner(const struct job *j, const char **platform, const char **user_id) {
    const struct cq_person *p = j->person;
    if (p && p->gitlab_login && p->gitlab_login[0]) {
        *platform = "gitlab";
        *user_id = p->gitlab_login;
        return;
    }
    *platform = j->req.platform;
    *user_id = j->req.user_id;
}

const char *w_identity_source(const struct job *j) {
    const struct w_ident *id = j->ident;
    if (!id) return j->person ? "static" : NULL;
    switch (id->status) {
    case WI_RESOLVED:
        return id->from_cache ? "gitlab_email (cached)" : "gitlab_email";
    case WI_NONE:
        return "gitlab_email: no GitLab account";
    default:
        return "gitlab_email: lookup failed";
    }
}

const char *w_identity_roles_source(const struct job *j) {
    const struct w_ident *id = j->ident;
    if (!id) return j->person ? "static" : NULL;
    return id->status == WI_RESOLVED ? id->e.roles_source : NULL;
}
