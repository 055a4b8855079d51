/* platforms: the rows of the ingress's route table (platform.h). A row names what server.c
 * needs to route a request to a platform's verifier/normaliser and to answer it; the
 * verifiers themselves stay in one file per platform. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define H(name, field)                                                                             \
    { name, offsetof(struct ing_headers, field) }
#define PATH(m) offsetof(struct cq_config, ingress.m)
#define FORM "application/x-www-form-urlencoded"
#define JSON "application/json"

static const struct ing_header_slot slack_headers[] = {
    H("X-Slack-Request-Timestamp", slack_ts),
    H("X-Slack-Signature", slack_sig),
    H("X-Slack-Retry-Num", slack_retry_num),
    {NULL, 0},
};
static const struct ing_header_slot feishu_headers[] = {
    H("X-Lark-Request-Timestamp", lark_ts),
    H("X-Lark-Request-Nonce", lark_nonce),
    H("X-Lark-Signature", lark_sig),
    {NULL, 0},
};
static const struct ing_header_slot gitlab_headers[] = {
    H("X-Gitlab-Event", gitlab_event),       H("X-Gitlab-Token", gitlab_token),
    H("X-Gitlab-Instance", gitlab_instance), H("X-Gitlab-Event-UUID", gitlab_uuid),
    H("Idempotency-Key", idempotency_key),   {NULL, 0},
};

static const struct ing_header_slot dingtalk_headers[] = {
    H("timestamp", dingtalk_ts),
    H("sign", dingtalk_sign),
    {NULL, 0},
};
static const struct ing_header_slot no_headers[] = {{NULL, 0}};
static const struct ing_header_slot discord_headers[] = {
    H("X-Signature-Ed25519", discord_sig),
    H("X-Signature-Timestamp", discord_ts),
    {NULL, 0},
};
static const struct ing_header_slot webex_headers[] = {
    H("X-Spark-Signature", webex_sig),
    {NULL, 0},
};

/* The GitLab route (ing_gitlab_route) needs no clock. */
static void gitlab_hook(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                        size_t len, time_t now, struct ing_verdict *out) {
    (void)now;
    ing_gitlab_route(cfg, h, body, len, out);
}

const struct ing_route ing_routes[] = {
    {"slack", "slack_commands", PATH(slack_commands_path), FORM, slack_headers, ing_slack_command,
     ING_ANSWER_SLACK_TEXT},
    {"slack", "slack_events", PATH(slack_events_path), JSON, slack_headers, ing_slack_event,
     ING_ANSWER_EVENT},
    {"feishu", "feishu_events", PATH(feishu_events_path), JSON, feishu_headers, ing_feishu_event,
     ING_ANSWER_EVENT},
    {"gitlab", "gitlab_webhook", PATH(gitlab_webhook_path), JSON, gitlab_headers, gitlab_hook,
     ING_ANSWER_EVENT},
    /* issue 16: button clicks (interact.c); Feishu card callbacks are verified as events */
    {"slack", "slack_actions", PATH(slack_actions_path), FORM, slack_headers, ing_slack_action,
     ING_ANSWER_EVENT},
    {"feishu", "feishu_cards", PATH(feishu_cards_path), JSON, feishu_headers, ing_feishu_event,
     ING_ANSWER_EVENT},
    /* issue 18 */
    {"dingtalk", "dingtalk_events", PATH(dingtalk_events_path), JSON, dingtalk_headers,
     ing_dingtalk_event, ING_ANSWER_EVENT},
    {"mattermost", "mattermost_commands", PATH(mattermost_commands_path), FORM, no_headers,
     ing_mattermost_command, ING_ANSWER_SLACK_TEXT},
    {"discord", "discord_interactions", PATH(discord_interactions_path), JSON, discord_headers,
     ing_discord_interaction, ING_ANSWER_DISCORD},
    {"webex", "webex_events", PATH(webex_events_path), JSON, webex_headers, ing_webex_event,
     ING_ANSWER_EVENT},
};
const size_t ing_n_routes = sizeof(ing_routes) / sizeof(ing_routes[0]);
_Static_assert(sizeof(ing_routes) / sizeof(ing_routes[0]) <= ING_MAX_ROUTES,
               "raise ING_MAX_ROUTES");

const char *ing_route_path(const struct cq_config *cfg, size_t i) {
    return *(char *const *)((const char *)cfg + ing_routes[i].path_off);
}

int ing_route_find(const struct cq_config *cfg, const char *url) {
    for (size_t i = 0; i < ing_n_routes; i++) {
        const char *p = ing_route_path(cfg, i);
        if (p && strcmp(url, p) == 0) return (int)i;
    }
    return -1;
}

char *ing_route_answer(const struct ing_route *rt, enum ing_outcome out, const char *cmdline,
                       const char *req_id, const char *why, int *status, const char **ctype) {
    if (rt->answer != ING_ANSWER_DISCORD)
        return ing_answer_text(out, rt->answer == ING_ANSWER_SLACK_TEXT, cmdline, req_id, why,
                               status, ctype);
    *status = 200;
    *ctype = "application/json";
    if (out == ING_QUEUED) return strdup("{\"type\":5}");
    /* the Slack wording (NOT run / outcome unknown) moved into an ephemeral Discord message
     * ({"type":4,"data":{"content":...,"flags":64}}): the escaped text is reused as is */
    int st = 0;
    const char *ct = NULL;
    char *slack = ing_answer_text(out, true, cmdline, req_id, why, &st, &ct);
    if (!slack) return NULL;
    static const char pre[] = "{\"response_type\":\"ephemeral\",\"text\":\"";
    size_t n = strlen(slack);
    char *s = NULL;
    if (n > sizeof(pre) + 1 && strncmp(slack, pre, sizeof(pre) - 1) == 0) {
        size_t vlen = n - (sizeof(pre) - 1) - 2; /* the escaped text without quotes and } */
        size_t cap = vlen + 64;
        s = malloc(cap);
        if (s)
            snprintf(s, cap, "{\"type\":4,\"data\":{\"content\":\"%.*s\",\"flags\":64}}", (int)vlen,
                     slack + sizeof(pre) - 1);
    }
    free(slack);
    return s;
}
