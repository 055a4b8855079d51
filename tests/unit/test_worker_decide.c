/* Unit tests for worker/decide: the decision step of a request on its own (issue 12: no
 * C test reached it): age (expired, unreadable receive time), size, unknown commands and
 * command families, built-ins, denial before and after argument binding, bad arguments
 * and an allowed action with its bound arguments. Pure: no Redis, Kafka or network. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "service_int.h"
#include "test_worker_fixture.h"

static struct cq_config cfg;
static struct w_worker worker;
static struct job job;
static char now[32];

/* Decides `word text` sent by user (slack id) in chan (slack id), received at received. */
static struct job *decide_at(const char *user, const char *chan, const char *word, const char *text,
                             const char *received) {
    w_argv_clear(&job.argv);
    w_bound_args_clear(&job.args);
    free(job.text);
    memset(&job, 0, sizeof(job));
    cfg = fx_cfg;
    cfg.worker.max_request_age_s = 3600;
    worker.cfg = &cfg;
    job.w = &worker;
    job.cfg = &cfg; /* a job decides with the config it started with (reload) */
    job.req.id = "req-1";
    job.req.platform = "slack";
    job.req.user_id = (char *)user;
    job.req.channel_id = (char *)chan;
    job.req.command = (char *)word;
    job.req.text = (char *)text;
    job.req.received_at = (char *)received;
    w_decide(&job);
    return &job;
}

static struct job *decide(const char *user, const char *chan, const char *word, const char *text) {
    cq_now_rfc3339(now);
    return decide_at(user, chan, word, text, now);
}

TEST(expired_and_unreadable_age) {
    struct job *j = decide_at("UALICE", "CPROD", "flag", "get x", "2020-01-01T00:00:00Z");
    CHECK(j->kind == JK_EXPIRED);
    CHECK_STR(j->status, "failed");
    CHECK_CONTAINS(j->text, "`flag` expired: it was received ");
    CHECK_CONTAINS(j->text, "it was NOT run (req req-1)");
    CHECK(j->received_ms > 0);
    CHECK(j->argv.n == 0); /* not even tokenized */
    j = decide_at("UALICE", "CPROD", "flag", "get x", "yesterday");
    CHECK(j->kind == JK_EXPIRED);
    CHECK_STR(j->text, "`flag` was NOT run: its receive time is unreadable, so its age is "
                       "unknown (req req-1)");
    CHECK(j->received_ms == 0);
}

TEST(too_long_and_untokenizable) {
    struct job *j = decide("UBOB", "CDEV", "deploy", "web");
    CHECK(j->kind == JK_ACTION);
    cfg.limits.max_text = 3; /* "€€€€" below is 4 characters (12 bytes) */
    w_argv_clear(&job.argv);
    w_bound_args_clear(&job.args);
    free(job.text);
    job.text = NULL;
    j->req.text = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";
    w_decide(j);
    CHECK(j->kind == JK_INVALID);
    CHECK_STR(j->status, "invalid");
    CHECK_STR(j->text, "the command text is longer than 3 characters");
    j = decide("UALICE", "CPROD", "echo", "\"unterminated");
    CHECK(j->kind == JK_INVALID);
    CHECK_STR(j->status, "invalid");
    CHECK(j->text && j->text[0]);
}

TEST(unknown_and_family) {
    struct job *j = decide("UALICE", "CPROD", "flg", "");
    CHECK(j->kind == JK_UNKNOWN);
    CHECK_STR(j->status, "invalid");
    CHECK_STR(j->text, "unknown command `flg`; did you mean `flag`? Try `help`.");
    CHECK_STR(w_decision_word(j), "invalid");
    j = decide("UALICE", "CPROD", "flag", "");
    CHECK(j->kind == JK_UNKNOWN);
    CHECK_CONTAINS(j->text, "`flag` needs a sub-command:\n");
    CHECK_CONTAINS(j->text, "flag get");
    CHECK_STR(w_cmd_name(j), "flag");
}

TEST(builtins) {
    struct job *j = decide("UALICE", "CPROD", "whoami", "");
    CHECK(j->kind == JK_BUILTIN);
    CHECK_STR(j->status, "ok");
    CHECK_CONTAINS(j->text, "You are alice, GitLab login alice.gl");
    CHECK(j->dec.allowed);
    CHECK_STR(w_decision_word(j), "allowed");
    j = decide("UALICE", "CPROD", "cancel", "");
    CHECK(j->kind == JK_BUILTIN);
    CHECK_STR(j->status, "invalid");
    CHECK_STR(j->text, "usage: cancel REQUEST_ID (`pipelines` lists them)");
    CHECK(j->pl_builtin == PB_NONE);
    j = decide("UALICE", "CPROD", "cancel", "abc");
    CHECK(j->pl_builtin == PB_CANCEL);
    CHECK_STR(j->status, "ok");
    j = decide("UBOB", "CDEV", "pipelines", "");
    CHECK(j->pl_builtin == PB_LIST);
    j = decide("UBOB", "CDEV", "help", "deploy");
    CHECK(j->kind == JK_BUILTIN);
    CHECK_CONTAINS(j->text, "deploy");
}

TEST(denied_before_and_after_binding) {
    /* dave has no roles: flag set is never his, whatever the arguments (even bad ones). */
    struct job *j = decide("UDAVE", "COPS", "flag", "set x maybe");
    CHECK(j->kind == JK_DENIED);
    CHECK_STR(j->status, "denied");
    CHECK_STR(j->text, j->dec.reason);
    CHECK(!j->dec.allowed);
    CHECK(j->args.cmd == NULL); /* said before judging arguments */
    CHECK_STR(w_decision_word(j), "denied");
    /* bob may deploy to staging, not to production: denied on the bound values. */
    j = decide("UBOB", "CDEV", "deploy", "web production");
    CHECK(j->kind == JK_DENIED);
    CHECK(j->args.cmd == &fx_commands[3]);
    CHECK_CONTAINS(j->text, "deploy");
    CHECK_STR(j->text, j->dec.reason);
}

TEST(bad_arguments_and_allowed_action) {
    struct job *j = decide("UALICE", "CPROD", "lb", "weight blue 200");
    CHECK(j->kind == JK_INVALID);
    CHECK_STR(j->status, "invalid");
    CHECK_CONTAINS(j->text, "\nusage: ");
    j = decide("UBOB", "CDEV", "deploy", "web --tag v1");
    CHECK(j->kind == JK_ACTION);
    CHECK(j->status == NULL);
    CHECK(j->text == NULL);
    CHECK(j->cmd == &fx_commands[3]);
    CHECK(j->dec.allowed);
    CHECK_STR(j->dec.rule, "deploy-staging");
    CHECK_STR(j->input, "web --tag v1");
    CHECK_STR(j->args.values[0], "web");
    CHECK_STR(j->args.values[1], "staging"); /* the default */
    CHECK_STR(j->args.values[2], "v1");
    CHECK(j->person == &fx_people[1]);
    CHECK(j->channel == &fx_channels[2]);
}

int main(void) {
    printf("worker/decide: age, size, unknown, built-ins, denial before/after binding, "
           "bad arguments, allowed action\n");
    RUN(expired_and_unreadable_age);
    RUN(too_long_and_untokenizable);
    RUN(unknown_and_family);
    RUN(builtins);
    RUN(denied_before_and_after_binding);
    RUN(bad_arguments_and_allowed_action);
    decide("UALICE", "CPROD", "flag", ""); /* frees the last one */
    w_argv_clear(&job.argv);
    w_bound_args_clear(&job.args);
    free(job.text);
    return cqtest_done();
}
