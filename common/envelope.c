/* envelope: encode/decode of the "v":1 messages on chatops.requests and
 * chatops.results (see envelope.h for the rules; audit records and dead letters are in
 * envelope_records.c, on the same field-table engine, envelope_int.h). One field table per message
 * drives both directions, so the encoder can never write what the decoder
 * would refuse. JSON itself is cJSON's job. */
#include "envelope.h"
#include "envelope_int.h"
#include "utf8.h"

#include <ctype.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

static const char *const platforms[] = {"slack",   "feishu", "dingtalk", "mattermost",
                                        "discord", "webex",  NULL};
static const char *const conversation_types[] = {"group", "direct", NULL};
static const char *const text_sources[] = {"webex", NULL};
static const char *const steps[] = {"ack", "progress", "final", NULL};
static const char *const statuses[] = {"ok", "denied", "invalid", "failed", "timeout", NULL};
static const char *const response_types[] = {"ephemeral", "in_channel", NULL};
static const char *const button_kinds[] = {"approval", "confirm", "done", NULL};

#define REQ(m) offsetof(struct cq_request, m)
#define RES(m) offsetof(struct cq_result, m)

static const struct field request_fields[] = {
    {NULL, "id", REQ(id), CQ_ENV_MAX_ID, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "received_at", REQ(received_at), CQ_ENV_MAX_TIME, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "platform", REQ(platform), 16, F_REQUIRED, platforms},
    {NULL, "tenant", REQ(tenant), CQ_ENV_MAX_ID, 0, NULL},
    {"channel", "id", REQ(channel_id), CQ_ENV_MAX_ID, 0, NULL},
    {"channel", "name", REQ(channel_name), CQ_ENV_MAX_NAME, 0, NULL},
    {"user", "id", REQ(user_id), CQ_ENV_MAX_ID, F_REQUIRED | F_NONEMPTY, NULL},
    {"user", "name", REQ(user_name), CQ_ENV_MAX_NAME, 0, NULL},
    {NULL, "command", REQ(command), CQ_ENV_MAX_COMMAND, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "text", REQ(text), CQ_ENV_MAX_TEXT, F_REQUIRED, NULL},
    {"reply", "response_url", REQ(reply.response_url), CQ_ENV_MAX_URL, 0, NULL},
    {"reply", "message_id", REQ(reply.message_id), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "chat_id", REQ(reply.chat_id), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "thread_ts", REQ(reply.thread_ts), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "expires_at", REQ(reply.expires_at), CQ_ENV_MAX_TIME, 0, NULL},
    {"reply", "conversation_type", REQ(reply.conversation_type), 16, 0, conversation_types},
    {"reply", "user_id", REQ(reply.user_id), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "app_id", REQ(reply.app_id), CQ_ENV_MAX_ID, 0, NULL},
    {NULL, "dedupe_key", REQ(dedupe_key), CQ_ENV_MAX_KEY, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "text_source", REQ(text_source), 16, 0, text_sources},
    /* optional, additive (issue 16): a button click */
    {"action", "name", REQ(action.name), CQ_ENV_MAX_COMMAND, F_NONEMPTY, NULL},
    {"action", "value", REQ(action.value), CQ_ENV_MAX_ID, 0, NULL},
    {"action", "request_id", REQ(action.request_id), CQ_ENV_MAX_ID, 0, NULL},
    {"action", "message", REQ(action.message), CQ_ENV_MAX_ID, 0, NULL},
};

