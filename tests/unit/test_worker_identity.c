/* Unit tests for what the decision reads from an identity resolution (worker/identity_text.c):
 * a failed lookup never falls back to more rights (even a command every unknown user may run
 * is refused, with the reason; whoami still answers); a user no GitLab account matches is an
 * unknown user whose refusal says why; a resolved user is the person the policy sees; whoami
 * names the sources and the cache age; pipelines belong to gitlab:<login> on every platform;
 * the audit sources. Pure: no Redis, Kafka or network (the lookups are in test_identity.py). */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "identity_int.h"
#include "service_int.h"
#include "test_worker_fixture.h"

static struct cq_config cfg;
static struct w_worker worker;
static struct job job;
static char now[32];

static void reset(void) {
    w_argv_clear(&job.argv);
    w_bound_args_clear(&job.args);
    free(job.text);
    w_ident_free(job.ident);
    memset(&job, 0, sizeof(job));
}

/* A resolution in the given state (resolved: login dave, roles as given). */
static struct w_ident *ident(enum w_ident_status st, const char *role) {
    struct w_ident *id = calloc(1, sizeof(*id));
    id->status = st;
    id->platform = "Slack";
    id->e.at_ms = w_ident_wall_ms() - 42000;
    id->e.ttl_s = 300;
    if (st == WI_FAILED)
        id->fail = strdup("cannot resolve your GitLab account right now: GitLab answered 503; "
                          "try again");
    id->from_cache = st == WI_NONE; /* as if read from the negative cache */
    if (st == WI_NONE)
        id->e.reason = strdup("cannot match you to a GitLab account: no GitLab user has the "
                              "e-mail address of your Slack account; ask an admin");
    if (st == WI_RESOLVED) {
        id->e.resolved = true;
        id->e.login = strdup("dave");
        id->e.gitlab_id = 42;
        id->e.gitlab_state = strdup("active");
        id->e.login_source = strdup("gitlab_email (the e-mail of your Slack account, users.info)");
        id->e.roles_source = strdup("roles_from_gitlab: sre via ops/sre (maintainer)");
        if (role) {
            id->e.roles = calloc(2, sizeof(char *));
            id->e.roles[0] = strdup(role);
        }
        id->person.name = id->person.gitlab_login = id->e.login;
        id->person.roles = id->e.roles;
        id->from_cache = true;
    }
    return id;
}

/* Decides `word text` of a Slack user in chan, with resolution id (NULL: none), as job.c does. */
static struct job *decide(struct w_ident *id, const char *user, const char *chan, const char *word,
                          const char *text) {
    reset();
    cfg = fx_cfg;
    cfg.worker.max_request_age_s = 3600;
    worker.cfg = &cfg;
    job.w = &worker;
    job.cfg = &cfg;
    job.ident = id;
    cq_now_rfc3339(now);
    job.req.id = "req-1";
    job.req.platform = "slack";
    job.req.user_id = (char *)user;
    job.req.channel_id = (char *)chan;
    job.req.command = (char *)word;
    job.req.text = (char *)text;
    job.req.received_at = now;
    w_decide(&job);
    w_identity_after_decide(&job);
    return &job;
}

TEST(failed_lookup_never_falls_back) {
    /* flag get is open to every unknown user (flags-read: @unknown), yet refused. */
    struct job *j = decide(ident(WI_FAILED, NULL), "UNEW", "CDEV", "flag", "get x");
    CHECK(j->kind == JK_DENIED);
    CHECK_STR(j->status, "denied");
    CHECK_STR(j->text, "cannot resolve your GitLab account right now: GitLab answered 503; try "
                       "again");
    CHECK(!j->dec.allowed && j->dec.rule == NULL);
    j = decide(ident(WI_FAILED, NULL), "UNEW", "CDEV", "pipelines", "");
    CHECK(j->kind == JK_DENIED && j->pl_builtin == PB_NONE); /* nothing reaches the tracker */
    j = decide(ident(WI_FAILED, NULL), "UNEW", "CDEV", "help", "");
    CHECK(j->kind == JK_DENIED);
    j = decide(ident(WI_FAILED, NULL), "UNEW", "CDEV", "whoami", "");
    CHECK(j->kind == JK_BUILTIN);
    CHECK_STR(j->status, "ok");
    CHECK_CONTAINS(j->text, "You are slack user UNEW; cannot resolve your GitLab account right "
                            "now: GitLab answered 503");
    j = decide(ident(WI_FAILED, NULL), "UNEW", "CDEV", "flg", "");
    CHECK(j->kind == JK_UNKNOWN); /* about the text, not about rights */
    CHECK_STR(w_identity_source(j), "gitlab_email: lookup failed");
    CHECK(w_identity_roles_source(j) == NULL);
}

