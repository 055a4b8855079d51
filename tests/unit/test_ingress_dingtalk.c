/* Unit tests of ingress/dingtalk.c: the sign vector of PROTOCOLS.md (ts 1577262236757,
 * secret "this is a secret") byte for byte, each way to fail the check (missing, bad, stale
 * by more than an hour), and a text message normalised into the envelope with its reply
 * route (sessionWebhook, expiry, conversation type, staff id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "crypto.h"
#include "ingress.h"

#define VEC_TS "1577262236757"
#define VEC_SECRET "this is a secret"
#define VEC_SIGN "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="
#define VEC_NOW 1577262236 /* seconds */

static struct cq_config *cfg;

static const char msg[] =
    "{\"conversationId\":\"cidOps==\",\"atUsers\":[{\"dingtalkId\":\"$:LWCP_v1:$bot\"}],"
    "\"chatbotCorpId\":\"dingcorp\",\"chatbotUserId\":\"$:LWCP_v1:$bot\",\"msgId\":\"msgA1\","
    "\"senderNick\":\"Alice\",\"isAdmin\":false,\"senderStaffId\":\"staff-alice\","
    "\"sessionWebhookExpiredTime\":1577265836757,\"createAt\":1577262236000,"
    "\"senderCorpId\":\"dingcorp\",\"conversationType\":\"2\",\"senderId\":\"$:LWCP_v1:$al\","
    "\"conversationTitle\":\"ops-prod\",\"isInAtList\":true,\"sessionWebhook\":"
    "\"https://oapi.dingtalk.com/robot/sendBySession?session=abc\",\"text\":{\"content\":"
    "\" deploy web production\"},\"robotCode\":\"dingbot\",\"msgtype\":\"text\"}";

static void run(const char *body, const char *ts, const char *sign, time_t now,
                struct ing_verdict *v) {
    struct ing_headers h = {.dingtalk_ts = ts, .dingtalk_sign = sign};
    ing_dingtalk_event(cfg, &h, body, strlen(body), now, v);
}

TEST(sign_vector) {
    char *s = cq_dingtalk_sign(VEC_SECRET, VEC_TS);
    CHECK_STR(s, VEC_SIGN);
    free(s);
}

TEST(message) {
    struct ing_verdict v;
    run(msg, VEC_TS, VEC_SIGN, VEC_NOW + 5, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.platform, "dingtalk");
    CHECK_STR(v.req.command, "deploy");
    CHECK_STR(v.req.text, "web production");
    CHECK_STR(v.req.user_id, "staff-alice");
    CHECK_STR(v.req.user_name, "Alice");
    CHECK_STR(v.req.channel_id, "cidOps==");
    CHECK_STR(v.req.channel_name, "ops-prod");
    CHECK_STR(v.req.dedupe_key, "dingtalk:msgA1");
    CHECK_STR(v.req.reply.response_url,
              "https://oapi.dingtalk.com/robot/sendBySession?session=abc");
    CHECK_STR(v.req.reply.chat_id, "cidOps==");
    CHECK_STR(v.req.reply.message_id, "msgA1");
    CHECK_STR(v.req.reply.user_id, "staff-alice");
    CHECK_STR(v.req.reply.conversation_type, "group");
    CHECK_STR(v.req.reply.expires_at, "2019-12-25T09:23:56.757Z");
    /* the envelope carries the new reply fields through encode/decode */
    struct cq_request back = {0};
    struct cq_err err = {0};
    CHECK(v.body && cq_request_decode(v.body, strlen(v.body), 0, &back, &err) == CQ_OK);
    CHECK_STR(back.reply.expires_at, "2019-12-25T09:23:56.757Z");
    CHECK_STR(back.reply.conversation_type, "group");
    CHECK_STR(back.reply.user_id, "staff-alice");
    CHECK_STR(back.platform, "dingtalk");
    cq_request_clear(&back);
    ing_verdict_clear(&v);
    /* a re-sent callback: the same dedupe key */
    run(msg, VEC_TS, VEC_SIGN, VEC_NOW + 6, &v);
    CHECK_STR(v.req.dedupe_key, "dingtalk:msgA1");
    ing_verdict_clear(&v);
}

