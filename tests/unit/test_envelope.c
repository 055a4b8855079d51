/* test_envelope: request/result JSON envelopes round-trip exactly and every
 * malformed shape is refused with the offending field named: size, syntax,
 * version, presence, type, enum, length, NUL and UTF-8 rules. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cqtest.h"
#include "cqtest_samples.h"
#include "envelope.h"

static const char *s_or_null(const char *s) {
    return s ? s : "(null)";
}

static void fill_min_request(struct cq_request *r) {
    memset(r, 0, sizeof(*r));
    r->id = "id-1";
    r->received_at = "2024-05-01T12:00:00Z";
    r->platform = "feishu";
    r->user_id = "ou_1";
    r->command = "status";
    r->text = "";
    r->dedupe_key = "feishu:ev1";
}

static void fill_min_result(struct cq_result *r) {
    memset(r, 0, sizeof(*r));
    r->request_id = "id-1";
    r->step = "ack";
    r->status = "ok";
    r->platform = "feishu";
    r->text = "";
}

TEST(request_round_trip_full) {
    struct cq_request in, out;
    struct cq_err err = {0};
    cqt_fill_request(&in);
    char *json = cq_request_encode(&in, &err);
    CHECK(json != NULL);
    if (!json) return;
    /* Field names as in the architecture's message shape. */
    CHECK_CONTAINS(json, "\"v\":1");
    CHECK_CONTAINS(json, "\"channel\":{\"id\":\"C2147483705\",\"name\":\"ops\"}");
    CHECK_CONTAINS(json, "\"user\":{\"id\":\"U2147483697\",\"name\":\"alice\"}");
    CHECK_CONTAINS(json, "\"reply\":{\"response_url\":");
    CHECK_CONTAINS(json, "\"dedupe_key\":\"slack:");
    CHECK_CONTAINS(json, "\"retry_num\":2");
    CHECK(cq_request_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK(cqt_request_equal(&in, &out));
    cq_request_clear(&out);
    CHECK(out.id == NULL && out.text == NULL);
    free(json);
}

TEST(request_round_trip_minimal) {
    struct cq_request in, out;
    struct cq_err err = {0};
    fill_min_request(&in);
    char *json = cq_request_encode(&in, &err);
    CHECK(json != NULL);
    if (!json) return;
    /* Absent optional fields are omitted, not null. */
    CHECK(strstr(json, "tenant") == NULL);
    CHECK(strstr(json, "channel") == NULL);
    CHECK(strstr(json, "reply") == NULL);
    CHECK(strstr(json, "null") == NULL);
    CHECK(strstr(json, "\"name\"") == NULL);
    CHECK(cq_request_decode(json, strlen(json), 4096, &out, &err) == CQ_OK);
    CHECK(cqt_request_equal(&in, &out));
    cq_request_clear(&out);
    free(json);

    /* NULL text encodes as "". */
    in.text = NULL;
    json = cq_request_encode(&in, &err);
    CHECK_CONTAINS(json, "\"text\":\"\"");
    free(json);
}

