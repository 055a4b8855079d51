/* Unit tests of ingress/discord.c: the Ed25519 vector of PROTOCOLS.md (RFC 8032 test key 1,
 * timestamp 1700000000, body {"type":1}) byte for byte, PING answered PONG, a bad, missing or
 * stale signature refused with 401, an application command normalised with its options
 * flattened (sub-commands, configured argument order, flags, quoting) and its reply route
 * (interaction webhook, 15-minute expiry, application id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "crypto.h"
#include "ingress.h"
#include "platform.h"

#define SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define PUB "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define VEC_TS "1700000000"
#define VEC_SIG                                                                                    \
    "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f0"   \
    "8604da16f54624f38a6bc0614e4dc13cd47f0f"
#define NOW 1700000000

static struct cq_config *cfg;

static void run_signed(const char *body, time_t now, struct ing_verdict *v) {
    char sig[129];
    if (cq_ed25519_sign_hex(SEED, VEC_TS, body, strlen(body), sig) != CQ_OK) sig[0] = '\0';
    struct ing_headers h = {.discord_ts = VEC_TS, .discord_sig = sig};
    ing_discord_interaction(cfg, &h, body, strlen(body), now, v);
}

TEST(vector_and_ping) {
    char sig[129], pub[65];
    CHECK(cq_ed25519_sign_hex(SEED, VEC_TS, "{\"type\":1}", 10, sig) == CQ_OK);
    CHECK_STR(sig, VEC_SIG);
    CHECK(cq_ed25519_public_hex(SEED, pub) == CQ_OK);
    CHECK_STR(pub, PUB);
    CHECK(cq_ed25519_verify_hex(PUB, VEC_TS, "{\"type\":1}", 10, VEC_SIG));
    struct ing_verdict v;
    struct ing_headers h = {.discord_ts = VEC_TS, .discord_sig = VEC_SIG};
    ing_discord_interaction(cfg, &h, "{\"type\":1}", 10, NOW, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    CHECK_STR(v.body, "{\"type\":1}");
    ing_verdict_clear(&v);
}

TEST(rejections) {
    struct ing_verdict v;
    char bad[] = VEC_SIG;
    bad[5] = bad[5] == '0' ? '1' : '0';
    struct ing_headers h = {.discord_ts = VEC_TS, .discord_sig = bad};
    ing_discord_interaction(cfg, &h, "{\"type\":1}", 10, NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad signature");
    ing_verdict_clear(&v);
    h.discord_sig = VEC_SIG; /* the right signature over another body */
    ing_discord_interaction(cfg, &h, "{\"type\":2}", 10, NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
    h.discord_sig = "zz";
    ing_discord_interaction(cfg, &h, "{\"type\":1}", 10, NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
    h.discord_sig = NULL;
    ing_discord_interaction(cfg, &h, "{\"type\":1}", 10, NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "missing signature headers");
    ing_verdict_clear(&v);
    h.discord_sig = VEC_SIG;
    ing_discord_interaction(cfg, &h, "{\"type\":1}", 10, NOW + 301, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "stale timestamp");
    ing_verdict_clear(&v);
    run_signed("{\"type\":2,\"id\":\"1\"}", NOW, &v); /* signed but incomplete: 400 */
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
}

static const char cmd_body[] =
    "{\"type\":2,\"id\":\"int-1\",\"application_id\":\"app-9\",\"token\":\"tok-xyz\","
    "\"guild_id\":\"g1\",\"channel_id\":\"c1\",\"member\":{\"user\":{\"id\":\"u-alice\","
    "\"username\":\"alice\"}},\"data\":{\"id\":\"cmd1\",\"name\":\"lb\",\"type\":1,"
    "\"options\":[{\"type\":1,\"name\":\"weight\",\"options\":[{\"type\":4,\"name\":\"percent\","
    "\"value\":30},{\"type\":3,\"name\":\"pool\",\"value\":\"blue\"}]}]}}";

TEST(command) {
    struct ing_verdict v;
    run_signed(cmd_body, NOW, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.platform, "discord");
    CHECK_STR(v.req.command, "lb");
    CHECK_STR(v.req.text, "weight blue 30"); /* the configured order: pool, percent */
    CHECK_STR(v.req.user_id, "u-alice");
    CHECK_STR(v.req.user_name, "alice");
    CHECK_STR(v.req.channel_id, "c1");
    CHECK_STR(v.req.tenant, "g1");
    CHECK_STR(v.req.dedupe_key, "discord:int-1");
    CHECK_STR(v.req.reply.response_url, "http://discord.test/api/v10/webhooks/app-9/tok-xyz");
    CHECK_STR(v.req.reply.app_id, "app-9");
    CHECK_STR(v.req.reply.chat_id, "c1");
    CHECK_STR(v.req.reply.conversation_type, "group");
    CHECK_STR(v.req.reply.expires_at, "2023-11-14T22:28:20.000Z"); /* NOW + 15 min */
    ing_verdict_clear(&v);
}

TEST(flatten) {
    struct ing_verdict v;
    /* a flag argument, a value with a space and a quote, a boolean, a DM (user, no guild) */
    const char *b = "{\"type\":2,\"id\":\"int-2\",\"application_id\":\"app-9\",\"token\":\"t\","
                    "\"channel_id\":\"dm1\",\"user\":{\"id\":\"u-bob\",\"username\":\"bob\"},"
                    "\"data\":{\"name\":\"deploy\",\"options\":[{\"type\":3,\"name\":\"env\","
                    "\"value\":\"production\"},{\"type\":3,\"name\":\"service\",\"value\":"
                    "\"web \\\"x\\\"\"},{\"type\":5,\"name\":\"dry\",\"value\":true}]}}";
    run_signed(b, NOW, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.command, "deploy");
    CHECK_STR(v.req.text, "\"web \\\"x\\\"\" --env production true");
    CHECK_STR(v.req.user_id, "u-bob");
    CHECK_STR(v.req.reply.conversation_type, "direct");
    CHECK(v.req.tenant == NULL);
    ing_verdict_clear(&v);
    /* options that are not a list: refused */
    run_signed("{\"type\":2,\"id\":\"i\",\"application_id\":\"a\",\"token\":\"t\",\"user\":"
               "{\"id\":\"u\"},\"data\":{\"name\":\"lb\",\"options\":{}}}",
               NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
}

TEST(answers) {
    int route = ing_route_find(cfg, "/discord/interactions"), status = 0;
    const char *ct = NULL;
    CHECK(route >= 0);
    if (route < 0) return;
    char *a = ing_route_answer(&ing_routes[route], ING_QUEUED, "lb weight blue 30", "r1", NULL,
                               &status, &ct);
    CHECK_STR(a, "{\"type\":5}");
    CHECK(status == 200);
    free(a);
    a = ing_route_answer(&ing_routes[route], ING_NOT_RUN, "lb \"x\"", "r1", "broker down", &status,
                         &ct);
    CHECK(status == 200);
    CHECK_CONTAINS(a, "{\"type\":4,\"data\":{\"content\":\"lb \\\"x\\\" was NOT run");
    CHECK_CONTAINS(a, "\"flags\":64}}");
    free(a);
}

int main(void) {
    struct cq_err err = {0};
    const char *y =
        "kafka: {brokers: \"127.0.0.1:1\"}\n"
        "discord: {enabled: true, public_key: " PUB ", application_id: app-9,\n"
        "  api_base: \"http://discord.test/api/v10\"}\n"
        "commands:\n"
        "  lb weight: {mode: direct, args: [{name: pool}, {name: percent, type: int}],\n"
        "    http: {base_url: \"http://lb\", path: /w}}\n"
        "  deploy: {mode: direct, args: [{name: service}, {name: env, flag: env}],\n"
        "    http: {base_url: \"http://d\", path: /d}}\n";
    cfg = cq_config_load_string("test.yaml", y, strlen(y), &err);
    if (!cfg) cqtest_fatal("config: %s", err.msg);
    RUN(vector_and_ping);
    RUN(rejections);
    RUN(command);
    RUN(flatten);
    RUN(answers);
    cq_config_free(cfg);
    return cqtest_done();
}
