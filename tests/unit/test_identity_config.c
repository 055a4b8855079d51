/* test_identity_config: the identity: section (issue 17): defaults, a complete chain with
 * its role rules, and each mistake as "file:line:col: key: reason" (unknown or repeated
 * resolver, static not first, roles_from_gitlab without gitlab_email or rules, rules without
 * the resolver, gitlab_email without GitLab or tokens); a role given only by a
 * roles_from_gitlab rule is a known role for the policy. Also the identity cache record
 * (common/identity_cache.c): round trip, and refusal of what the worker did not write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "identity_cache.h"

#define BASE                                                                                       \
    "kafka:\n"                                                                                     \
    "  brokers: \"127.0.0.1:9092\"\n"                                                              \
    "gitlab:\n"                                                                                    \
    "  base_url: http://gitlab.example\n"                                                          \
    "  api_token: \"${CQT_ID_TOK}\"\n"                                                             \
    "people:\n"                                                                                    \
    "  alice: {slack: [UALICE], roles: [dev]}\n"

static struct cq_config *load(const char *yaml, struct cq_err *err) {
    return cq_config_load_string("t.yaml", yaml, strlen(yaml), err);
}

static void expect_error(const char *yaml, const char *want) {
    struct cq_err err = {0};
    struct cq_config *cfg = load(yaml, &err);
    CHECK(cfg == NULL);
    CHECK_STR(err.msg, want);
    CHECK(strstr(err.msg, "s3cr3t") == NULL);
    cq_config_free(cfg);
}

TEST(defaults) {
    struct cq_err err = {0};
    struct cq_config *cfg = load(BASE, &err);
    CHECK(cfg != NULL);
    if (!cfg) return;
    CHECK(cfg->identity.resolvers == NULL); /* static only */
    CHECK(cfg->identity.cache_ttl_s == 300);
    CHECK(cfg->identity.negative_ttl_s == 60);
    CHECK(cfg->identity.lookups_per_s == 20);
    CHECK(cfg->identity.timeout_ms == 5000);
    CHECK(cfg->identity.n_role_rules == 0);
    cq_config_free(cfg);
}

TEST(full_chain) {
    struct cq_err err = {0};
    const char *y = BASE "identity:\n"
                         "  resolvers: [static, gitlab_email, roles_from_gitlab]\n"
                         "  cache_ttl_s: 120\n"
                         "  gitlab_token: \"${CQT_ID_ADMIN}\"\n"
                         "  roles_from_gitlab:\n"
                         "    - {group: ops/sre, min_access: maintainer, role: sre}\n"
                         "    - {group: 12, role: dev}\n"
                         "commands:\n"
                         "  x: {mode: direct, http: {base_url: http://a.example, path: /x}}\n"
                         "policy:\n"
                         "  - {name: r, roles: [sre], commands: [x]}\n";
    struct cq_config *cfg = load(y, &err);
    CHECK(cfg != NULL);
    if (!cfg) {
        printf("  %s\n", err.msg);
        return;
    }
    CHECK(cfg->identity.cache_ttl_s == 120);
    CHECK(cfg->identity.n_role_rules == 2);
    CHECK_STR(cfg->identity.role_rules[0].group, "ops/sre");
    CHECK(CQ_ACCESS_LEVEL(cfg->identity.role_rules[0].min_access) == 40);
    CHECK_STR(cfg->identity.role_rules[0].role, "sre");
    CHECK(CQ_ACCESS_LEVEL(cfg->identity.role_rules[1].min_access) == 30); /* developer */
    CHECK_STR(cfg->identity.gitlab_token.value, "admin-s3cr3t");
    /* the admin token is redacted like every other secret */
    char *t = cq_config_redact(cfg, strdup("token admin-s3cr3t here"));
    CHECK_STR(t, "token [redacted] here");
    free(t);
    cq_config_free(cfg);
}