TEST(no_gitlab_account_is_an_unknown_user) {
    struct job *j = decide(ident(WI_NONE, NULL), "UNEW", "CPROD", "lb", "weight blue 30");
    CHECK(j->kind == JK_DENIED);
    CHECK_CONTAINS(j->text, "(you are not a known user, so you have no roles); cannot match you "
                            "to a GitLab account: no GitLab user has the e-mail address of your "
                            "Slack account");
    j = decide(ident(WI_NONE, NULL), "UNEW", "CDEV", "flag", "get x");
    CHECK(j->kind == JK_ACTION); /* what any unknown user may run, no more */
    CHECK_STR(j->dec.rule, "flags-read");
    j = decide(ident(WI_NONE, NULL), "UNEW", "CDEV", "whoami", "");
    CHECK_CONTAINS(j->text, "You are not a known user (slack user UNEW), so you have no roles: "
                            "cannot match you to a GitLab account");
    CHECK_CONTAINS(j->text, "Looked up 42 s ago (cached); looked up again in 4 min.");
}

TEST(resolved_user_is_the_person) {
    struct job *j = decide(ident(WI_RESOLVED, "sre"), "UNEW", "CPROD", "lb", "weight blue 30");
    CHECK(j->kind == JK_ACTION);
    CHECK_STR(j->dec.rule, "lb");
    CHECK_STR(j->person->name, "dave");
    CHECK_STR(j->person->gitlab_login, "dave");
    const char *p, *u;
    w_identity_owner(j, &p, &u);
    CHECK_STR(p, "gitlab");
    CHECK_STR(u, "dave");
    CHECK_STR(w_identity_source(j), "gitlab_email (cached)");
    CHECK_STR(w_identity_roles_source(j), "roles_from_gitlab: sre via ops/sre (maintainer)");
    j = decide(ident(WI_RESOLVED, NULL), "UNEW", "CPROD", "lb", "weight blue 30");
    CHECK(j->kind == JK_DENIED); /* removed from the group: no role */
    CHECK_CONTAINS(j->text, "(you: dave, no roles, in #ops-prod)");
    j = decide(ident(WI_RESOLVED, "sre"), "UNEW", "CPROD", "whoami", "");
    CHECK_STR(j->text, "You are dave, GitLab login dave (user #42), roles: sre. Login from "
                       "gitlab_email (the e-mail of your Slack account, users.info); roles from "
                       "roles_from_gitlab: sre via ops/sre (maintainer). Looked up 42 s ago "
                       "(cached); looked up again in 4 min.");
}

TEST(static_and_unknown) {
    struct job *j = decide(NULL, "UALICE", "CPROD", "whoami", "");
    CHECK_STR(j->text, "You are alice, GitLab login alice.gl, roles: sre. (Login and roles from "
                       "people: in the chatops config.)");
    const char *p, *u;
    w_identity_owner(j, &p, &u);
    CHECK_STR(p, "gitlab"); /* the same owner from Slack and Feishu */
    CHECK_STR(u, "alice.gl");
    CHECK_STR(w_identity_source(j), "static");
    CHECK_STR(w_identity_roles_source(j), "static");
    j = decide(NULL, "UNOBODY", "CPROD", "whoami", "");
    CHECK_CONTAINS(j->text, "You are not a known user (slack user UNOBODY)");
    w_identity_owner(j, &p, &u);
    CHECK_STR(p, "slack");
    CHECK_STR(u, "UNOBODY");
    CHECK(w_identity_source(j) == NULL);
    /* resolvers without static: people: is not used */
    job.req.user_id = "UALICE";
    CHECK(w_identity_person(&job) != NULL);
    cfg.identity.resolvers = L("gitlab_email");
    CHECK(w_identity_person(&job) == NULL);
    cfg.identity.resolvers = NULL;
}

int main(void) {
    RUN(failed_lookup_never_falls_back);
    RUN(no_gitlab_account_is_an_unknown_user);
    RUN(resolved_user_is_the_person);
    RUN(static_and_unknown);
    reset();
    return cqtest_done();
}
