/* Unit tests of button clicks (issue 16): ingress/interact.c (Slack block_actions verified
 * before parsing, Feishu card.action.trigger through ing_feishu_event), the optional "action"
 * part of a request and "buttons" part of a result (common/envelope.c), and their rendering
 * (notifier/buttons.c through slack_format.c and feishu_format.c). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "crypto.h"
#include "envelope.h"
#include "feishu_format.h"
#include "httpc.h"
#include "ingress.h"
#include "slack_format.h"
#include "strutil.h"

#define NOW 1700000000
#define RID "0b3c1d2e-aaaa-4bbb-8ccc-000011112222"

static struct cq_config *cfg;

static struct cq_config *load(const char *yaml) {
    struct cq_err err = {0};
    struct cq_config *c = cq_config_load_string("test.yaml", yaml, strlen(yaml), &err);
    if (!c) cqtest_fatal("config: %s", err.msg);
    return c;
}

/* form body payload=<json>, signed at ts with secret into sig */
static char *action_body(const char *action_id, const char *value) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"type\":\"block_actions\",\"user\":{\"id\":\"UBOB\",\"username\":\"bob\"},"
             "\"team\":{\"id\":\"T1\"},\"channel\":{\"id\":\"COPS\",\"name\":\"ops\"},"
             "\"container\":{\"type\":\"message\",\"message_ts\":\"1700000000.000100\"},"
             "\"trigger_id\":\"tr1\",\"response_url\":\"https://hooks.slack.test/a/1\","
             "\"actions\":[{\"action_id\":\"%s\",\"value\":\"%s\",\"type\":\"button\","
             "\"action_ts\":\"1700000001.000200\"}]}",
             action_id, value);
    char *esc = cq_url_escape(json, strlen(json));
    char *body = malloc(strlen(esc) + 16);
    sprintf(body, "payload=%s", esc);
    free(esc);
    return body;
}

static void post(const char *body, const char *secret, long ts, struct ing_verdict *v) {
    char t[32], sig[68];
    snprintf(t, sizeof t, "%ld", ts);
    cq_slack_signature(secret, t, body, strlen(body), sig);
    struct ing_headers h = {.slack_ts = t, .slack_sig = sig};
    ing_slack_action(cfg, &h, body, strlen(body), NOW, v);
}