TEST(mistakes) {
    expect_error(BASE "identity:\n  resolvers: [static, gitlab_mail]\n",
                 "t.yaml:9:23: identity.resolvers[1]: unknown resolver 'gitlab_mail' (static, "
                 "gitlab_email, roles_from_gitlab) (did you mean 'gitlab_email'?)");
    expect_error(BASE "identity:\n  resolvers: [static, static]\n",
                 "t.yaml:9:23: identity.resolvers[1]: listed twice");
    expect_error(BASE "identity:\n  resolvers: [gitlab_email, static]\n",
                 "t.yaml:9:29: identity.resolvers: static must come first: the people: section "
                 "always wins when it names the user");
    expect_error(BASE "identity:\n  resolvers: [static, roles_from_gitlab]\n",
                 "t.yaml:9:23: identity.resolvers: roles_from_gitlab needs gitlab_email before "
                 "it (it reads the GitLab user that gitlab_email found)");
    expect_error(BASE "identity:\n  resolvers: [static, gitlab_email, roles_from_gitlab]\n",
                 "t.yaml:9:37: identity.roles_from_gitlab: resolver roles_from_gitlab is listed "
                 "but no rule says which group gives which role ({group: ops/sre, min_access: "
                 "maintainer, role: sre})");
    expect_error(BASE "identity:\n  roles_from_gitlab:\n    - {group: g, role: sre}\n",
                 "t.yaml:10:5: identity.roles_from_gitlab: rules are given but "
                 "identity.resolvers does not list roles_from_gitlab");
    expect_error(BASE "identity:\n  roles_from_gitlab:\n    - {group: g, min_access: admin, "
                      "role: sre}\n",
                 "t.yaml:10:30: identity.roles_from_gitlab[0].min_access: expected one of "
                 "guest, reporter, developer, maintainer, owner");
    expect_error("kafka:\n  brokers: \"127.0.0.1:9092\"\n"
                 "identity:\n  resolvers: [static, gitlab_email]\n",
                 "t.yaml:4:23: identity.resolvers: gitlab_email needs gitlab.base_url");
    expect_error("kafka:\n  brokers: \"127.0.0.1:9092\"\ngitlab: {base_url: http://g.example}\n"
                 "identity:\n  resolvers: [static, gitlab_email]\n",
                 "t.yaml:5:23: identity.gitlab_token: gitlab_email needs an admin token to "
                 "search users by e-mail (identity.gitlab_token, else gitlab.api_token)");
    expect_error(BASE "slack: {enabled: true, signing_secret: \"${CQT_ID_TOK}\"}\n"
                      "identity:\n  resolvers: [static, gitlab_email]\n",
                 "t.yaml:10:23: slack.bot_token: gitlab_email needs the Slack bot token "
                 "(users.info with the users:read and users:read.email scopes)");
    expect_error(BASE "identity:\n  lookups_per_s: 0\n",
                 "t.yaml:9:18: identity.lookups_per_s: 0 is below the minimum 1");
}

TEST(role_only_from_gitlab_is_known) {
    /* Without the rule, a policy naming role sre (nobody in people: has it) is an error. */
    expect_error(BASE "commands:\n  x: {mode: direct, http: {base_url: http://a.example, path: "
                      "/x}}\npolicy:\n  - {name: r, roles: [sre], commands: [x]}\n",
                 "t.yaml:11:23: policy[0].roles[0]: no person has role 'sre'");
}

TEST(cache_record) {
    char *roles[] = {"sre", "dev", NULL};
    struct cq_ident_entry e = {.resolved = true,
                               .at_ms = 1733300000123LL,
                               .ttl_s = 300,
                               .login = "dave",
                               .gitlab_id = 42,
                               .gitlab_state = "active",
                               .login_source = "gitlab_email (slack)",
                               .roles = roles,
                               .roles_source = "roles_from_gitlab: sre via ops/sre (maintainer)"};
    char *s = cq_ident_encode(&e);
    CHECK(s != NULL);
    struct cq_ident_entry d;
    struct cq_err err = {0};
    CHECK(cq_ident_decode(s, strlen(s), &d, &err) == CQ_OK);
    CHECK(d.resolved && d.at_ms == 1733300000123LL && d.ttl_s == 300 && d.gitlab_id == 42);
    CHECK_STR(d.login, "dave");
    CHECK_STR(d.roles[0], "sre");
    CHECK_STR(d.roles[1], "dev");
    CHECK(d.roles[2] == NULL);
    CHECK_STR(d.roles_source, e.roles_source);
    cq_ident_clear(&d);
    free(s);

    struct cq_ident_entry n = {.at_ms = 5, .ttl_s = 60, .reason = "no GitLab user"};
    s = cq_ident_encode(&n);
    CHECK(cq_ident_decode(s, strlen(s), &d, &err) == CQ_OK);
    CHECK(!d.resolved && d.roles == NULL);
    CHECK_STR(d.reason, "no GitLab user");
    cq_ident_clear(&d);
    free(s);

    const char *bad[] = {"",
                         "[]",
                         "{\"v\":2,\"resolved\":true,\"at\":1,\"ttl\":1,\"login\":\"x\"}",
                         "{\"v\":1,\"resolved\":true,\"at\":1,\"ttl\":1}",
                         "{\"v\":1,\"resolved\":false,\"at\":1,\"ttl\":1,\"roles\":[1]}",
                         "{\"v\":1,\"resolved\":\"yes\",\"at\":1,\"ttl\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&err, 0, sizeof err);
        CHECK(cq_ident_decode(bad[i], strlen(bad[i]), &d, &err) == CQ_EPARSE);
        CHECK(d.login == NULL && d.roles == NULL);
        CHECK_CONTAINS(err.msg, "identity cache entry");
    }
    char *key = cq_ident_key("chatops:", "slack", "U1");
    CHECK_STR(key, "chatops:ident:slack:U1");
    free(key);
    char age[32];
    cq_ident_age(42000, age);
    CHECK_STR(age, "42 s");
    cq_ident_age(300000, age);
    CHECK_STR(age, "5 min");
}

int main(void) {
    setenv("CQT_ID_TOK", "tok-s3cr3t", 1);
    setenv("CQT_ID_ADMIN", "admin-s3cr3t", 1);
    RUN(defaults);
    RUN(full_chain);
    RUN(mistakes);
    RUN(role_only_from_gitlab_is_known);
    RUN(cache_record);
    return cqtest_done();
}
