/* Unit tests of ingress/webex.c: the X-Spark-Signature vector of PROTOCOLS.md byte for byte,
 * bad or missing signatures refused with 401, the bot's own messages and other resources
 * acknowledged and dropped, and a messages/created notification normalised into a request
 * whose text the worker reads (text_source "webex", message id, room, thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "crypto.h"
#include "ingress.h"

#define VEC_SECRET "webex-webhook-secret"
#define VEC_SIG "fef1aad3c179ce5d4608cd6985ec07b5fd7351b1"
static const char vec_body[] =
    "{\"id\":\"Y2lzY29zcGFyazovL3VzL1dFQkhPT0svMTIz\",\"resource\":\"messages\",\"event\":"
    "\"created\",\"data\":{\"id\":\"Y2lzY29zcGFyazovL3VzL01FU1NBR0UvNDU2\",\"roomId\":"
    "\"Y2lzY29zcGFyazovL3VzL1JPT00vNzg5\",\"personEmail\":\"alice@example.com\"}}";

static struct cq_config *cfg;

static void run(const char *body, const char *sig, struct ing_verdict *v) {
    char s[41];
    if (!sig && cq_hmac_sha1_hex(VEC_SECRET, body, strlen(body), s) == CQ_OK) sig = s;
    struct ing_headers h = {.webex_sig = sig};
    ing_webex_event(cfg, &h, body, strlen(body), 0, v);
}

TEST(vector) {
    char s[41];
    CHECK(cq_hmac_sha1_hex(VEC_SECRET, vec_body, strlen(vec_body), s) == CQ_OK);
    CHECK_STR(s, VEC_SIG);
    struct ing_verdict v;
    /* the vector's body has no personId: signed, so a readable 400 */
    run(vec_body, VEC_SIG, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
    /* upper-case hex is the same signature */
    run(vec_body, "FEF1AAD3C179CE5D4608CD6985EC07B5FD7351B1", &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
}

TEST(rejections) {
    struct ing_verdict v;
    struct ing_headers none = {0};
    ing_webex_event(cfg, &none, vec_body, strlen(vec_body), 0, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "missing signature header");
    ing_verdict_clear(&v);
    run(vec_body, "fef1aad3c179ce5d4608cd6985ec07b5fd7351b2", &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad signature");
    ing_verdict_clear(&v);
    run(vec_body, "fef1", &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
}

static const char msg[] =
    "{\"id\":\"wh1\",\"resource\":\"messages\",\"event\":\"created\",\"orgId\":\"org1\","
    "\"data\":{\"id\":\"msg-1\",\"roomId\":\"room-1\",\"roomType\":\"group\",\"personId\":"
    "\"p-alice\",\"personEmail\":\"alice@example.com\",\"parentId\":\"msg-0\"}}";

TEST(message) {
    struct ing_verdict v;
    run(msg, NULL, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.platform, "webex");
    CHECK_STR(v.req.text_source, "webex");
    CHECK_STR(v.req.command, "help"); /* what a worker that cannot read the text answers */
    CHECK_STR(v.req.text, "");
    CHECK_STR(v.req.user_id, "p-alice");
    CHECK_STR(v.req.user_name, "alice@example.com");
    CHECK_STR(v.req.channel_id, "room-1");
    CHECK_STR(v.req.tenant, "org1");
    CHECK_STR(v.req.dedupe_key, "webex:msg-1");
    CHECK_STR(v.req.reply.chat_id, "room-1");
    CHECK_STR(v.req.reply.message_id, "msg-1");
    CHECK_STR(v.req.reply.thread_ts, "msg-0");
    CHECK_STR(v.req.reply.conversation_type, "group");
    CHECK(v.body && strstr(v.body, "\"text_source\":\"webex\""));
    ing_verdict_clear(&v);
    /* not in a thread: the thread starts at the message itself */
    const char *top = "{\"resource\":\"messages\",\"event\":\"created\",\"data\":{\"id\":\"m2\","
                      "\"roomId\":\"r\",\"roomType\":\"direct\",\"personId\":\"p\"}}";
    run(top, NULL, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.reply.thread_ts, "m2");
    CHECK_STR(v.req.reply.conversation_type, "direct");
    ing_verdict_clear(&v);
}

TEST(ignored) {
    struct ing_verdict v;
    const char *own = "{\"resource\":\"messages\",\"event\":\"created\",\"data\":{\"id\":\"m\","
                      "\"roomId\":\"r\",\"personId\":\"p-bot\"}}";
    run(own, NULL, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
    const char *own_mail = "{\"resource\":\"messages\",\"event\":\"created\",\"data\":{\"id\":"
                           "\"m\",\"roomId\":\"r\",\"personId\":\"p\",\"personEmail\":"
                           "\"ops@webex.bot\"}}";
    run(own_mail, NULL, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
    const char *room = "{\"resource\":\"rooms\",\"event\":\"created\",\"data\":{\"id\":\"r\"}}";
    run(room, NULL, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
}

int main(void) {
    struct cq_err err = {0};
    setenv("CQT_WX_SECRET", VEC_SECRET, 1);
    const char *y = "kafka: {brokers: \"127.0.0.1:1\"}\n"
                    "webex: {enabled: true, webhook_secret: \"${CQT_WX_SECRET}\",\n"
                    "  bot_person_id: p-bot, bot_email: ops@webex.bot}\n";
    cfg = cq_config_load_string("test.yaml", y, strlen(y), &err);
    if (!cfg) cqtest_fatal("config: %s", err.msg);
    RUN(vector);
    RUN(rejections);
    RUN(message);
    RUN(ignored);
    cq_config_free(cfg);
    return cqtest_done();
}