static const struct field result_fields[] = {
    {NULL, "request_id", RES(request_id), CQ_ENV_MAX_ID, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "step", RES(step), 16, F_REQUIRED, steps},
    {NULL, "status", RES(status), 16, F_REQUIRED, statuses},
    {NULL, "platform", RES(platform), 16, F_REQUIRED, platforms},
    {"reply", "response_url", RES(reply.response_url), CQ_ENV_MAX_URL, 0, NULL},
    {"reply", "message_id", RES(reply.message_id), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "chat_id", RES(reply.chat_id), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "thread_ts", RES(reply.thread_ts), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "expires_at", RES(reply.expires_at), CQ_ENV_MAX_TIME, 0, NULL},
    {"reply", "conversation_type", RES(reply.conversation_type), 16, 0, conversation_types},
    {"reply", "user_id", RES(reply.user_id), CQ_ENV_MAX_ID, 0, NULL},
    {"reply", "app_id", RES(reply.app_id), CQ_ENV_MAX_ID, 0, NULL},
    {NULL, "text", RES(text), CQ_ENV_MAX_TEXT, F_REQUIRED, NULL},
    {NULL, "command", RES(command), CQ_ENV_MAX_COMMAND_LINE, 0, NULL},
    {NULL, "user_name", RES(user_name), CQ_ENV_MAX_NAME, 0, NULL},
    {NULL, "response_type", RES(response_type), 16, 0, response_types},
    {"pipeline", "web_url", RES(pipeline.web_url), CQ_ENV_MAX_URL, 0, NULL},
    {"pipeline", "status", RES(pipeline.status), 64, 0, NULL},
    {NULL, "produced_at", RES(produced_at), CQ_ENV_MAX_TIME, 0, NULL},
    {"event", "kind", RES(event_kind), 32, 0, NULL},
    {"event", "status", RES(event_status), 64, 0, NULL},
    {"event", "url", RES(event_url), CQ_ENV_MAX_URL, 0, NULL},
    {"event", "project", RES(event_project), 512, 0, NULL},
    {"event", "ref", RES(event_ref), 512, 0, NULL},
    {"event", "author", RES(event_author), CQ_ENV_MAX_NAME, 0, NULL},
    {"event", "environment", RES(event_env), CQ_ENV_MAX_NAME, 0, NULL},
    {"buttons", "kind", RES(buttons_kind), 16, 0, button_kinds}, /* optional (issue 16) */
    {"buttons", "request_id", RES(buttons_request_id), CQ_ENV_MAX_ID, 0, NULL},
};

char **env_slot(const void *msg, const struct field *f) {
    return (char **)((char *)(uintptr_t)msg + f->offset);
}

void env_field_path(const struct field *f, char *out, size_t outlen) {
    if (f->group)
        snprintf(out, outlen, "%s.%s", f->group, f->key);
    else
        snprintf(out, outlen, "%s", f->key);
}

/* Checks one string value against its field rule; err names the field. */
enum cq_rc env_check_value(const char *kind, const struct field *f, const char *v,
                           struct cq_err *err) {
    char path[64];
    size_t len = strlen(v);
    const char *why = NULL;
    if (len > f->max) {
        env_field_path(f, path, sizeof(path));
        return cq_err_set(err, CQ_EPARSE, "%s: field '%s' exceeds %zu bytes", kind, path, f->max);
    }
    if ((f->flags & F_NONEMPTY) && len == 0)
        why = "is empty";
    else if (!cq_utf8_valid(v, len))
        why = "is not valid UTF-8";
    else if (f->allowed) {
        why = "has an unsupported value";
        for (const char *const *a = f->allowed; *a; a++)
            if (strcmp(*a, v) == 0) why = NULL;
    }
    if (!why) return CQ_OK;
    env_field_path(f, path, sizeof(path)); /* only for the error: it was a visible cost per field */
    return cq_err_set(err, CQ_EPARSE, "%s: field '%s' %s", kind, path, why);
}

/* ---- encode ---- */

cJSON *env_group_object(cJSON *root, const char *group) {
    cJSON *g = cJSON_GetObjectItemCaseSensitive(root, group);
    if (g) return g;
    return cJSON_AddObjectToObject(root, group);
}

enum cq_rc env_encode_fields(const char *kind, const void *msg, const struct field *fields,
                             size_t n, cJSON *root, struct cq_err *err) {
    for (size_t i = 0; i < n; i++) {
        const struct field *f = &fields[i];
        const char *v = *env_slot(msg, f);
        cJSON *parent = root;
        enum cq_rc rc;
        if (!v) {
            if (!(f->flags & F_REQUIRED)) continue;
            if ((f->flags & F_NONEMPTY) || f->allowed) {
                char path[64];
                env_field_path(f, path, sizeof(path));
                return cq_err_set(err, CQ_EINVAL, "%s: field '%s' is missing", kind, path);
            }
            v = ""; /* required but may be empty: text */
        }
        rc = env_check_value(kind, f, v, err);
        if (rc != CQ_OK) {
            /* the value cannot go into the message (invalid UTF-8, too long, empty, not an
             * allowed word): an encoding failure, never "out of memory" */
            if (err) err->code = CQ_EENCODE;
            return CQ_EENCODE;
        }
        if (f->group) parent = env_group_object(root, f->group);
        if (!parent || !cJSON_AddStringToObject(parent, f->key, v))
            return cq_err_set(err, CQ_ENOMEM, "%s: out of memory", kind);
    }
    return CQ_OK;
}

