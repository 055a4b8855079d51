/* envelope_records: the audit record (chatops.audit, "v":1) and the dead letter
 * (chatops.dlq, "v":2, version 1 still decoded) on the field-table engine of envelope.c
 * (envelope_int.h). See envelope.h for the shapes and docs/architecture.md for who writes
 * which. */
#include "envelope.h"
#include "envelope_int.h"

#include "crypto.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- audit ---------------------------------------------------------------------------- */

#define AUD(m) offsetof(struct cq_audit, m)

static const struct field audit_fields[] = {
    {NULL, "kind", AUD(kind), 32, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "time", AUD(time), CQ_ENV_MAX_TIME, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "request_id", AUD(request_id), CQ_ENV_MAX_ID, F_REQUIRED, NULL},
    {NULL, "dedupe_key", AUD(dedupe_key), CQ_ENV_MAX_KEY, 0, NULL},
    {"who", "platform", AUD(platform), 16, 0, NULL},
    {"who", "user_id", AUD(user_id), CQ_ENV_MAX_ID, 0, NULL},
    {"who", "user_name", AUD(user_name), CQ_ENV_MAX_NAME, 0, NULL},
    {"who", "person", AUD(person), CQ_ENV_MAX_NAME, 0, NULL},
    {"who", "gitlab_login", AUD(gitlab_login), CQ_ENV_MAX_NAME, 0, NULL},
    {"who", "identity_source", AUD(identity_source), CQ_ENV_MAX_NAME, 0, NULL},
    {"who", "roles_source", AUD(roles_source), CQ_ENV_MAX_DETAIL, 0, NULL},
    {"where", "channel_id", AUD(where_channel_id), CQ_ENV_MAX_ID, 0, NULL},
    {"where", "channel_name", AUD(where_channel_name), CQ_ENV_MAX_NAME, 0, NULL},
    {"where", "tenant", AUD(where_tenant), CQ_ENV_MAX_ID, 0, NULL},
    {NULL, "command", AUD(command), CQ_ENV_MAX_COMMAND_LINE, 0, NULL},
    {NULL, "text", AUD(text), CQ_ENV_MAX_TEXT, 0, NULL},
    {NULL, "decision", AUD(decision), 32, 0, NULL},
    {NULL, "rule", AUD(rule), CQ_ENV_MAX_NAME, 0, NULL},
    {NULL, "result", AUD(result), 16, 0, NULL},
    {NULL, "detail", AUD(detail), CQ_ENV_MAX_DETAIL, 0, NULL},
    {"pipeline", "status", AUD(pipeline_status), 64, 0, NULL},
    {NULL, "worker", AUD(worker), CQ_ENV_MAX_NAME, 0, NULL},
    {NULL, "approvers", AUD(approvers), CQ_ENV_MAX_DETAIL, 0, NULL}, /* optional (issue 16) */
};

char *cq_audit_encode(const struct cq_audit *a, struct cq_err *err) {
    cJSON *root = NULL, *who, *args, *where, *pl;
    char *out = NULL;
    if (!a) {
        cq_err_set(err, CQ_EINVAL, "audit: NULL");
        goto out;
    }
    if (a->pipeline_id < 0 || (double)a->pipeline_id > MAX_EXACT_INT) {
        cq_err_set(err, CQ_EINVAL, "audit: field 'pipeline.id' is out of range");
        goto out;
    }
    if ((a->where_channel_name || a->where_tenant) && !a->where_channel_id) {
        cq_err_set(err, CQ_EINVAL, "audit: field 'where.channel_id' is missing");
        goto out;
    }
    root = cJSON_CreateObject();
    if (!root || !env_add_number(root, "v", CQ_AUDIT_VERSION)) goto oom;
    if (env_encode_fields("audit", a, audit_fields, NFIELDS(audit_fields), root, err) != CQ_OK)
        goto out;
    if (!(who = env_group_object(root, "who")) ||
        (!a->person && !cJSON_AddNullToObject(who, "person")) ||
        (!a->gitlab_login && !cJSON_AddNullToObject(who, "gitlab_login")) ||
        (!a->rule && !cJSON_AddNullToObject(root, "rule")) ||
        !(args = cJSON_AddObjectToObject(root, "args")))
        goto oom;
    for (size_t i = 0; i < a->n_args; i++) {
        const struct field f = {
            "args", a->args[i].name ? a->args[i].name : "", 0, CQ_ENV_MAX_TEXT, F_NONEMPTY, NULL};
        if (!a->args[i].value) continue;
        if (env_check_value("audit", &f, f.key, err) != CQ_OK ||
            env_check_value("audit", &f, a->args[i].value, err) != CQ_OK) {
            if (err) err->code = CQ_EENCODE;
            goto out;
        }
        if (!cJSON_AddStringToObject(args, f.key, a->args[i].value)) goto oom;
    }
    if (a->where_channel_id) {
        where = env_group_object(root, "where");
        if (!where || !cJSON_AddBoolToObject(where, "configured", a->where_configured)) goto oom;
    }
    if (a->pipeline_id != 0) {
        pl = env_group_object(root, "pipeline");
        if (!pl || !env_add_number(pl, "id", a->pipeline_id)) goto oom;
    }
    out = env_print_or_fail(root, "audit", err);
    goto out;
oom:
    cq_err_set(err, CQ_ENOMEM, "audit: out of memory");
out:
    cJSON_Delete(root);
    return out;
}