TEST(slack_block_actions) {
    struct ing_verdict v;
    char *body = action_body("chatops_approve", RID);
    post(body, "sekret", NOW, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.command, "approve");
    CHECK_STR(v.req.text, RID);
    CHECK_STR(v.req.action.name, "approve");
    CHECK_STR(v.req.action.request_id, RID);
    CHECK_STR(v.req.action.message, "1700000000.000100");
    CHECK_STR(v.req.user_id, "UBOB");
    CHECK_STR(v.req.user_name, "bob");
    CHECK_STR(v.req.reply.response_url, "https://hooks.slack.test/a/1");
    CHECK_STR(v.req.dedupe_key, "slack:act:UBOB:1700000001.000200:approve");
    struct cq_request back = {0};
    CHECK(v.body && cq_request_decode(v.body, strlen(v.body), 0, &back, NULL) == CQ_OK);
    CHECK_STR(back.action.name, "approve");
    CHECK_STR(back.action.request_id, RID);
    cq_request_clear(&back);
    ing_verdict_clear(&v);

    /* forged, stale, unsigned: refused before parsing */
    post(body, "not-the-secret", NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad signature");
    ing_verdict_clear(&v);
    post(body, "sekret", NOW - 301, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "stale timestamp");
    ing_verdict_clear(&v);
    struct ing_headers none = {0};
    ing_slack_action(cfg, &none, body, strlen(body), NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
    free(body);

    /* a link button, another app's action: acknowledged, nothing produced */
    body = action_body("open_pipeline", "x");
    post(body, "sekret", NOW, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
    free(body);
    /* our action with a value that is no request id */
    body = action_body("chatops_deny", "a b");
    post(body, "sekret", NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
    free(body);
    /* signed but no payload */
    post("x=1", "sekret", NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    CHECK_STR(v.reason, "missing payload");
    ing_verdict_clear(&v);
}

static char *card_event(const char *name, const char *rid, const char *token) {
    return cq_strprintf(
        "{\"schema\":\"2.0\",\"header\":{\"event_id\":\"ev-1\",\"event_type\":"
        "\"card.action.trigger\",\"token\":\"%s\",\"tenant_key\":\"t1\"},\"event\":{"
        "\"operator\":{\"open_id\":\"ou_bob\"},\"action\":{\"tag\":\"button\",\"value\":{"
        "\"chatops\":\"%s\",\"request_id\":\"%s\"}},\"context\":{\"open_message_id\":\"om_1\","
        "\"open_chat_id\":\"oc_ops\"}}}",
        token, name, rid);
}

TEST(feishu_card_action) {
    struct ing_verdict v;
    struct ing_headers h = {0};
    uint8_t key[32];
    size_t n = 0;
    char ts[32], sig[65];
    char *plain = card_event("deny", RID, "vtok");
    cq_sha256("ek-123", 6, key);
    uint8_t *ct = cq_aes256cbc_encrypt(key, (const uint8_t *)plain, strlen(plain), &n);
    char *b64 = cq_base64_encode(ct, n);
    char *body = cq_strprintf("{\"encrypt\":\"%s\"}", b64);
    snprintf(ts, sizeof ts, "%d", NOW);
    cq_feishu_signature(ts, "nonce1", "ek-123", body, strlen(body), sig);
    h.lark_ts = ts;
    h.lark_nonce = "nonce1";
    h.lark_sig = sig;
    ing_feishu_event(cfg, &h, body, strlen(body), NOW, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.platform, "feishu");
    CHECK_STR(v.req.command, "deny");
    CHECK_STR(v.req.action.request_id, RID);
    CHECK_STR(v.req.user_id, "ou_bob");
    CHECK_STR(v.req.reply.message_id, "om_1");
    CHECK_STR(v.req.dedupe_key, "feishu:ev-1");
    ing_verdict_clear(&v);
    /* a bad signature: the same 401 as every failure before authentication */
    h.lark_sig = "00";
    ing_feishu_event(cfg, &h, body, strlen(body), NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.public_reason, "unauthorized");
    ing_verdict_clear(&v);
    free(plain);
    free(ct);
    free(b64);
    free(body);
}

TEST(buttons_rendered) {
    struct cq_result r = {.request_id = RID,
                          .step = "progress",
                          .status = "ok",
                          .platform = "slack",
                          .text = "needs approval",
                          .seq = 900000,
                          .buttons_kind = "approval",
                          .buttons_request_id = RID};
    struct cq_err err = {0};
    char *json = cq_result_encode(&r, &err);
    CHECK_CONTAINS(json, "\"buttons\":{\"kind\":\"approval\",\"request_id\":\"" RID "\"}");
    struct cq_result back = {0};
    CHECK(json && cq_result_decode(json, strlen(json), 0, &back, &err) == CQ_OK);
    CHECK_STR(back.buttons_kind, "approval");
    cq_result_clear(&back);
    free(json);
    struct ntf_slack_msg_opts o = {.target = NTF_SLACK_RESPONSE_URL, .replace_original = true};
    char *s = ntf_slack_format(&r, &o, NULL, &err);
    CHECK_CONTAINS(s, "\"action_id\":\"chatops_approve\"");
    CHECK_CONTAINS(s, "\"action_id\":\"chatops_deny\"");
    CHECK_CONTAINS(s, "\"value\":\"" RID "\"");
    free(s);
    r.platform = "feishu";
    r.buttons_kind = "confirm";
    const char *type = NULL;
    char *c = ntf_feishu_content(&r, 0, &type, NULL, &err);
    CHECK_STR(type, "interactive");
    CHECK_CONTAINS(c, "\"chatops\":\"confirm\"");
    CHECK_CONTAINS(c, "\"chatops\":\"cancel\"");
    free(c);
    /* "done": the outcome that replaces them: no buttons, but still a card on Feishu (so it
     * can update the card in place) */
    r.buttons_kind = "done";
    c = ntf_feishu_content(&r, 0, &type, NULL, &err);
    CHECK_STR(type, "interactive");
    CHECK(c && !strstr(c, "chatops"));
    free(c);
    r.platform = "slack";
    s = ntf_slack_format(&r, &o, NULL, &err);
    CHECK(s && !strstr(s, "chatops_") && !strstr(s, "\"actions\""));
    free(s);
    /* an unknown kind is refused by the encoder */
    r.buttons_kind = "launch";
    json = cq_result_encode(&r, &err);
    CHECK(json == NULL);
    free(json);
}

#define CMD_BASE                                                                                   \
    "kafka: {brokers: \"127.0.0.1:1\"}\n"                                                          \
    "people: {bob: {slack: [UBOB], roles: [sre]}}\n"                                               \
    "commands:\n"                                                                                  \
    "  purge:\n"                                                                                   \
    "    mode: direct\n"                                                                           \
    "    http: {base_url: \"http://127.0.0.1:1\", path: /p}\n"

TEST(config_keys) {
    struct cq_err err = {0};
    const char *ok = CMD_BASE "    approval: {roles: [sre]}\n"
                              "policy:\n"
                              "  - {name: r, roles: [sre], commands: [purge], confirm: true,\n"
                              "     approval: {roles: [sre], count: 2, expires_s: 60}}\n";
    struct cq_config *c = cq_config_load_string("t.yaml", ok, strlen(ok), &err);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_STR(c->commands[0].approval.roles[0], "sre");
    CHECK(c->commands[0].approval.count == 1 && c->commands[0].approval.expires_s == 3600);
    CHECK(!c->commands[0].confirm);
    CHECK(c->rules[0].confirm && c->rules[0].approval.count == 2);
    CHECK(c->rules[0].approval.expires_s == 60);
    CHECK(c->worker.confirm_expires_s == 600);
    CHECK_STR(c->ingress.slack_actions_path, "/slack/actions");
    CHECK_STR(c->ingress.feishu_cards_path, "/feishu/cards");
    cq_config_free(c);
    const char *bad = CMD_BASE "    approval: {roles: [sre], count: 0}\n";
    c = cq_config_load_string("t.yaml", bad, strlen(bad), &err);
    CHECK(c == NULL);
    CHECK_CONTAINS(err.msg, "t.yaml:7:37: commands.purge.approval.count");
    CHECK_CONTAINS(err.msg, "count");
    cq_config_free(c);
    const char *noroles = CMD_BASE "    approval: {count: 1}\n";
    c = cq_config_load_string("t.yaml", noroles, strlen(noroles), &err);
    CHECK(c == NULL);
    CHECK_CONTAINS(err.msg, "roles");
    cq_config_free(c);
}

int main(void) {
    setenv("CQT_SLACK", "sekret", 1);
    setenv("CQT_FS_VT", "vtok", 1);
    setenv("CQT_FS_EK", "ek-123", 1);
    cfg = load("kafka: {brokers: \"127.0.0.1:1\"}\n"
               "slack: {enabled: true, signing_secret: \"${CQT_SLACK}\"}\n"
               "feishu: {enabled: true, verification_token: \"${CQT_FS_VT}\",\n"
               "  encrypt_key: \"${CQT_FS_EK}\", bot_open_id: ou_bot}\n");
    RUN(slack_block_actions);
    RUN(feishu_card_action);
    RUN(buttons_rendered);
    RUN(config_keys);
    cq_config_free(cfg);
    return cqtest_done();
}