/* Integers are written as raw digits: cJSON prints doubles with 15 significant digits,
 * which would round a large pipeline id. */
bool env_add_number(cJSON *obj, const char *key, long long v) {
    char digits[32];
    snprintf(digits, sizeof(digits), "%lld", v);
    return cJSON_AddRawToObject(obj, key, digits) != NULL;
}

/* Printed into a stack buffer first (cJSON's own printer grows a heap buffer from 256 bytes
 * and reallocates several times for a typical envelope), then copied once. */
char *env_print_or_fail(cJSON *root, const char *kind, struct cq_err *err) {
    char buf[4096];
    char *s = NULL;
    if (cJSON_PrintPreallocated(root, buf, (int)sizeof(buf), 0))
        s = strdup(buf);
    else
        s = cJSON_PrintUnformatted(root); /* larger than the buffer */
    if (!s) cq_err_set(err, CQ_ENOMEM, "%s: out of memory", kind);
    return s;
}

char *cq_request_encode(const struct cq_request *r, struct cq_err *err) {
    if (!r) {
        cq_err_set(err, CQ_EINVAL, "request: NULL");
        return NULL;
    }
    if (r->retry_num < 0 || r->retry_num > CQ_ENV_MAX_RETRY_NUM) {
        cq_err_set(err, CQ_EINVAL, "request: field 'retry_num' is out of range");
        return NULL;
    }
    /* the ingress encodes one per request: printed from stack nodes, no tree (envelope_stack.c) */
    const struct env_int v = {"v", CQ_ENVELOPE_VERSION}, retry = {"retry_num", r->retry_num};
    return env_encode_stack("request", r, request_fields, NFIELDS(request_fields), &v, 1, &retry, 1,
                            err);
}

char *cq_result_encode(const struct cq_result *r, struct cq_err *err) {
    cJSON *root = NULL, *pl;
    char *out = NULL;

    if (!r) {
        cq_err_set(err, CQ_EINVAL, "result: NULL");
        goto out;
    }
    if (r->seq < 0) {
        cq_err_set(err, CQ_EINVAL, "result: field 'seq' is out of range");
        goto out;
    }
    if (r->pipeline.id < 0 || (double)r->pipeline.id > MAX_EXACT_INT) {
        cq_err_set(err, CQ_EINVAL, "result: field 'pipeline.id' is out of range");
        goto out;
    }
    root = cJSON_CreateObject();
    if (!root || !env_add_number(root, "v", CQ_ENVELOPE_VERSION)) {
        cq_err_set(err, CQ_ENOMEM, "result: out of memory");
        goto out;
    }
    if (env_encode_fields("result", r, result_fields, NFIELDS(result_fields), root, err) != CQ_OK)
        goto out;
    if (!env_add_number(root, "seq", r->seq) ||
        (r->outcome_unknown && !cJSON_AddTrueToObject(root, "outcome_unknown"))) {
        cq_err_set(err, CQ_ENOMEM, "result: out of memory");
        goto out;
    }
    if (r->pipeline.id != 0) {
        pl = env_group_object(root, "pipeline");
        if (!pl || !env_add_number(pl, "id", r->pipeline.id)) {
            cq_err_set(err, CQ_ENOMEM, "result: out of memory");
            goto out;
        }
    }
    out = env_print_or_fail(root, "result", err);
out:
    cJSON_Delete(root);
    return out;
}

/* ---- decode ---- */

/* The struct holds C strings: a NUL (raw, or the \u0000 escape) would truncate a value
 * silently, so such messages are refused before parsing. */
static bool env_has_nul(const char *json, size_t len) {
    if (memchr(json, '\0', len)) return true;
    for (size_t i = 0; i + 1 < len; i++) {
        if (json[i] != '\\') continue;
        if (json[i + 1] == 'u' && i + 5 < len && memcmp(json + i + 2, "0000", 4) == 0) return true;
        i++; /* skip the escaped character, so "\\u0000" (escaped backslash) is fine */
    }
    return false;
}