TEST(result_round_trip) {
    struct cq_result in, out;
    struct cq_err err = {0};
    cqt_fill_result(&in);
    char *json = cq_result_encode(&in, &err);
    CHECK(json != NULL);
    if (!json) return;
    CHECK_CONTAINS(json, "\"request_id\":");
    CHECK_CONTAINS(json, "\"pipeline\":{");
    CHECK_CONTAINS(json, "\"id\":9007199254740991");
    CHECK(cq_result_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK(cqt_result_equal(&in, &out));
    cq_result_clear(&out);
    free(json);

    fill_min_result(&in);
    json = cq_result_encode(&in, &err);
    CHECK(json != NULL);
    if (!json) return;
    CHECK(strstr(json, "pipeline") == NULL);
    CHECK(strstr(json, "reply") == NULL);
    CHECK(strstr(json, "response_type") == NULL);
    CHECK(strstr(json, "produced_at") == NULL);
    CHECK(cq_result_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK(cqt_result_equal(&in, &out));
    cq_result_clear(&out);
    free(json);

    /* Pipeline with only an id. */
    in.pipeline.id = 42;
    json = cq_result_encode(&in, &err);
    CHECK_CONTAINS(json, "\"pipeline\":{\"id\":42}");
    CHECK(json && cq_result_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK(out.pipeline.id == 42 && out.pipeline.web_url == NULL);
    cq_result_clear(&out);
    free(json);
}

/* Encodes a full request, lets mutate() edit the JSON tree, and decodes the result. */
static enum cq_rc decode_mutated_request(void (*mutate)(cJSON *, const void *), const void *arg,
                                         struct cq_err *err) {
    struct cq_request in, out;
    struct cq_err e0 = {0};
    cqt_fill_request(&in);
    char *json = cq_request_encode(&in, &e0);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    free(json);
    if (!root) return CQ_ENOMEM;
    mutate(root, arg);
    json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return CQ_ENOMEM;
    memset(&out, 0xab, sizeof(out)); /* decode must initialise it */
    enum cq_rc rc = cq_request_decode(json, strlen(json), 0, &out, err);
    if (rc == CQ_OK)
        cq_request_clear(&out);
    else
        CHECK(out.id == NULL && out.command == NULL && out.retry_num == 0);
    free(json);
    return rc;
}

static enum cq_rc decode_mutated_result(void (*mutate)(cJSON *, const void *), const void *arg,
                                        struct cq_err *err) {
    struct cq_result in, out;
    struct cq_err e0 = {0};
    cqt_fill_result(&in);
    char *json = cq_result_encode(&in, &e0);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    free(json);
    if (!root) return CQ_ENOMEM;
    mutate(root, arg);
    json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return CQ_ENOMEM;
    memset(&out, 0, sizeof(out));
    enum cq_rc rc = cq_result_decode(json, strlen(json), 0, &out, err);
    cq_result_clear(&out);
    free(json);
    return rc;
}

/* path is "key" or "group.key". */
static cJSON *parent_of(cJSON *root, const char *path, const char **key) {
    const char *dot = strchr(path, '.');
    if (!dot) {
        *key = path;
        return root;
    }
    char group[32];
    snprintf(group, sizeof(group), "%.*s", (int)(dot - path), path);
    *key = dot + 1;
    return cJSON_GetObjectItemCaseSensitive(root, group);
}

static void remove_field(cJSON *root, const void *arg) {
    const char *key;
    cJSON *p = parent_of(root, arg, &key);
    if (p) cJSON_DeleteItemFromObjectCaseSensitive(p, key);
}

static void set_number(cJSON *root, const void *arg) {
    const char *key;
    cJSON *p = parent_of(root, arg, &key);
    if (p) cJSON_ReplaceItemInObjectCaseSensitive(p, key, cJSON_CreateNumber(5));
}

struct set_str {
    const char *path, *value;
};
static void set_string(cJSON *root, const void *arg) {
    const struct set_str *s = arg;
    const char *key;
    cJSON *p = parent_of(root, s->path, &key);
    if (!p) return;
    if (cJSON_GetObjectItemCaseSensitive(p, key))
        cJSON_ReplaceItemInObjectCaseSensitive(p, key, cJSON_CreateString(s->value));
    else
        cJSON_AddStringToObject(p, key, s->value);
}

struct set_raw {
    const char *key, *raw;
};
static void set_raw_value(cJSON *root, const void *arg) {
    const struct set_raw *s = arg;
    cJSON_DeleteItemFromObjectCaseSensitive(root, s->key);
    cJSON_AddRawToObject(root, s->key, s->raw);
}

TEST(request_missing_required) {
    static const char *req[] = {"id",      "received_at", "platform",   "user.id",
                                "command", "text",        "dedupe_key", "v"};
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        struct cq_err err = {0};
        char want[64];
        snprintf(want, sizeof(want), "request: field '%s' is missing", req[i]);
        CHECK(decode_mutated_request(remove_field, req[i], &err) == CQ_EPARSE);
        CHECK_STR(err.msg, want);
    }
    /* A whole missing group takes its required member with it. */
    struct cq_err err = {0};
    CHECK(decode_mutated_request(remove_field, "user", &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: field 'user.id' is missing");
    /* Optional ones may go. */
    static const char *opt[] = {"tenant", "channel",         "channel.name", "user.name",
                                "reply",  "reply.thread_ts", "retry_num"};
    for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
        cq_err_clear(&err);
        CHECK(decode_mutated_request(remove_field, opt[i], &err) == CQ_OK);
        if (err.code != CQ_OK) printf("  unexpected for %s: %s\n", opt[i], err.msg);
    }
}

TEST(result_missing_required) {
    static const char *req[] = {"request_id", "step", "status", "platform", "text"};
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        struct cq_err err = {0};
        char want[64];
        snprintf(want, sizeof(want), "result: field '%s' is missing", req[i]);
        CHECK(decode_mutated_result(remove_field, req[i], &err) == CQ_EPARSE);
        CHECK_STR(err.msg, want);
    }
    static const char *opt[] = {"reply", "command",  "user_name",   "response_type",
                                "seq",   "pipeline", "pipeline.id", "produced_at"};
    for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
        struct cq_err err = {0};
        CHECK(decode_mutated_result(remove_field, opt[i], &err) == CQ_OK);
    }
}

TEST(wrong_types) {
    static const char *strs[] = {
        "id",        "received_at", "platform", "tenant", "channel.id",         "channel.name",
        "user.id",   "user.name",   "command",  "text",   "reply.response_url", "reply.chat_id",
        "dedupe_key"};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        struct cq_err err = {0};
        char want[64];
        snprintf(want, sizeof(want), "request: field '%s' must be a string", strs[i]);
        CHECK(decode_mutated_request(set_number, strs[i], &err) == CQ_EPARSE);
        CHECK_STR(err.msg, want);
    }
    struct cq_err err = {0};
    const struct set_str grp = {"channel", "C1"};
    CHECK(decode_mutated_request(set_string, &grp, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: field 'channel' must be an object");
    const struct set_raw raws[] = {
        {"retry_num", "\"1\""}, {"retry_num", "1.5"}, {"retry_num", "-1"}, {"retry_num", "1001"},
        {"retry_num", "true"},  {"user", "[]"},       {"reply", "\"x\""},  {"v", "\"1\""},
    };
    for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
        CHECK(decode_mutated_request(set_raw_value, &raws[i], &err) == CQ_EPARSE);
        char want[64];
        snprintf(want, sizeof(want), "field '%s'", raws[i].key);
        CHECK_CONTAINS(err.msg, want);
    }
    /* Result: seq and pipeline.id numbers; pipeline an object. */
    const struct set_raw rraws[] = {
        {"seq", "\"3\""}, {"seq", "-2"}, {"pipeline", "42"}, {"text", "null"}, {"step", "1"}};
    for (size_t i = 0; i < sizeof(rraws) / sizeof(rraws[0]); i++) {
        CHECK(decode_mutated_result(set_raw_value, &rraws[i], &err) == CQ_EPARSE);
        CHECK_CONTAINS(err.msg, rraws[i].key);
    }
    const struct set_str pid = {"pipeline.id", "42"};
    CHECK(decode_mutated_result(set_string, &pid, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "result: field 'pipeline.id' must be a number");
}

TEST(bad_enums) {
    struct cq_err err = {0};
    const struct set_str cases[] = {{"platform", "teams"}, {"platform", "Slack"}, {"platform", ""}};
    for (size_t i = 0; i < 3; i++) {
        CHECK(decode_mutated_request(set_string, &cases[i], &err) == CQ_EPARSE);
        CHECK_STR(err.msg, "request: field 'platform' has an unsupported value");
    }
    const struct set_str rcases[] = {{"step", "done"},
                                     {"status", "OK"},
                                     {"status", "error"},
                                     {"platform", "msteams"}, /* dingtalk is one since issue 18 */
                                     {"response_type", "public"}};
    for (size_t i = 0; i < 5; i++) {
        char want[80];
        snprintf(want, sizeof(want), "result: field '%s' has an unsupported value", rcases[i].path);
        CHECK(decode_mutated_result(set_string, &rcases[i], &err) == CQ_EPARSE);
        CHECK_STR(err.msg, want);
    }
    /* Every documented value passes. */
    static const char *steps[] = {"ack", "progress", "final"};
    static const char *statuses[] = {"ok", "denied", "invalid", "failed", "timeout"};
    for (size_t i = 0; i < 3; i++) {
        struct set_str s = {"step", steps[i]};
        CHECK(decode_mutated_result(set_string, &s, &err) == CQ_OK);
    }
    for (size_t i = 0; i < 5; i++) {
        struct set_str s = {"status", statuses[i]};
        CHECK(decode_mutated_result(set_string, &s, &err) == CQ_OK);
    }
}

TEST(over_long_fields) {
    struct cq_err err = {0};
    char *big = malloc(CQ_ENV_MAX_TEXT + 2);
    CHECK(big != NULL);
    if (!big) return;
    memset(big, 'x', CQ_ENV_MAX_TEXT + 1);
    big[CQ_ENV_MAX_TEXT + 1] = '\0';
    struct set_str text = {"text", big};
    CHECK(decode_mutated_request(set_string, &text, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: field 'text' exceeds 65536 bytes");
    big[CQ_ENV_MAX_TEXT] = '\0'; /* exactly at the bound is fine */
    CHECK(decode_mutated_request(set_string, &text, &err) == CQ_OK);

    big[CQ_ENV_MAX_COMMAND + 1] = '\0';
    struct set_str cmd = {"command", big};
    CHECK(decode_mutated_request(set_string, &cmd, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: field 'command' exceeds 128 bytes");
    big[CQ_ENV_MAX_ID + 1] = '\0';
    struct set_str uid = {"user.id", big};
    CHECK(decode_mutated_request(set_string, &uid, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: field 'user.id' exceeds 128 bytes");
    memset(big, 'u', CQ_ENV_MAX_URL + 1);
    big[CQ_ENV_MAX_URL + 1] = '\0';
    struct set_str url = {"reply.response_url", big};
    CHECK(decode_mutated_request(set_string, &url, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: field 'reply.response_url' exceeds 2048 bytes");

    /* Encode refuses the same, so producers learn before the consumer rejects it. */
    struct cq_request r;
    cqt_fill_request(&r);
    r.reply.response_url = big;
    CHECK(cq_request_encode(&r, &err) == NULL);
    CHECK(err.code == CQ_EENCODE);
    CHECK_CONTAINS(err.msg, "'reply.response_url' exceeds");
    free(big);

    /* Empty required identifiers are refused. */
    struct set_str empty = {"command", ""};
    CHECK(decode_mutated_request(set_string, &empty, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: field 'command' is empty");
}

TEST(rejects_whole_message) {
    struct cq_request r;
    struct cq_result res;
    struct cq_err err = {0};
    const char *ok =
        "{\"v\":1,\"id\":\"a\",\"received_at\":\"t\",\"platform\":\"slack\","
        "\"user\":{\"id\":\"U\"},\"command\":\"c\",\"text\":\"\",\"dedupe_key\":\"k\"}";
    CHECK(cq_request_decode(ok, strlen(ok), 0, &r, &err) == CQ_OK);
    cq_request_clear(&r);
    /* Oversized: one byte over max_len. */
    CHECK(cq_request_decode(ok, strlen(ok), strlen(ok) - 1, &r, &err) == CQ_ETOOBIG);
    CHECK(cq_request_decode(ok, strlen(ok), strlen(ok), &r, &err) == CQ_OK);
    cq_request_clear(&r);
    /* Not JSON, truncated JSON, empty input, trailing garbage. */
    CHECK(cq_request_decode("hello", 5, 0, &r, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: not valid JSON");
    CHECK(cq_request_decode(ok, strlen(ok) - 1, 0, &r, &err) == CQ_EPARSE);
    CHECK(cq_request_decode("", 0, 0, &r, &err) == CQ_EPARSE);
    /* Arrays, strings, numbers are not envelopes. */
    CHECK(cq_request_decode("[1,2]", 5, 0, &r, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "request: not a JSON object");
    CHECK(cq_result_decode("\"v\"", 3, 0, &res, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "result: not a JSON object");
    /* Version. */
    const char *v2 = "{\"v\":2,\"id\":\"a\"}";
    CHECK(cq_request_decode(v2, strlen(v2), 0, &r, &err) == CQ_EVERSION);
    CHECK_CONTAINS(err.msg, "version 2");
    const char *v0 = "{\"request_id\":\"a\"}";
    CHECK(cq_result_decode(v0, strlen(v0), 0, &res, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "result: field 'v' is missing");
    const char *vf = "{\"v\":1.5}";
    CHECK(cq_result_decode(vf, strlen(vf), 0, &res, &err) == CQ_EVERSION);
    /* Not NUL-terminated: only len bytes are read. */
    char buf[512];
    size_t n = strlen(ok);
    memcpy(buf, ok, n);
    memset(buf + n, '}', sizeof(buf) - n);
    CHECK(cq_request_decode(buf, n, 0, &r, &err) == CQ_OK);
    CHECK_STR(r.command, "c");
    cq_request_clear(&r);
}

TEST(unknown_fields_ignored) {
    struct cq_request r;
    struct cq_err err = {0};
    const char *j = "{\"v\":1,\"future\":{\"x\":[1,2]},\"id\":\"a\",\"received_at\":\"t\","
                    "\"platform\":\"feishu\",\"user\":{\"id\":\"U\",\"email\":\"a@b\"},"
                    "\"command\":\"c\",\"text\":\"t x\",\"dedupe_key\":\"k\",\"priority\":7}";
    CHECK(cq_request_decode(j, strlen(j), 0, &r, &err) == CQ_OK);
    CHECK_STR(r.user_id, "U");
    CHECK_STR(r.text, "t x");
    cq_request_clear(&r);
    /* Explicit null for an optional field reads as absent. */
    const char *jn = "{\"v\":1,\"id\":\"a\",\"received_at\":\"t\",\"platform\":\"slack\","
                     "\"tenant\":null,\"user\":{\"id\":\"U\"},\"command\":\"c\",\"text\":\"\","
                     "\"dedupe_key\":\"k\"}";
    CHECK(cq_request_decode(jn, strlen(jn), 0, &r, &err) == CQ_OK);
    CHECK(r.tenant == NULL);
    cq_request_clear(&r);
}

TEST(strings_survive) {
    struct cq_request in, out;
    struct cq_err err = {0};
    fill_min_request(&in);
    /* Quotes, backslashes, control characters and multi-byte UTF-8. */
    in.text = "say \"hi\" \\ path\\to\tx\n\x01\x1f caf\xc3\xa9 \xf0\x9f\x9a\x80 \xe4\xb8\xad";
    in.user_name = "\xe5\xbc\xa0\xe4\xb8\x89";
    char *json = cq_request_encode(&in, &err);
    CHECK(json != NULL);
    if (!json) return;
    CHECK(strchr(json, '\n') == NULL); /* one line */
    CHECK(cq_request_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.text, in.text);
    CHECK_STR(out.user_name, in.user_name);
    cq_request_clear(&out);
    free(json);

    /* \u escapes (incl. a surrogate pair) decode to UTF-8 and re-encode stably. */
    const char *esc = "{\"v\":1,\"id\":\"a\",\"received_at\":\"t\",\"platform\":\"slack\","
                      "\"user\":{\"id\":\"U\"},\"command\":\"d\\u00e9ploy\","
                      "\"text\":\"\\ud83d\\ude80 \\u4e2d \\\\u0000 \\u001f\","
                      "\"dedupe_key\":\"k\"}";
    CHECK(cq_request_decode(esc, strlen(esc), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.command, "d\xc3\xa9ploy");
    CHECK_STR(out.text, "\xf0\x9f\x9a\x80 \xe4\xb8\xad \\u0000 \x1f");
    json = cq_request_encode(&out, &err);
    struct cq_request again;
    CHECK(json && cq_request_decode(json, strlen(json), 0, &again, &err) == CQ_OK);
    CHECK(cqt_request_equal(&out, &again));
    cq_request_clear(&again);
    cq_request_clear(&out);
    free(json);
}

TEST(nul_and_utf8_rejected) {
    struct cq_request r;
    struct cq_err err = {0};
    /* A NUL would silently truncate "deploy\0 --force" to "deploy". */
    const char *esc = "{\"v\":1,\"id\":\"a\",\"received_at\":\"t\",\"platform\":\"slack\","
                      "\"user\":{\"id\":\"U\"},\"command\":\"deploy\\u0000x\",\"text\":\"\","
                      "\"dedupe_key\":\"k\"}";
    CHECK(cq_request_decode(esc, strlen(esc), 0, &r, &err) == CQ_EPARSE);
    CHECK_CONTAINS(err.msg, "NUL");
    char raw[256];
    int n = snprintf(raw, sizeof(raw), "%s", esc);
    char *p = strstr(raw, "\\u0000");
    CHECK(p != NULL);
    if (p) {
        memmove(p + 1, p + 6, strlen(p + 6) + 1); /* replace the escape by a raw NUL */
        *p = '\0';
        n -= 5;
        CHECK(cq_request_decode(raw, (size_t)n, 0, &r, &err) == CQ_EPARSE);
        CHECK_CONTAINS(err.msg, "NUL");
    }
    /* Invalid UTF-8 (bare continuation byte, overlong, surrogate). */
    static const char *bad[] = {"a\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf5\x80\x80\x80",
                                "\xe4\xb8"};
    for (size_t i = 0; i < 5; i++) {
        char j[256];
        snprintf(j, sizeof(j),
                 "{\"v\":1,\"id\":\"a\",\"received_at\":\"t\",\"platform\":\"slack\","
                 "\"user\":{\"id\":\"U\"},\"command\":\"c\",\"text\":\"%s\",\"dedupe_key\":\"k\"}",
                 bad[i]);
        CHECK(cq_request_decode(j, strlen(j), 0, &r, &err) == CQ_EPARSE);
        CHECK_STR(err.msg, "request: field 'text' is not valid UTF-8");
    }
}

TEST(encode_validates) {
    struct cq_request r;
    struct cq_result res;
    struct cq_err err = {0};
    fill_min_request(&r);
    r.command = NULL;
    CHECK(cq_request_encode(&r, &err) == NULL);
    CHECK_STR(err.msg, "request: field 'command' is missing");
    fill_min_request(&r);
    r.platform = "irc";
    CHECK(cq_request_encode(&r, &err) == NULL);
    CHECK_CONTAINS(err.msg, "'platform' has an unsupported value");
    fill_min_request(&r);
    r.retry_num = -1;
    CHECK(cq_request_encode(&r, &err) == NULL);
    fill_min_result(&res);
    res.step = NULL;
    CHECK(cq_result_encode(&res, &err) == NULL);
    CHECK_STR(err.msg, "result: field 'step' is missing");
    fill_min_result(&res);
    res.text = NULL; /* may be empty: written as "" */
    char *j = cq_result_encode(&res, &err);
    CHECK_CONTAINS(j, "\"text\":\"\"");
    free(j);
    CHECK(cq_request_encode(NULL, &err) == NULL);
    CHECK(cq_result_encode(NULL, NULL) == NULL);
}

TEST(clear_and_time) {
    struct cq_request r;
    struct cq_result res;
    memset(&r, 0, sizeof(r));
    memset(&res, 0, sizeof(res));
    cq_request_clear(&r);
    cq_result_clear(&res);
    cq_request_clear(NULL);
    cq_result_clear(NULL);
    char ts[32];
    cq_now_rfc3339(ts);
    /* 2024-05-01T12:00:00.123Z */
    CHECK(strlen(ts) == 24);
    CHECK(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' && ts[16] == ':' &&
          ts[19] == '.' && ts[23] == 'Z');
    CHECK(strncmp(ts, "20", 2) == 0);
    printf("  now: %s\n", s_or_null(ts));
    /* the seconds part is cached per second: across a second boundary it must move on, and
     * the time it gives matches the clock */
    char later[32];
    for (int i = 0; i < 12; i++) {
        struct timespec nap = {0, 100 * 1000 * 1000};
        nanosleep(&nap, NULL);
        cq_now_rfc3339(later);
    }
    CHECK(strlen(later) == 24 && strcmp(later, ts) > 0);
    CHECK(strncmp(later, ts, 19) != 0); /* 1.2 s later: another second */
    time_t now = time(NULL);
    struct tm tm;
    char want[32];
    gmtime_r(&now, &tm);
    strftime(want, sizeof(want), "%Y-%m-%dT%H:%M", &tm);
    CHECK(strncmp(later, want, 16) == 0 || tm.tm_sec == 0); /* same minute (or just turned) */
}

TEST(rfc3339_parse) {
    int64_t ms = -1;
    CHECK(cq_rfc3339_parse_ms("1970-01-01T00:00:00Z", &ms) && ms == 0);
    CHECK(cq_rfc3339_parse_ms("2026-01-01T00:00:00Z", &ms) && ms == 1767225600000LL);
    CHECK(cq_rfc3339_parse_ms("2026-01-01T00:00:00.123Z", &ms) && ms == 1767225600123LL);
    CHECK(cq_rfc3339_parse_ms("2026-01-01T02:00:00.5+02:00", &ms) && ms == 1767225600500LL);
    CHECK(cq_rfc3339_parse_ms("2025-12-31T23:00:00-01:00", &ms) && ms == 1767225600000LL);
    char now[32];
    cq_now_rfc3339(now);
    CHECK(cq_rfc3339_parse_ms(now, &ms) && llabs(ms - (int64_t)time(NULL) * 1000) < 2000);
    ms = 7;
    CHECK(!cq_rfc3339_parse_ms("", &ms) && ms == 7);
    CHECK(!cq_rfc3339_parse_ms(NULL, &ms));
    CHECK(!cq_rfc3339_parse_ms("2026-01-01", &ms));
    CHECK(!cq_rfc3339_parse_ms("2026-01-01T00:00:00", &ms));  /* no zone */
    CHECK(!cq_rfc3339_parse_ms("2026-13-01T00:00:00Z", &ms)); /* month 13 */
    CHECK(!cq_rfc3339_parse_ms("2026-01-01T00:00:00Zjunk", &ms));
    CHECK(!cq_rfc3339_parse_ms("2026-01-01T00:00:00.Z", &ms));
    CHECK(!cq_rfc3339_parse_ms("yesterday", &ms) && ms == 7);
}

int main(void) {
    printf("envelope: request/result encode+decode, validation errors name the field\n");
    RUN(request_round_trip_full);
    RUN(request_round_trip_minimal);
    RUN(result_round_trip);
    RUN(request_missing_required);
    RUN(result_missing_required);
    RUN(wrong_types);
    RUN(bad_enums);
    RUN(over_long_fields);
    RUN(rejects_whole_message);
    RUN(unknown_fields_ignored);
    RUN(strings_survive);
    RUN(nul_and_utf8_rejected);
    RUN(encode_validates);
    RUN(clear_and_time);
    RUN(rfc3339_parse);
    return cqtest_done();
}