TEST(rejections) {
    struct ing_verdict v;
    run(msg, NULL, VEC_SIGN, VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "missing signature headers");
    ing_verdict_clear(&v);
    run(msg, VEC_TS, NULL, VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
    run(msg, VEC_TS, "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CB=", VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad signature");
    ing_verdict_clear(&v);
    /* one hour is the window: 3600 s late passes, 3601 s does not, either way */
    run(msg, VEC_TS, VEC_SIGN, VEC_NOW + 3600, &v);
    CHECK(v.kind == ING_REQUEST);
    ing_verdict_clear(&v);
    run(msg, VEC_TS, VEC_SIGN, VEC_NOW + 3602, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "stale timestamp");
    ing_verdict_clear(&v);
    run(msg, VEC_TS, VEC_SIGN, VEC_NOW - 3602, &v);
    CHECK_STR(v.reason, "stale timestamp");
    ing_verdict_clear(&v);
    run(msg, "15772622x6757", VEC_SIGN, VEC_NOW, &v);
    CHECK_STR(v.reason, "bad timestamp");
    ing_verdict_clear(&v);
    /* signed but broken: a readable 400 */
    run("{\"msgtype\":\"text\"}", VEC_TS, VEC_SIGN, VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
    run("[1,2", VEC_TS, VEC_SIGN, VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
    /* not text: acknowledged, nothing produced */
    run("{\"msgtype\":\"picture\",\"msgId\":\"m2\"}", VEC_TS, VEC_SIGN, VEC_NOW, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
}

TEST(direct_and_no_staff_id) {
    struct ing_verdict v;
    const char *one = "{\"conversationId\":\"cidDM\",\"msgId\":\"m3\",\"senderId\":\"$:ext\","
                      "\"conversationType\":\"1\",\"text\":{\"content\":\"help\"},"
                      "\"msgtype\":\"text\"}";
    run(one, VEC_TS, VEC_SIGN, VEC_NOW, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.user_id, "$:ext");
    CHECK(v.req.reply.user_id == NULL);
    CHECK(v.req.reply.response_url == NULL);
    CHECK_STR(v.req.reply.conversation_type, "direct");
    ing_verdict_clear(&v);
}

TEST(not_enabled) {
    struct cq_err err = {0};
    const char *y = "kafka: {brokers: \"127.0.0.1:1\"}\n";
    struct cq_config *bare = cq_config_load_string("t.yaml", y, strlen(y), &err);
    struct ing_verdict v;
    struct ing_headers h = {.dingtalk_ts = VEC_TS, .dingtalk_sign = VEC_SIGN};
    CHECK(bare != NULL);
    if (!bare) return;
    ing_dingtalk_event(bare, &h, msg, strlen(msg), VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 404);
    ing_verdict_clear(&v);
    cq_config_free(bare);
    /* enabled without its secret: the config refuses to load, naming the key */
    const char *y2 = "kafka: {brokers: \"127.0.0.1:1\"}\ndingtalk: {enabled: true}\n";
    CHECK(cq_config_load_string("t.yaml", y2, strlen(y2), &err) == NULL);
    CHECK_CONTAINS(err.msg, "dingtalk.app_secret");
}

int main(void) {
    struct cq_err err = {0};
    setenv("CQT_DT_SECRET", VEC_SECRET, 1);
    const char *y = "kafka: {brokers: \"127.0.0.1:1\"}\n"
                    "dingtalk: {enabled: true, app_secret: \"${CQT_DT_SECRET}\"}\n";
    cfg = cq_config_load_string("test.yaml", y, strlen(y), &err);
    if (!cfg) cqtest_fatal("config: %s", err.msg);
    RUN(sign_vector);
    RUN(message);
    RUN(rejections);
    RUN(direct_and_no_staff_id);
    RUN(not_enabled);
    cq_config_free(cfg);
    return cqtest_done();
}