enum cq_rc env_parse_root(const char *kind, const char *json, size_t len, size_t max_len, int vmax,
                          int *vout, bool nul_ok, cJSON **root, struct cq_err *err) {
    const cJSON *v;
    *root = NULL;
    if (max_len == 0) max_len = CQ_ENVELOPE_MAX_LEN;
    if (!json) return cq_err_set(err, CQ_EINVAL, "%s: NULL input", kind);
    if (len > max_len)
        return cq_err_set(err, CQ_ETOOBIG, "%s: %zu bytes exceeds the limit of %zu", kind, len,
                          max_len);
    if (!nul_ok && env_has_nul(json, len))
        return cq_err_set(err, CQ_EPARSE, "%s: contains a NUL character", kind);
    *root = cJSON_ParseWithLength(json, len);
    if (!*root) return cq_err_set(err, CQ_EPARSE, "%s: not valid JSON", kind);
    if (!cJSON_IsObject(*root)) return cq_err_set(err, CQ_EPARSE, "%s: not a JSON object", kind);
    v = cJSON_GetObjectItemCaseSensitive(*root, "v");
    if (!v) return cq_err_set(err, CQ_EPARSE, "%s: field 'v' is missing", kind);
    if (!cJSON_IsNumber(v))
        return cq_err_set(err, CQ_EPARSE, "%s: field 'v' must be a number", kind);
    if (v->valuedouble < 1 || v->valuedouble > vmax || v->valuedouble != floor(v->valuedouble))
        return cq_err_set(err, CQ_EVERSION, "%s: unsupported version %g (expected %s%d)", kind,
                          v->valuedouble, vmax > 1 ? "1.." : "", vmax);
    if (vout) *vout = (int)v->valuedouble;
    return CQ_OK;
}

/* Finds a group object; a present group that is not an object is an error. */
enum cq_rc env_get_group(const char *kind, const cJSON *root, const char *group, const cJSON **out,
                         struct cq_err *err) {
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, group);
    *out = NULL;
    if (!g || cJSON_IsNull(g)) return CQ_OK;
    if (!cJSON_IsObject(g))
        return cq_err_set(err, CQ_EPARSE, "%s: field '%s' must be an object", kind, group);
    *out = g;
    return CQ_OK;
}

enum cq_rc env_decode_fields(const char *kind, const cJSON *root, const struct field *fields,
                             size_t n, void *msg, struct cq_err *err) {
    for (size_t i = 0; i < n; i++) {
        const struct field *f = &fields[i];
        const cJSON *parent = root, *item;
        char path[64];
        enum cq_rc rc;

        env_field_path(f, path, sizeof(path));
        if (f->group) {
            rc = env_get_group(kind, root, f->group, &parent, err);
            if (rc != CQ_OK) return rc;
        }
        item = parent ? cJSON_GetObjectItemCaseSensitive(parent, f->key) : NULL;
        if (!item || cJSON_IsNull(item)) {
            if (f->flags & F_REQUIRED)
                return cq_err_set(err, CQ_EPARSE, "%s: field '%s' is missing", kind, path);
            continue;
        }
        if (!cJSON_IsString(item) || !item->valuestring)
            return cq_err_set(err, CQ_EPARSE, "%s: field '%s' must be a string", kind, path);
        rc = env_check_value(kind, f, item->valuestring, err);
        if (rc != CQ_OK) return rc;
        *env_slot(msg, f) = strdup(item->valuestring);
        if (!*env_slot(msg, f)) return cq_err_set(err, CQ_ENOMEM, "%s: out of memory", kind);
    }
    return CQ_OK;
}

/* An optional non-negative integer; absent leaves *out at 0. */
enum cq_rc env_get_int(const char *kind, const cJSON *parent, const char *key, const char *path,
                       double max, long long *out, struct cq_err *err) {
    const cJSON *item = parent ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
    double d;
    *out = 0;
    if (!item || cJSON_IsNull(item)) return CQ_OK;
    if (!cJSON_IsNumber(item))
        return cq_err_set(err, CQ_EPARSE, "%s: field '%s' must be a number", kind, path);
    d = item->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < 0 || d > max)
        return cq_err_set(err, CQ_EPARSE, "%s: field '%s' must be an integer in 0..%.0f", kind,
                          path, max);
    *out = (long long)d;
    return CQ_OK;
}

