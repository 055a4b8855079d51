/* Unit tests of the ingress's pure platform functions (ingress/slack.c, feishu.c, gitlab.c,
 * normalize.c): Slack's official signature vector with an injected clock and each way to
 * fail it, the form parser, command splitting, Slack events, Feishu challenge (plain and
 * encrypted), signatures and the im.message.receive_v1 normalisation, GitLab hooks. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "cqtest_samples.h"
#include "crypto.h"
#include "ingress.h"

#define VEC_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define VEC_TS "1531420618"
#define VEC_SIG "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
static const char vec_body[] =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
#define VEC_NOW 1531420618

static struct cq_config *cfg;

static struct cq_config *load(const char *yaml) {
    struct cq_err err = {0};
    struct cq_config *c = cq_config_load_string("test.yaml", yaml, strlen(yaml), &err);
    if (!c) cqtest_fatal("config: %s", err.msg);
    return c;
}

static void slack_cmd(const char *body, const char *ts, const char *sig, time_t now,
                      struct ing_verdict *v) {
    struct ing_headers h = {.slack_ts = ts, .slack_sig = sig};
    ing_slack_command(cfg, &h, body, strlen(body), now, v);
}

TEST(slack_official_vector) {
    struct ing_verdict v;
    slack_cmd(vec_body, VEC_TS, VEC_SIG, VEC_NOW + 10, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.platform, "slack");
    CHECK_STR(v.req.tenant, "T1DC2JH3J");
    CHECK_STR(v.req.channel_id, "G8PSS9T3V");
    CHECK_STR(v.req.channel_name, "foobar");
    CHECK_STR(v.req.user_id, "U2CERLKJA");
    CHECK_STR(v.req.user_name, "roadrunner");
    CHECK_STR(v.req.command, "help"); /* empty text */
    CHECK_STR(v.req.text, "");
    CHECK_STR(v.req.reply.response_url,
              "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN");
    CHECK_STR(v.req.dedupe_key, "slack:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c");
    CHECK(v.req.id && strlen(v.req.id) == CQ_UUID_LEN);
    CHECK(v.body && strstr(v.body, "\"dedupe_key\""));
    /* the encoded envelope decodes to the same fields */
    struct cq_request back = {0};
    struct cq_err err = {0};
    CHECK(v.body && cq_request_decode(v.body, strlen(v.body), 0, &back, &err) == CQ_OK);
    CHECK_STR(back.id, v.req.id);
    cq_request_clear(&back);
    ing_verdict_clear(&v);
}

TEST(slack_rejections) {
    struct ing_verdict v;
    char flipped[sizeof(vec_body)];
    memcpy(flipped, vec_body, sizeof(vec_body));
    flipped[40] ^= 1;
    slack_cmd(flipped, VEC_TS, VEC_SIG, VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad signature");
    ing_verdict_clear(&v);

    char sig[sizeof(VEC_SIG)];
    memcpy(sig, VEC_SIG, sizeof(sig));
    sig[10] = sig[10] == 'a' ? 'b' : 'a';
    slack_cmd(vec_body, VEC_TS, sig, VEC_NOW, &v);
    CHECK_STR(v.reason, "bad signature");
    ing_verdict_clear(&v);

    slack_cmd(vec_body, VEC_TS, NULL, VEC_NOW, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "missing signature headers");
    ing_verdict_clear(&v);
    slack_cmd(vec_body, NULL, VEC_SIG, VEC_NOW, &v);
    CHECK_STR(v.reason, "missing signature headers");
    ing_verdict_clear(&v);

    slack_cmd(vec_body, VEC_TS, VEC_SIG, VEC_NOW + 301, &v); /* 301 s old */
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "stale timestamp");
    ing_verdict_clear(&v);
    slack_cmd(vec_body, VEC_TS, VEC_SIG, VEC_NOW - 301, &v); /* 301 s in the future */
    CHECK_STR(v.reason, "stale timestamp");
    ing_verdict_clear(&v);
    slack_cmd(vec_body, VEC_TS, VEC_SIG, VEC_NOW + 300, &v); /* edge: still inside */
    CHECK(v.kind == ING_REQUEST);
    ing_verdict_clear(&v);

    slack_cmd(vec_body, "15314x0618", VEC_SIG, VEC_NOW, &v);
    CHECK_STR(v.reason, "bad timestamp");
    ing_verdict_clear(&v);
}