enum cq_rc cq_audit_decode(const char *json, size_t len, size_t max_len, struct cq_audit *out,
                           struct cq_err *err) {
    cJSON *root = NULL;
    const cJSON *g = NULL, *item;
    long long n = 0;
    enum cq_rc rc;
    if (!out) return cq_err_set(err, CQ_EINVAL, "audit: NULL output");
    memset(out, 0, sizeof(*out));
    rc = env_parse_root("audit", json, len, max_len, CQ_AUDIT_VERSION, NULL, false, &root, err);
    if (rc != CQ_OK) goto out;
    rc = env_decode_fields("audit", root, audit_fields, NFIELDS(audit_fields), out, err);
    if (rc != CQ_OK) goto out;
    if ((rc = env_get_group("audit", root, "where", &g, err)) != CQ_OK) goto out;
    item = g ? cJSON_GetObjectItemCaseSensitive(g, "configured") : NULL;
    if (item && !cJSON_IsBool(item)) {
        rc = cq_err_set(err, CQ_EPARSE, "audit: field 'where.configured' must be a boolean");
        goto out;
    }
    out->where_configured = cJSON_IsTrue(item);
    if ((rc = env_get_group("audit", root, "pipeline", &g, err)) != CQ_OK) goto out;
    if ((rc = env_get_int("audit", g, "id", "pipeline.id", MAX_EXACT_INT, &n, err)) != CQ_OK)
        goto out;
    out->pipeline_id = n;
    if ((rc = env_get_group("audit", root, "args", &g, err)) != CQ_OK) goto out;
    size_t na = 0;
    cJSON_ArrayForEach(item, g) na++;
    if (na && !(out->args = calloc(na, sizeof(*out->args)))) {
        rc = cq_err_set(err, CQ_ENOMEM, "audit: out of memory");
        goto out;
    }
    cJSON_ArrayForEach(item, g) {
        const struct field f = {"args", item->string, 0, CQ_ENV_MAX_TEXT, 0, NULL};
        if (!cJSON_IsString(item)) {
            rc = cq_err_set(err, CQ_EPARSE, "audit: field 'args.%.64s' must be a string",
                            item->string);
            goto out;
        }
        if ((rc = env_check_value("audit", &f, item->valuestring, err)) != CQ_OK) goto out;
        struct cq_audit_arg *a = &out->args[out->n_args++];
        a->name = strdup(item->string);
        a->value = strdup(item->valuestring);
        if (!a->name || !a->value) {
            rc = cq_err_set(err, CQ_ENOMEM, "audit: out of memory");
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    if (rc != CQ_OK) cq_audit_clear(out);
    return rc;
}

void cq_audit_clear(struct cq_audit *a) {
    if (!a) return;
    env_clear_fields(a, audit_fields, NFIELDS(audit_fields));
    for (size_t i = 0; i < a->n_args; i++) {
        free(a->args[i].name);
        free(a->args[i].value);
    }
    free(a->args);
    memset(a, 0, sizeof(*a));
}

/* ---- dead letters ----------------------------------------------------------------------- */

#define DLQ(m) offsetof(struct cq_dlq, m)
#define DLQ_MAX_REASON 4096

static const char *const services[] = {"worker", "notifier", NULL};
static const char *const classes[] = {"invalid", "permanent", "exhausted", NULL};

/* Every string of both versions; which are required depends on the version (below). */
static const struct field dlq_fields[] = {
    {NULL, "service", DLQ(service), 16, 0, services},
    {NULL, "class", DLQ(cls), 16, 0, classes},
    {NULL, "reason", DLQ(reason), DLQ_MAX_REASON, 0, NULL},
    {NULL, "failed_at", DLQ(failed_at), CQ_ENV_MAX_TIME, 0, NULL},
    {NULL, "topic", DLQ(topic), CQ_ENV_MAX_NAME, 0, NULL},
    {NULL, "request_id", DLQ(request_id), CQ_ENV_MAX_ID, 0, NULL},
    {NULL, "step", DLQ(step), 16, 0, NULL},
    {NULL, "platform", DLQ(platform), 16, 0, NULL},
    {NULL, "route", DLQ(route), 32, 0, NULL},
    {"answer", "body", DLQ(answer_body), CQ_ENVELOPE_MAX_LEN, 0, NULL},
};

char *cq_dlq_encode(const struct cq_dlq *d, struct cq_err *err) {
    cJSON *root = NULL, *ans;
    char *out = NULL, *b64 = NULL;
    if (!d) {
        cq_err_set(err, CQ_EINVAL, "dlq: NULL");
        goto out;
    }
    if (!d->service || !d->cls || !d->reason || !d->topic || (!d->payload && d->payload_len)) {
        cq_err_set(err, CQ_EINVAL, "dlq: field '%s' is missing",
                   !d->service  ? "service"
                   : !d->cls    ? "class"
                   : !d->reason ? "reason"
                   : !d->topic  ? "topic"
                                : "payload_b64");
        goto out;
    }
    if (d->partition < 0 || d->offset < 0 || d->seq < 0 || d->attempts < 0) {
        cq_err_set(err, CQ_EINVAL, "dlq: a partition, offset, seq or attempts is negative");
        goto out;
    }
    root = cJSON_CreateObject();
    b64 = cq_base64_encode(d->payload ? d->payload : "", d->payload_len);
    if (!root || !b64 || !env_add_number(root, "v", CQ_DLQ_VERSION)) goto oom;
    if (env_encode_fields("dlq", d, dlq_fields, NFIELDS(dlq_fields), root, err) != CQ_OK) goto out;
    if (!env_add_number(root, "partition", d->partition) ||
        !env_add_number(root, "offset", d->offset) ||
        !env_add_number(root, "attempts", d->attempts) ||
        (d->request_id && !env_add_number(root, "seq", d->seq)) ||
        !cJSON_AddStringToObject(root, "payload_b64", b64))
        goto oom;
    if (d->has_answer) {
        ans = env_group_object(root, "answer");
        if (!ans || !env_add_number(ans, "status", d->answer_status) ||
            (!d->answer_body && !cJSON_AddStringToObject(ans, "body", "")))
            goto oom;
    }
    if (strcmp(d->service, "notifier") == 0) { /* a readable copy of the result */
        cJSON *orig = cJSON_ParseWithLength(d->payload ? d->payload : "", d->payload_len);
        if (orig) {
            cJSON_AddItemToObject(root, "result", orig);
        } else {
            char *raw = cq_utf8_clean(d->payload ? d->payload : "", d->payload_len, 0);
            if (!raw) goto oom;
            cJSON_AddStringToObject(root, "raw", raw);
            free(raw);
        }
    }
    out = env_print_or_fail(root, "dlq", err);
    goto out;
oom:
    cq_err_set(err, CQ_ENOMEM, "dlq: out of memory");
out:
    cJSON_Delete(root);
    free(b64);
    return out;
}

static enum cq_rc dlq_int(const cJSON *parent, const char *key, double max, long long *out,
                          struct cq_err *err) {
    return env_get_int("dlq", parent, key, key, max, out, err);
}

/* The original of a version 1 letter: payload_b64 (worker), result (JSON) or raw (notifier);
 * the source topic of a notifier letter. */
static enum cq_rc dlq_v1(const cJSON *root, struct cq_dlq *out, struct cq_err *err) {
    const cJSON *src = NULL, *res = cJSON_GetObjectItemCaseSensitive(root, "result");
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(root, "raw");
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(root, "time");
    long long n = 0;
    enum cq_rc rc = env_get_group("dlq", root, "source", &src, err);
    if (rc != CQ_OK) return rc;
    if (!out->service && !(out->service = strdup("notifier"))) goto oom;
    if (!out->failed_at && cJSON_IsString(time) && !(out->failed_at = strdup(time->valuestring)))
        goto oom;
    if (src) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(src, "topic");
        if (!out->topic && cJSON_IsString(t) && !(out->topic = strdup(t->valuestring))) goto oom;
        if ((rc = dlq_int(src, "partition", 2147483647.0, &n, err)) != CQ_OK) return rc;
        out->partition = (int)n;
        if ((rc = dlq_int(src, "offset", MAX_EXACT_INT, &n, err)) != CQ_OK) return rc;
        out->offset = n;
    }
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(res, "request_id");
    if (!out->request_id && cJSON_IsString(rid) && !(out->request_id = strdup(rid->valuestring)))
        goto oom;
    if (!out->payload && (res || cJSON_IsString(raw))) {
        out->payload = res ? cJSON_PrintUnformatted(res) : strdup(raw->valuestring);
        if (!out->payload) goto oom;
        out->payload_len = strlen(out->payload);
    }
    return CQ_OK;
oom:
    return cq_err_set(err, CQ_ENOMEM, "dlq: out of memory");
}

enum cq_rc cq_dlq_decode(const char *json, size_t len, size_t max_len, struct cq_dlq *out,
                         struct cq_err *err) {
    cJSON *root = NULL;
    const cJSON *ans = NULL, *b64;
    long long n = 0;
    int v = 0;
    enum cq_rc rc;
    if (!out) return cq_err_set(err, CQ_EINVAL, "dlq: NULL output");
    memset(out, 0, sizeof(*out));
    rc = env_parse_root("dlq", json, len, max_len, CQ_DLQ_VERSION, &v, true, &root, err);
    if (rc != CQ_OK) goto out;
    out->version = v;
    if ((rc = env_decode_fields("dlq", root, dlq_fields, NFIELDS(dlq_fields), out, err)) != CQ_OK)
        goto out;
    if ((rc = dlq_int(root, "partition", 2147483647.0, &n, err)) != CQ_OK) goto out;
    out->partition = (int)n;
    if ((rc = dlq_int(root, "offset", MAX_EXACT_INT, &n, err)) != CQ_OK) goto out;
    out->offset = n;
    if ((rc = dlq_int(root, "seq", 2147483647.0, &n, err)) != CQ_OK) goto out;
    out->seq = (int)n;
    if ((rc = dlq_int(root, "attempts", 2147483647.0, &n, err)) != CQ_OK) goto out;
    out->attempts = (int)n;
    if ((rc = env_get_group("dlq", root, "answer", &ans, err)) != CQ_OK) goto out;
    if (ans) {
        if ((rc = env_get_int("dlq", ans, "status", "answer.status", 2147483647.0, &n, err)) !=
            CQ_OK)
            goto out;
        out->has_answer = true;
        out->answer_status = (int)n;
    }
    b64 = cJSON_GetObjectItemCaseSensitive(root, "payload_b64");
    if (b64 && !cJSON_IsString(b64)) {
        rc = cq_err_set(err, CQ_EPARSE, "dlq: field 'payload_b64' must be a string");
        goto out;
    }
    if (b64) {
        out->payload =
            (char *)cq_base64_decode(b64->valuestring, strlen(b64->valuestring), &out->payload_len);
        if (!out->payload) {
            rc = cq_err_set(err, CQ_EPARSE, "dlq: field 'payload_b64' is not base64");
            goto out;
        }
    }
    if (v == 1 && (rc = dlq_v1(root, out, err)) != CQ_OK) goto out;
    const char *missing = !out->reason    ? "reason"
                          : v == 1        ? NULL
                          : !out->service ? "service"
                          : !out->topic   ? "topic"
                          : !b64          ? "payload_b64"
                                          : NULL;
    if (missing) rc = cq_err_set(err, CQ_EPARSE, "dlq: field '%s' is missing", missing);
out:
    cJSON_Delete(root);
    if (rc != CQ_OK) cq_dlq_clear(out);
    return rc;
}

void cq_dlq_clear(struct cq_dlq *d) {
    if (!d) return;
    env_clear_fields(d, dlq_fields, NFIELDS(dlq_fields));
    free(d->payload);
    memset(d, 0, sizeof(*d));
}