enum cq_rc cq_request_decode(const char *json, size_t len, size_t max_len, struct cq_request *out,
                             struct cq_err *err) {
    cJSON *root = NULL;
    long long retry = 0;
    enum cq_rc rc;

    if (!out) return cq_err_set(err, CQ_EINVAL, "request: NULL output");
    memset(out, 0, sizeof(*out));
    rc =
        env_parse_root("request", json, len, max_len, CQ_ENVELOPE_VERSION, NULL, false, &root, err);
    if (rc != CQ_OK) goto out;
    rc = env_decode_fields("request", root, request_fields, NFIELDS(request_fields), out, err);
    if (rc != CQ_OK) goto out;
    rc = env_get_int("request", root, "retry_num", "retry_num", CQ_ENV_MAX_RETRY_NUM, &retry, err);
    if (rc != CQ_OK) goto out;
    out->retry_num = (int)retry;
out:
    cJSON_Delete(root);
    if (rc != CQ_OK) cq_request_clear(out);
    return rc;
}

enum cq_rc cq_result_decode(const char *json, size_t len, size_t max_len, struct cq_result *out,
                            struct cq_err *err) {
    cJSON *root = NULL;
    const cJSON *pl = NULL;
    long long n = 0;
    enum cq_rc rc;

    if (!out) return cq_err_set(err, CQ_EINVAL, "result: NULL output");
    memset(out, 0, sizeof(*out));
    rc = env_parse_root("result", json, len, max_len, CQ_ENVELOPE_VERSION, NULL, false, &root, err);
    if (rc != CQ_OK) goto out;
    rc = env_decode_fields("result", root, result_fields, NFIELDS(result_fields), out, err);
    if (rc != CQ_OK) goto out;
    rc = env_get_int("result", root, "seq", "seq", 2147483647.0, &n, err);
    if (rc != CQ_OK) goto out;
    out->seq = (int)n;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(root, "outcome_unknown");
    if (unk && !cJSON_IsBool(unk)) {
        rc = cq_err_set(err, CQ_EINVAL, "result: field 'outcome_unknown' must be a boolean");
        goto out;
    }
    out->outcome_unknown = cJSON_IsTrue(unk);
    rc = env_get_group("result", root, "pipeline", &pl, err);
    if (rc != CQ_OK) goto out;
    rc = env_get_int("result", pl, "id", "pipeline.id", MAX_EXACT_INT, &n, err);
    if (rc != CQ_OK) goto out;
    out->pipeline.id = n;
out:
    cJSON_Delete(root);
    if (rc != CQ_OK) cq_result_clear(out);
    return rc;
}

void env_clear_fields(void *msg, const struct field *fields, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char **p = env_slot(msg, &fields[i]);
        free(*p);
        *p = NULL;
    }
}

void cq_request_clear(struct cq_request *r) {
    if (!r) return;
    env_clear_fields(r, request_fields, NFIELDS(request_fields));
    memset(r, 0, sizeof(*r));
}

void cq_result_clear(struct cq_result *r) {
    if (!r) return;
    env_clear_fields(r, result_fields, NFIELDS(result_fields));
    memset(r, 0, sizeof(*r));
}

void cq_now_rfc3339(char out[32]) {
    /* the date and time to the second change once a second: formatted once per thread */
    static _Thread_local time_t last_sec = -1;
    static _Thread_local char last[24];
    static _Thread_local size_t last_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        last_len = strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000L;
    memcpy(out, last, last_len);
    out[last_len] = '.';
    out[last_len + 1] = (char)('0' + ms / 100);
    out[last_len + 2] = (char)('0' + ms / 10 % 10);
    out[last_len + 3] = (char)('0' + ms % 10);
    out[last_len + 4] = 'Z';
    out[last_len + 5] = '\0';
}

bool cq_rfc3339_parse_ms(const char *s, int64_t *ms) {
    int y, mo, d, h, mi, sec, n = 0;
    long frac_ms = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    const char *p = s + n;
    if (*p == '.') {
        long scale = 100;
        if (!isdigit((unsigned char)*++p)) return false;
        for (; isdigit((unsigned char)*p); p++, scale /= 10)
            frac_ms += (*p - '0') * scale;
    }
    long off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh > 23 || om > 59)
            return false;
        off_s = (long)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p) return false;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && y != 1969) return false;
    *ms = ((int64_t)t - off_s) * 1000 + frac_ms;
    return true;
}
