/* A hand-built config shared by the worker unit tests (the seed's scenarios: feature
 * flags, LB weight, deploy) so they run without the YAML loader. */
#ifndef TEST_WORKER_FIXTURE_H
#define TEST_WORKER_FIXTURE_H

#include <limits.h>

#include "config.h"

#define L(...) ((char *[]){__VA_ARGS__, NULL})

/* what the loader gives an argument without int bounds */
#define UNBOUNDED .min = LLONG_MIN, .max = LLONG_MAX
/* the flag name both flag commands take */
#define FLAG_NAME                                                                                  \
    { .name = "name", .required = true, .regex = "[a-z][a-z0-9_]*", UNBOUNDED, .max_len = 40 }

static struct cq_arg_spec flag_get_args[] = {FLAG_NAME};
static struct cq_arg_spec flag_set_args[] = {
    FLAG_NAME,
    {.name = "value",
     .type = CQ_ARG_ENUM,
     .required = true,
     .enum_values = L("on", "off"),
     UNBOUNDED},
};
static struct cq_arg_spec lb_args[] = {
    {.name = "pool",
     .type = CQ_ARG_ENUM,
     .required = true,
     .enum_values = L("blue", "green"),
     UNBOUNDED},
    {.name = "percent", .type = CQ_ARG_INT, .required = true, .min = 0, .max = 100},
};
static struct cq_arg_spec deploy_args[] = {
    {.name = "service", .required = true, .regex = "[a-z]+", UNBOUNDED},
    {.name = "env",
     .type = CQ_ARG_ENUM,
     .required = false,
     .default_value = "staging",
     .enum_values = L("staging", "production"),
     UNBOUNDED},
    {.name = "tag", .flag = "tag", UNBOUNDED, .max_len = 12},
};
static struct cq_arg_spec echo_args[] = {
    {.name = "text", .required = true, UNBOUNDED},
    {.name = "n", .flag = "n", .type = CQ_ARG_INT, .min = 1, .max = 5},
};

static struct cq_command fx_commands[] = {
    {.name = "flag get",
     .description = "Show a feature flag",
     .usage = "flag get NAME",
     .mode = CQ_MODE_DIRECT,
     .args = flag_get_args,
     .n_args = 1},
    {.name = "flag set",
     .description = "Turn a feature flag on or off",
     .usage = "flag set NAME on|off",
     .mode = CQ_MODE_DIRECT,
     .args = flag_set_args,
     .n_args = 2},
    {.name = "lb weight",
     .description = "Set the traffic share of a pool",
     .usage = "lb weight POOL PERCENT",
     .mode = CQ_MODE_TRIGGER_AND_WAIT,
     .args = lb_args,
     .n_args = 2},
    {.name = "deploy",
     .description = "Deploy a service",
     .mode = CQ_MODE_TRIGGER_AND_RETURN,
     .args = deploy_args,
     .n_args = 3},
    {.name = "echo", .description = "Echo", .mode = CQ_MODE_DIRECT, .args = echo_args, .n_args = 2},
};

static struct cq_person fx_people[] = {
    {.name = "alice",
     .gitlab_login = "alice.gl",
     .slack_ids = L("UALICE"),
     .feishu_ids = L("ou_alice"),
     .roles = L("sre")},
    {.name = "bob", .gitlab_login = "bob.gl", .slack_ids = L("UBOB"), .roles = L("dev")},
    {.name = "carol", .gitlab_login = "carol.gl", .slack_ids = L("UCAROL"), .roles = L("release")},
    {.name = "dave", .gitlab_login = "dave.gl", .slack_ids = L("UDAVE")},
};

static struct cq_channel fx_channels[] = {
    {.name = "ops-prod", .platform = "slack", .id = "CPROD", .environment = "production"},
    {.name = "ops", .platform = "slack", .id = "COPS"},
    {.name = "dev", .platform = "slack", .id = "CDEV"},
    {.name = "ops-prod", .platform = "feishu", .id = "oc_prod"},
};

static struct cq_arg_match m_staging[] = {{.arg = "env", .values = L("staging")}};
static struct cq_arg_match m_prod[] = {{.arg = "env", .values = L("production")}};

static struct cq_rule fx_rules[] = {
    {.name = "flags-read", .roles = L("*", "@unknown"), .commands = L("flag get")},
    {.name = "flags-write",
     .roles = L("sre", "dev"),
     .commands = L("flag set"),
     .channels = L("ops", "ops-prod")},
    {.name = "lb", .roles = L("sre"), .commands = L("lb weight"), .channels = L("#ops-prod")},
    {.name = "deploy-staging",
     .roles = L("dev", "sre"),
     .commands = L("deploy"),
     .args = m_staging,
     .n_args = 1},
    {.name = "deploy-prod",
     .roles = L("release"),
     .people = L("alice"),
     .commands = L("deploy"),
     .channels = L("ops-prod"),
     .args = m_prod,
     .n_args = 1},
};

static struct cq_named_secret fx_secrets[] = {
    {.name = "gitlab_token", .secret = {.ref = "${GL_TOKEN}", .value = "s3cr3t-token"}},
    {.name = "evil", .secret = {.ref = "${EVIL}", .value = "x\r\nInjected: 1"}},
};

static struct cq_config fx_cfg = {
    .limits = {.max_args = 8, .max_arg_len = 64, .max_text = 4000},
    .secrets = fx_secrets,
    .n_secrets = 2,
    .commands = fx_commands,
    .n_commands = sizeof(fx_commands) / sizeof(fx_commands[0]),
    .people = fx_people,
    .n_people = sizeof(fx_people) / sizeof(fx_people[0]),
    .channels = fx_channels,
    .n_channels = sizeof(fx_channels) / sizeof(fx_channels[0]),
    .rules = fx_rules,
    .n_rules = sizeof(fx_rules) / sizeof(fx_rules[0]),
};

#endif
