/* Unit tests for worker/policy and worker/builtins: the permission matrix (person x
 * channel x command x argument value -> allowing rule or the denial line), identity
 * look-ups, help that differs per user and channel, whoami and did-you-mean. */
#include <stdlib.h>

#include "args.h"
#include "builtins.h"
#include "cqtest.h"
#include "policy.h"
#include "test_worker_fixture.h"

static char out[512];

/* "allow:<rule>" or "deny:<reason>" for user (slack id) in channel (slack id) running text. */
static const char *decide(const char *user, const char *chan, const char *word, const char *text) {
    struct w_argv av = {0};
    struct w_bound_args b = {0};
    struct cq_err err = {0};
    struct w_decision d;
    size_t used = 0;
    const struct cq_person *p = w_policy_person(&fx_cfg, "slack", user);
    const struct cq_channel *c = w_policy_channel(&fx_cfg, "slack", chan);
    if (w_args_tokenize(text, 8, 64, &av, &err) != CQ_OK) return "tokenize failed";
    const struct cq_command *cmd = w_args_resolve(&fx_cfg, word, &av, &used);
    if (!cmd) {
        w_policy_check(&fx_cfg, p, c, word, NULL, &d);
    } else {
        if (w_args_bind(cmd, &av, used, 64, &b, &err) != CQ_OK) {
            snprintf(out, sizeof(out), "invalid:%s", err.msg);
            goto out;
        }
        w_policy_check(&fx_cfg, p, c, cmd->name, &b, &d);
    }
    if (d.allowed)
        snprintf(out, sizeof(out), "allow:%s", d.rule);
    else
        snprintf(out, sizeof(out), "deny:%s", d.reason);
out:
    w_bound_args_clear(&b);
    w_argv_clear(&av);
    return out;
}

TEST(identity) {
    CHECK(w_policy_person(&fx_cfg, "slack", "UALICE") == &fx_people[0]);
    CHECK(w_policy_person(&fx_cfg, "feishu", "ou_alice") == &fx_people[0]);
    CHECK(w_policy_person(&fx_cfg, "feishu", "UALICE") == NULL); /* ids are per platform */
    CHECK(w_policy_person(&fx_cfg, "slack", "UNOBODY") == NULL);
    CHECK(w_policy_channel(&fx_cfg, "slack", "CPROD") == &fx_channels[0]);
    CHECK(w_policy_channel(&fx_cfg, "feishu", "oc_prod") == &fx_channels[3]);
    CHECK(w_policy_channel(&fx_cfg, "feishu", "CPROD") == NULL);
}

struct row {
    const char *user, *chan, *word, *text, *want;
};