/* Signs body with the test config's secret at ts. */
static void sign(const char *body, long long ts, char tsbuf[24], char sig[68]) {
    snprintf(tsbuf, 24, "%lld", ts);
    cq_slack_signature("s3cret", tsbuf, body, strlen(body), sig);
}

TEST(slack_parse_and_limits) {
    struct ing_verdict v;
    char ts[24], sig[68];
    const char *b = "command=%2Fops&user_id=U1&trigger_id=t.1&team_id=T9&channel_id=C9&text="
                    "%20+deploy++web"
                    "%E2%9C%93+&response_url=x";
    sign(b, 1000, ts, sig);
    slack_cmd(b, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.command, "deploy");
    CHECK_STR(v.req.text, "web\xE2\x9C\x93");
    CHECK_STR(v.req.reply.chat_id, "C9");
    ing_verdict_clear(&v);

    const char *bad = "user_id=U1&trigger_id=t.1&text=%G1";
    sign(bad, 1000, ts, sig);
    slack_cmd(bad, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    CHECK_STR(v.reason, "malformed form");
    ing_verdict_clear(&v);

    const char *nul = "user_id=U1&trigger_id=t.1&text=a%00b";
    sign(nul, 1000, ts, sig);
    slack_cmd(nul, ts, sig, 1000, &v);
    CHECK(v.status == 400);
    ing_verdict_clear(&v);

    const char *nouser = "command=%2Fops&trigger_id=t.1&text=x";
    sign(nouser, 1000, ts, sig);
    slack_cmd(nouser, ts, sig, 1000, &v);
    CHECK(v.status == 400);
    CHECK_STR(v.reason, "missing user_id");
    ing_verdict_clear(&v);

    /* max_text is 30 characters here: 30 two-byte characters pass, 31 do not */
    char longb[512] = "command=%2Fops&user_id=U1&trigger_id=t.1&text=";
    for (int i = 0; i < 30; i++)
        strcat(longb, "%C3%A9");
    sign(longb, 1000, ts, sig);
    slack_cmd(longb, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REQUEST);
    ing_verdict_clear(&v);
    strcat(longb, "x");
    sign(longb, 1000, ts, sig);
    slack_cmd(longb, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    CHECK_STR(v.reason, "text too long");
    ing_verdict_clear(&v);

    /* ssl_check: unsigned, answered, nothing produced */
    slack_cmd("ssl_check=1&token=abc", NULL, NULL, 1000, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
    slack_cmd("ssl_check=0&token=abc", NULL, NULL, 1000, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
}

/* The hand-written ephemeral answer is byte for byte what cJSON prints for the same object. */
TEST(slack_ephemeral_matches_cjson) {
    const char *texts[] = {"queued: /deploy web \xC2\xB7 req 1234abcd", "", "q\"uote\\back/slash",
                           "\b\t\n\v\f\r\x01\x1f\x7f end", "\xE2\x82\xAC utf-8 as is"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "response_type", "ephemeral");
        cJSON_AddStringToObject(o, "text", texts[i]);
        char *want = cJSON_PrintUnformatted(o), *got = ing_slack_ephemeral(texts[i]);
        CHECK_STR(got, want);
        free(want);
        free(got);
        cJSON_Delete(o);
    }
}

TEST(form_parser) {
    struct ing_form f;
    const char *fb = "a=1&b=x+y%2Bz&&c&d=%e2%82%ac";
    CHECK(ing_form_parse(fb, strlen(fb), 8, &f) == CQ_OK);
    CHECK(f.n == 4);
    CHECK_STR(ing_form_get(&f, "a"), "1");
    CHECK_STR(ing_form_get(&f, "b"), "x y+z");
    CHECK_STR(ing_form_get(&f, "c"), "");
    CHECK_STR(ing_form_get(&f, "d"), "\xE2\x82\xAC");
    CHECK(ing_form_get(&f, "e") == NULL);
    ing_form_clear(&f);
    CHECK(ing_form_parse("a=%4", 4, 8, &f) == CQ_EPARSE);
    CHECK(ing_form_parse("a=%", 3, 8, &f) == CQ_EPARSE);
    CHECK(ing_form_parse("a=1&b=2&c=3", 11, 2, &f) == CQ_EPARSE);
    CHECK(ing_form_parse("", 0, 2, &f) == CQ_OK && f.n == 0);
    ing_form_clear(&f);
    /* length-bounded: bytes past len are not read */
    CHECK(ing_form_parse("a=12345", 3, 2, &f) == CQ_OK);
    CHECK_STR(ing_form_get(&f, "a"), "1");
    ing_form_clear(&f);
    /* the densest body for the one decode buffer (len + 1 bytes): valueless one-byte names
     * and "=" pairs; ASan checks that nothing is written past it */
    CHECK(ing_form_parse("a&b&c&=&=x&d=", 13, 16, &f) == CQ_OK);
    CHECK(f.n == 6);
    CHECK_STR(ing_form_get(&f, "a"), "");
    CHECK_STR(ing_form_get(&f, "c"), "");
    CHECK_STR(ing_form_get(&f, ""), "");
    CHECK_STR(f.f[4].value, "x");
    CHECK_STR(ing_form_get(&f, "d"), "");
    ing_form_clear(&f);
    CHECK(ing_form_parse("a=1&b=%00", 9, 8, &f) == CQ_EPARSE && f.n == 0 && !f.buf);

    char *cmd, *rest;
    CHECK(ing_split("  lb  weight blue 30 \n", &cmd, &rest) == CQ_OK);
    CHECK_STR(cmd, "lb");
    CHECK_STR(rest, "weight blue 30");
    free(cmd);
    free(rest);
    CHECK(ing_split(" \t ", &cmd, &rest) == CQ_OK);
    CHECK_STR(cmd, "help");
    CHECK_STR(rest, "");
    free(cmd);
    free(rest);
}

TEST(slack_events) {
    struct ing_verdict v;
    char ts[24], sig[68];
    struct ing_headers h = {0};
    const char *ch = "{\"token\":\"x\",\"challenge\":\"3eZbrw1aB\",\"type\":\"url_verification\"}";
    sign(ch, 5000, ts, sig);
    h.slack_ts = ts;
    h.slack_sig = sig;
    ing_slack_event(cfg, &h, ch, strlen(ch), 5000, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    CHECK_STR(v.body, "{\"challenge\":\"3eZbrw1aB\"}");
    ing_verdict_clear(&v);
    h.slack_sig = "v0=bad";
    ing_slack_event(cfg, &h, ch, strlen(ch), 5000, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);

    const char *ev = "{\"type\":\"event_callback\",\"team_id\":\"T1\",\"event_id\":\"Ev123\","
                     "\"event\":{\"type\":\"app_mention\",\"user\":\"U7\",\"text\":\"<@UBOT> flag "
                     "get beta\",\"channel\":\"C5\",\"ts\":\"1.2\"}}";
    sign(ev, 5000, ts, sig);
    h.slack_sig = sig;
    h.slack_retry_num = "2";
    ing_slack_event(cfg, &h, ev, strlen(ev), 5000, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.command, "flag");
    CHECK_STR(v.req.text, "get beta");
    CHECK_STR(v.req.dedupe_key, "slack:Ev123");
    CHECK_STR(v.req.reply.thread_ts, "1.2");
    CHECK(v.req.retry_num == 2);
    ing_verdict_clear(&v);

    const char *junk = "{\"type\":";
    sign(junk, 5000, ts, sig);
    ing_slack_event(cfg, &h, junk, strlen(junk), 5000, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
}

static const char feishu_msg[] = CQT_FEISHU_MESSAGE("vtok");

TEST(feishu_message) {
    struct ing_verdict v;
    struct ing_headers h = {0};
    /* the test config has no encrypt key: token only */
    ing_feishu_event(cfg, &h, feishu_msg, strlen(feishu_msg), 0, &v);
    CHECK(v.kind == ING_REQUEST);
    if (v.kind == ING_REJECT) fprintf(stderr, "  rejected: %s (%s)\n", v.reason, v.detail);
    CHECK_STR(v.req.platform, "feishu");
    CHECK_STR(v.req.tenant, "2ca1d211f64f6438");
    CHECK_STR(v.req.user_id, "ou_84aad35d");
    CHECK_STR(v.req.channel_id, "oc_5ce6d572455d361153b7xx51da133945");
    CHECK_STR(v.req.command, "deploy");
    CHECK_STR(v.req.text, "web production");
    CHECK_STR(v.req.reply.message_id, "om_5ce6d572455d361153b7cb51da133945");
    CHECK_STR(v.req.reply.chat_id, "oc_5ce6d572455d361153b7xx51da133945");
    CHECK_STR(v.req.dedupe_key, "feishu:5e3702a84e847582be8db7fb73283c02");
    char *first_id = v.req.id ? strdup(v.req.id) : NULL;
    ing_verdict_clear(&v);
    /* re-sent: new request id, same dedupe key */
    ing_feishu_event(cfg, &h, feishu_msg, strlen(feishu_msg), 0, &v);
    CHECK_STR(v.req.dedupe_key, "feishu:5e3702a84e847582be8db7fb73283c02");
    CHECK(first_id && v.req.id && strcmp(first_id, v.req.id) != 0);
    free(first_id);
    ing_verdict_clear(&v);

    /* not addressed to the bot: acknowledged, not produced */
    char *other = strdup(feishu_msg);
    char *p = strstr(other, "\"ou_bot\"");
    memcpy(p, "\"ou_xyz\"", 8);
    ing_feishu_event(cfg, &h, other, strlen(other), 0, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
    free(other);
    /* the bot's own message */
    char *own = strdup(feishu_msg);
    p = strstr(own, "\"ou_84aad35d\"");
    memcpy(p, "\"ou_bot\"", 8);
    memmove(p + 8, p + 13, strlen(p + 13) + 1);
    ing_feishu_event(cfg, &h, own, strlen(own), 0, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    ing_verdict_clear(&v);
    free(own);
    /* wrong token */
    char *tok = strdup(feishu_msg);
    p = strstr(tok, "\"vtok\"");
    p[1] = 'x';
    ing_feishu_event(cfg, &h, tok, strlen(tok), 0, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad token");
    ing_verdict_clear(&v);
    free(tok);
}

TEST(feishu_encrypted) {
    struct cq_config *enc = load("kafka: {brokers: \"127.0.0.1:1\"}\n"
                                 "feishu: {enabled: true, verification_token: \"${CQT_FS_VT}\",\n"
                                 "  encrypt_key: \"${CQT_FS_EK}\", bot_open_id: ou_bot}\n");
    struct cq_config *saved = cfg;
    struct ing_verdict v;
    struct ing_headers h = {0};
    uint8_t key[32];
    size_t n = 0;
    cfg = enc;
    /* the official vector decrypts */
    char *plain = cq_feishu_decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=", &n);
    CHECK_STR(plain, "hello world");
    free(plain);

    const char *ch = "{\"challenge\":\"ajls384kdjx98XX\",\"token\":\"vtok\",\"type\":"
                     "\"url_verification\"}";
    cq_sha256("ek-123", 6, key);
    uint8_t *ct = cq_aes256cbc_encrypt(key, (const uint8_t *)ch, strlen(ch), &n);
    char *b64 = ct ? cq_base64_encode(ct, n) : NULL;
    char body[1024];
    snprintf(body, sizeof(body), "{\"encrypt\":\"%s\"}", b64 ? b64 : "");
    ing_feishu_event(cfg, &h, body, strlen(body), 0, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    CHECK_STR(v.body, "{\"challenge\":\"ajls384kdjx98XX\"}");
    ing_verdict_clear(&v);
    free(ct);
    free(b64);

    /* a message event: signed over the raw (encrypted) body */
    ct = cq_aes256cbc_encrypt(key, (const uint8_t *)feishu_msg, strlen(feishu_msg), &n);
    b64 = ct ? cq_base64_encode(ct, n) : NULL;
    char *ebody = malloc(strlen(b64 ? b64 : "") + 20);
    sprintf(ebody, "{\"encrypt\":\"%s\"}", b64 ? b64 : "");
    char sig[65];
    cq_feishu_signature("1700000000", "nonce1", "ek-123", ebody, strlen(ebody), sig);
    h.lark_ts = "1700000000";
    h.lark_nonce = "nonce1";
    h.lark_sig = sig;
    const time_t t0 = 1700000000;
    ing_feishu_event(cfg, &h, ebody, strlen(ebody), t0 + 10, &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.command, "deploy");
    ing_verdict_clear(&v);
    /* the replay window (limits.replay_window_s, 300 s) on the signed timestamp */
    ing_feishu_event(cfg, &h, ebody, strlen(ebody), t0 + 300, &v);
    CHECK(v.kind == ING_REQUEST);
    ing_verdict_clear(&v);
    ing_feishu_event(cfg, &h, ebody, strlen(ebody), t0 + 301, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "stale timestamp");
    CHECK_STR(v.public_reason, "unauthorized");
    ing_verdict_clear(&v);
    ing_feishu_event(cfg, &h, ebody, strlen(ebody), t0 - 301, &v);
    CHECK_STR(v.reason, "stale timestamp");
    ing_verdict_clear(&v);
    h.lark_nonce = "nonce2";
    ing_feishu_event(cfg, &h, ebody, strlen(ebody), t0, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad signature");
    CHECK_STR(v.public_reason, "unauthorized");
    ing_verdict_clear(&v);
    h.lark_sig = NULL;
    ing_feishu_event(cfg, &h, ebody, strlen(ebody), t0, &v);
    CHECK_STR(v.reason, "missing signature headers");
    ing_verdict_clear(&v);
    /* before authentication every failure is the same 401 "unauthorized": an unsigned body
     * that does not decrypt, decrypts to garbage, or decrypts to a valid event (no padding
     * oracle: the answer never says which) */
    const char *undecryptable = "{\"encrypt\":\"!!!\"}";
    ing_feishu_event(cfg, &h, undecryptable, strlen(undecryptable), t0, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.public_reason, "unauthorized");
    ing_verdict_clear(&v);
    uint8_t *gct = cq_aes256cbc_encrypt(key, (const uint8_t *)"not json", 8, &n);
    char *gb64 = gct ? cq_base64_encode(gct, n) : NULL;
    char gbody[256];
    snprintf(gbody, sizeof(gbody), "{\"encrypt\":\"%s\"}", gb64 ? gb64 : "");
    ing_feishu_event(cfg, &h, gbody, strlen(gbody), t0, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.public_reason, "unauthorized");
    ing_verdict_clear(&v);
    free(gct);
    free(gb64);
    ing_feishu_event(cfg, &h, "{nope", 5, t0, &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.public_reason, "unauthorized");
    ing_verdict_clear(&v);
    /* signed first: a bad signature over an undecryptable body is refused for the signature,
     * the body is never decrypted */
    h.lark_ts = "1700000000";
    h.lark_nonce = "nonce1";
    h.lark_sig = sig;
    ing_feishu_event(cfg, &h, undecryptable, strlen(undecryptable), t0, &v);
    CHECK_STR(v.reason, "bad signature");
    ing_verdict_clear(&v);
    /* once the signature authenticated the sender, a bad body gets a readable 400 */
    char sig2[65];
    cq_feishu_signature("1700000000", "nonce1", "ek-123", undecryptable, strlen(undecryptable),
                        sig2);
    h.lark_sig = sig2;
    ing_feishu_event(cfg, &h, undecryptable, strlen(undecryptable), t0, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    CHECK_STR(v.reason, "cannot decrypt body");
    ing_verdict_clear(&v);
    free(ebody);
    free(ct);
    free(b64);
    cfg = saved;
    cq_config_free(enc);
}

TEST(slack_command_allowlist) {
    struct ing_verdict v;
    char ts[24], sig[68];
    /* every slash command of the app posts here: only the configured ones run */
    const char *other = "command=%2Fdeploy-prod&user_id=U1&trigger_id=t.9&text=web";
    sign(other, 1000, ts, sig);
    slack_cmd(other, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    CHECK_STR(v.reason, "unknown slash command");
    CHECK(v.body && strstr(v.body, "\"ephemeral\"") &&
          strstr(v.body, "/deploy-prod is not a command of this ChatOps app (use /ops)"));
    ing_verdict_clear(&v);
    const char *none = "user_id=U1&trigger_id=t.9&text=web";
    sign(none, 1000, ts, sig);
    slack_cmd(none, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REPLY && v.status == 200);
    CHECK_STR(v.reason, "unknown slash command");
    ing_verdict_clear(&v);
    const char *ok = "command=%2Fops&user_id=U1&trigger_id=t.9&text=web";
    sign(ok, 1000, ts, sig);
    slack_cmd(ok, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REQUEST);
    ing_verdict_clear(&v);
    /* several configured commands */
    struct cq_config *saved = cfg;
    cfg = load("kafka: {brokers: \"127.0.0.1:1\"}\n"
               "slack: {enabled: true, signing_secret: \"${CQT_SLACK_SECRET2}\",\n"
               "  commands: [/ops, /ops-staging]}\n");
    const char *second = "command=%2Fops-staging&user_id=U1&trigger_id=t.9&text=web";
    sign(second, 1000, ts, sig);
    slack_cmd(second, ts, sig, 1000, &v);
    CHECK(v.kind == ING_REQUEST);
    ing_verdict_clear(&v);
    cq_config_free(cfg);
    cfg = saved;
}

TEST(gitlab_hook) {
    struct ing_verdict v;
    struct ing_headers h = {.gitlab_event = "Pipeline Hook", .gitlab_token = "gl-tok"};
    const char *b = "{\"object_kind\":\"pipeline\",\"object_attributes\":{\"id\":31,\"status\":"
                    "\"success\"},\"project\":{\"id\":7}}";
    ing_gitlab_hook(cfg, &h, b, strlen(b), &v);
    CHECK(v.kind == ING_PIPELINE);
    CHECK_STR(v.key, "7:31");
    ing_verdict_clear(&v);
    h.gitlab_token = "gl-toK";
    ing_gitlab_hook(cfg, &h, b, strlen(b), &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
    h.gitlab_token = "gl-tok";
    ing_gitlab_hook(cfg, &h, "{\"project\":{}}", 14, &v);
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
}

int main(void) {
    setenv("CQT_SLACK_SECRET", VEC_SECRET, 1);
    setenv("CQT_SLACK_SECRET2", "s3cret", 1);
    setenv("CQT_FS_VT", "vtok", 1);
    setenv("CQT_FS_EK", "ek-123", 1);
    setenv("CQT_GL", "gl-tok", 1);
    cfg =
        load("kafka: {brokers: \"127.0.0.1:1\"}\n"
             "limits: {max_text: 30}\n"
             "slack: {enabled: true, signing_secret: \"${CQT_SLACK_SECRET}\",\n"
             "  commands: [/ops, /webhook-collect]}\n"
             "feishu: {enabled: true, verification_token: \"${CQT_FS_VT}\", bot_open_id: ou_bot,\n"
             "  require_encrypt_key: false}\n"
             "gitlab: {webhook_token: \"${CQT_GL}\"}\n");
    RUN(slack_official_vector);
    RUN(slack_rejections);
    cq_config_free(cfg);
    cfg =
        load("kafka: {brokers: \"127.0.0.1:1\"}\n"
             "limits: {max_text: 30}\n"
             "slack: {enabled: true, signing_secret: \"${CQT_SLACK_SECRET2}\"}\n"
             "feishu: {enabled: true, verification_token: \"${CQT_FS_VT}\", bot_open_id: ou_bot,\n"
             "  require_encrypt_key: false}\n"
             "gitlab: {webhook_token: \"${CQT_GL}\"}\n");
    RUN(slack_parse_and_limits);
    RUN(slack_command_allowlist);
    RUN(form_parser);
    RUN(slack_ephemeral_matches_cjson);
    RUN(slack_events);
    RUN(feishu_message);
    RUN(feishu_encrypted);
    RUN(gitlab_hook);
    cq_config_free(cfg);
    return cqtest_done();
}