TEST(permission_matrix) {
    static const struct row rows[] = {
        /* flag get: everyone, anywhere, even unknown users */
        {"UALICE", "CDEV", "flag", "get new_ui", "allow:flags-read"},
        {"UNOBODY", "CUNLISTED", "flag", "get new_ui", "allow:flags-read"},
        /* flag set: sre/dev only in #ops or #ops-prod */
        {"UBOB", "COPS", "flag", "set new_ui on", "allow:flags-write"},
        {"UALICE", "CPROD", "flag", "set new_ui off", "allow:flags-write"},
        {"UBOB", "CDEV", "flag", "set new_ui on",
         "deny:flag set is allowed for you only in #ops or #ops-prod (you: bob, roles dev, in "
         "#dev)"},
        {"UCAROL", "COPS", "flag", "set new_ui on",
         "deny:flag set is allowed only for roles sre or dev in #ops or #ops-prod (you: carol, "
         "roles release, in #ops)"},
        {"UNOBODY", "COPS", "flag", "set new_ui on",
         "deny:flag set is allowed only for roles sre or dev in #ops or #ops-prod (you are not "
         "a known user, so you have no roles)"},
        {"UDAVE", "COPS", "flag", "set x on",
         "deny:flag set is allowed only for roles sre or dev in #ops or #ops-prod (you: dave, "
         "no roles, in #ops)"},
        /* lb weight: sre in #ops-prod */
        {"UALICE", "CPROD", "lb", "weight blue 30", "allow:lb"},
        {"UALICE", "COPS", "lb", "weight blue 30",
         "deny:lb weight is allowed for you only in #ops-prod (you: alice, roles sre, in #ops)"},
        {"UBOB", "CPROD", "lb", "weight blue 30",
         "deny:lb weight is allowed only for role sre in #ops-prod (you: bob, roles dev, in "
         "#ops-prod)"},
        /* deploy: staging for dev/sre anywhere; production for release or alice in #ops-prod */
        {"UBOB", "CDEV", "deploy", "web staging", "allow:deploy-staging"},
        {"UBOB", "CDEV", "deploy", "web", "allow:deploy-staging"}, /* default env=staging */
        {"UCAROL", "CPROD", "deploy", "web production", "allow:deploy-prod"},
        {"UALICE", "CPROD", "deploy", "web production", "allow:deploy-prod"},
        {"UCAROL", "COPS", "deploy", "web production",
         "deny:deploy env=production is allowed for you only in #ops-prod (you: carol, roles "
         "release, in #ops)"},
        {"UBOB", "CPROD", "deploy", "web production",
         "deny:deploy env=production is allowed only for role release or person alice in "
         "#ops-prod (you: bob, roles dev, in #ops-prod)"},
        {"UCAROL", "CPROD", "deploy", "web staging",
         "deny:deploy env=staging is allowed only for roles dev or sre (you: carol, roles "
         "release, in #ops-prod)"},
        /* a command that exists but that no rule grants */
        {"UALICE", "CPROD", "echo", "hi",
         "deny:echo is not granted by any rule (deny by "
         "default) (you: alice, roles sre, in #ops-prod)"},
        /* invalid arguments are rejected before the policy */
        {"UALICE", "CPROD", "lb", "weight blue 130",
         "invalid:percent: 130 is above the maximum 100"},
        /* built-ins */
        {"UNOBODY", "CUNLISTED", "help", "", "allow:builtin"},
        {"UNOBODY", "CUNLISTED", "whoami", "", "allow:builtin"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *got = decide(rows[i].user, rows[i].chan, rows[i].word, rows[i].text);
        CHECK_STR(got, rows[i].want);
    }
    printf("  matrix: %zu combinations\n", sizeof(rows) / sizeof(rows[0]));
}

static struct cq_arg_match m_green[] = {{.arg = "pool", .values = L("green")}};
static struct cq_rule rules[] = {
    {.name = "lb-green",
     .roles = L("dev"),
     .commands = L("lb weight"),
     .args = m_green,
     .n_args = 1},
};

TEST(denied_values_for_allowed_user) {
    /* a rule for the user and place exists, but only for other values */
    struct cq_config c = fx_cfg;
    c.rules = rules;
    c.n_rules = 1;
    struct w_bound_args b = {0};
    struct w_argv av = {0};
    struct cq_err err = {0};
    struct w_decision d;
    CHECK(w_args_tokenize("blue 10", 8, 64, &av, &err) == CQ_OK);
    CHECK(w_args_bind(&fx_commands[2], &av, 0, 64, &b, &err) == CQ_OK);
    w_policy_check(&c, &fx_people[1], &fx_channels[1], "lb weight", &b, &d);
    CHECK(!d.allowed);
    CHECK_STR(d.reason, "lb weight pool=blue is not allowed for you here; allowed: pool=green "
                        "(you: bob, roles dev, in #ops)");
    w_policy_check(&c, &fx_people[2], &fx_channels[1], "lb weight", &b, &d);
    CHECK_STR(d.reason, "lb weight pool=blue is not allowed by any rule with these values "
                        "(you: carol, roles release, in #ops)");
    w_bound_args_clear(&b);
    w_argv_clear(&av);
}

/* "*" is every configured person, never a user nobody configured: unknown users need a
 * rule with the role "@unknown" (issue 19). */
static struct cq_rule star_rules[] = {
    {.name = "known", .roles = L("*"), .commands = L("flag get")},
    {.name = "strangers", .roles = L("@unknown"), .commands = L("deploy")},
};

TEST(star_is_known_people_only) {
    struct cq_config c = fx_cfg;
    c.rules = star_rules;
    c.n_rules = 2;
    struct w_decision d;
    w_policy_check(&c, NULL, &fx_channels[1], "flag get", NULL, &d);
    CHECK(!d.allowed);
    CHECK_STR(d.reason, "flag get is allowed only for every known user (you are not a known "
                        "user, so you have no roles)");
    w_policy_check(&c, &fx_people[1], &fx_channels[1], "flag get", NULL, &d);
    CHECK(d.allowed && strcmp(d.rule, "known") == 0);
    /* a person with no roles at all is still a known user */
    w_policy_check(&c, &fx_people[3], &fx_channels[1], "flag get", NULL, &d);
    CHECK(d.allowed);
    CHECK(!w_policy_may_run(&c, NULL, &fx_channels[1], "flag get"));
    /* "@unknown" matches users nobody configured, and only them */
    w_policy_check(&c, NULL, &fx_channels[1], "deploy", NULL, &d);
    CHECK(d.allowed && strcmp(d.rule, "strangers") == 0);
    w_policy_check(&c, &fx_people[1], &fx_channels[1], "deploy", NULL, &d);
    CHECK(!d.allowed);
    CHECK_STR(d.reason, "deploy is allowed only for unknown users (you: bob, roles dev, in "
                        "#ops)");
}

TEST(help_per_user_and_channel) {
    const struct cq_person *alice = &fx_people[0], *bob = &fx_people[1];
    char *a_prod = w_builtin_help(&fx_cfg, alice, &fx_channels[0], NULL);
    char *a_dev = w_builtin_help(&fx_cfg, alice, &fx_channels[2], NULL);
    char *b_ops = w_builtin_help(&fx_cfg, bob, &fx_channels[1], NULL);
    char *nobody = w_builtin_help(&fx_cfg, NULL, NULL, NULL);
    CHECK_CONTAINS(a_prod, "Commands you can run in #ops-prod:");
    CHECK_CONTAINS(a_prod, "`lb weight POOL PERCENT` — Set the traffic share of a pool");
    CHECK_CONTAINS(a_prod, "`flag set NAME on|off`");
    CHECK_CONTAINS(a_prod, "`deploy SERVICE [ENV] [--tag TAG]`");
    CHECK(strstr(a_prod, "echo") == NULL);
    CHECK_CONTAINS(a_dev, "`flag get NAME`");
    CHECK(strstr(a_dev, "lb weight") == NULL); /* only in #ops-prod */
    CHECK(strstr(a_dev, "flag set") == NULL);  /* only in #ops / #ops-prod */
    CHECK_CONTAINS(b_ops, "flag set");
    CHECK(strstr(b_ops, "lb weight") == NULL); /* bob is not sre */
    CHECK_CONTAINS(b_ops, "deploy");
    CHECK_CONTAINS(nobody, "`flag get NAME`");
    CHECK(strstr(nobody, "flag set") == NULL && strstr(nobody, "deploy") == NULL);
    CHECK_CONTAINS(nobody, "Commands you can run here:");
    free(a_prod);
    free(a_dev);
    free(b_ops);
    free(nobody);

    char *one = w_builtin_help(&fx_cfg, bob, &fx_channels[1], "lb weight");
    CHECK_STR(one, "• `lb weight POOL PERCENT` — Set the traffic share of a pool (you may not "
                   "run it here)");
    free(one);
    char *fam = w_builtin_help(&fx_cfg, bob, &fx_channels[1], "flag");
    CHECK_CONTAINS(fam, "flag get NAME");
    CHECK_CONTAINS(fam, "flag set NAME on|off");
    free(fam);
    char *unk = w_builtin_help(&fx_cfg, bob, &fx_channels[1], "deplyo");
    CHECK_STR(unk, "unknown command `deplyo`; did you mean `deploy`? Try `help`.");
    free(unk);
}

TEST(whoami_and_did_you_mean) {
    char *w = w_builtin_whoami(&fx_people[0], "slack", "UALICE");
    CHECK_STR(w, "You are alice, GitLab login alice.gl, roles: sre.");
    free(w);
    w = w_builtin_whoami(&fx_people[3], "slack", "UDAVE");
    CHECK_STR(w, "You are dave, GitLab login dave.gl, roles: (none).");
    free(w);
    w = w_builtin_whoami(NULL, "feishu", "ou_x");
    CHECK_CONTAINS(w, "You are not a known user (feishu user ou_x), so you have no roles.");
    free(w);
    w = w_builtin_unknown(&fx_cfg, "flg");
    CHECK_STR(w, "unknown command `flg`; did you mean `flag`? Try `help`.");
    free(w);
    w = w_builtin_unknown(&fx_cfg, "whomai");
    CHECK_STR(w, "unknown command `whomai`; did you mean `whoami`? Try `help`.");
    free(w);
    w = w_builtin_unknown(&fx_cfg, "xyzzyplugh");
    CHECK_STR(w, "unknown command `xyzzyplugh`. Try `help`.");
    free(w);
    CHECK(cq_levenshtein("kitten", "sitting") == 3);
    CHECK(cq_levenshtein("", "abc") == 3);
}

int main(void) {
    printf("worker/policy+builtins: identity, permission matrix with exact denial lines, "
           "help per user/channel, whoami, did-you-mean\n");
    RUN(identity);
    RUN(permission_matrix);
    RUN(denied_values_for_allowed_user);
    RUN(star_is_known_people_only);
    RUN(help_per_user_and_channel);
    RUN(whoami_and_did_you_mean);
    return cqtest_done();
}
