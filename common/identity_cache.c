/* identity_cache: encode and decode the identity cache record (identity_cache.h) with cJSON;
 * the worker writes it, chatopsctl identity reads it. */
#include "identity_cache.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutil.h"

char *cq_ident_key(const char *prefix, const char *platform, const char *user_id) {
    return cq_strprintf("%sident:%s:%s", prefix ? prefix : "", platform ? platform : "",
                        user_id ? user_id : "");
}

static bool add_str(cJSON *o, const char *k, const char *v) {
    return !v || cJSON_AddStringToObject(o, k, v) != NULL;
}

char *cq_ident_encode(const struct cq_ident_entry *e) {
    cJSON *o = cJSON_CreateObject(), *roles = NULL;
    char *out = NULL;
    if (!o || !e) goto out;
    if (!cJSON_AddNumberToObject(o, "v", CQ_IDENT_VERSION) ||
        !cJSON_AddBoolToObject(o, "resolved", e->resolved) ||
        !cJSON_AddNumberToObject(o, "at", (double)e->at_ms) ||
        !cJSON_AddNumberToObject(o, "ttl", e->ttl_s) || !add_str(o, "login", e->login) ||
        (e->gitlab_id && !cJSON_AddNumberToObject(o, "gitlab_id", (double)e->gitlab_id)) ||
        !add_str(o, "gitlab_state", e->gitlab_state) ||
        !add_str(o, "login_source", e->login_source) ||
        !add_str(o, "roles_source", e->roles_source) || !add_str(o, "reason", e->reason))
        goto out;
    if (!(roles = cJSON_AddArrayToObject(o, "roles"))) goto out;
    for (char **r = e->roles; r && *r; r++) {
        cJSON *s = cJSON_CreateString(*r);
        if (!s) goto out;
        cJSON_AddItemToArray(roles, s);
    }
    out = cJSON_PrintUnformatted(o);
out:
    cJSON_Delete(o);
    return out;
}

static enum cq_rc bad(struct cq_err *err, const char *what) {
    return cq_err_set(err, CQ_EPARSE, "identity cache entry: %s", what);
}

/* *dst = a copy of the string field k (absent or null: NULL). */
static enum cq_rc get_str(const cJSON *o, const char *k, char **dst, struct cq_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) return CQ_OK;
    if (!cJSON_IsString(v)) return cq_err_set(err, CQ_EPARSE, "identity cache entry: %s", k);
    if (!(*dst = strdup(v->valuestring))) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    return CQ_OK;
}

enum cq_rc cq_ident_decode(const char *json, size_t len, struct cq_ident_entry *out,
                           struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    cJSON *o = NULL;
    if (!out) return cq_err_set(err, CQ_EINVAL, "identity cache entry: NULL output");
    memset(out, 0, sizeof(*out));
    if (!json || len > CQ_IDENT_MAX_LEN) return bad(err, "missing or too long");
    if (!(o = cJSON_ParseWithLength(json, len)) || !cJSON_IsObject(o)) {
        rc = bad(err, "not a JSON object");
        goto out;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "v"),
                *res = cJSON_GetObjectItemCaseSensitive(o, "resolved"),
                *at = cJSON_GetObjectItemCaseSensitive(o, "at"),
                *ttl = cJSON_GetObjectItemCaseSensitive(o, "ttl"),
                *gid = cJSON_GetObjectItemCaseSensitive(o, "gitlab_id"),
                *roles = cJSON_GetObjectItemCaseSensitive(o, "roles");
    if (!cJSON_IsNumber(v) || v->valuedouble != CQ_IDENT_VERSION) {
        rc = bad(err, "unknown version");
        goto out;
    }
    if (!cJSON_IsBool(res) || !cJSON_IsNumber(at) || !cJSON_IsNumber(ttl) ||
        (gid && !cJSON_IsNumber(gid)) || (roles && !cJSON_IsArray(roles))) {
        rc = bad(err, "a field has the wrong type");
        goto out;
    }
    out->resolved = cJSON_IsTrue(res);
    out->at_ms = (long long)at->valuedouble;
    out->ttl_s = (int)ttl->valuedouble;
    out->gitlab_id = gid ? (long long)gid->valuedouble : 0;
    if ((rc = get_str(o, "login", &out->login, err)) != CQ_OK ||
        (rc = get_str(o, "gitlab_state", &out->gitlab_state, err)) != CQ_OK ||
        (rc = get_str(o, "login_source", &out->login_source, err)) != CQ_OK ||
        (rc = get_str(o, "roles_source", &out->roles_source, err)) != CQ_OK ||
        (rc = get_str(o, "reason", &out->reason, err)) != CQ_OK)
        goto out;
    int n = roles ? cJSON_GetArraySize(roles) : 0;
    if (n > 0) {
        if (!(out->roles = calloc((size_t)n + 1, sizeof(char *)))) {
            rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
            goto out;
        }
        int k = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, roles) {
            if (!cJSON_IsString(r)) {
                rc = bad(err, "roles: not a string");
                goto out;
            }
            if (!(out->roles[k++] = strdup(r->valuestring))) {
                rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
                goto out;
            }
        }
    }
    if (out->resolved && (!out->login || !out->login[0])) rc = bad(err, "resolved without login");
out:
    cJSON_Delete(o);
    if (rc != CQ_OK) cq_ident_clear(out);
    return rc;
}

void cq_ident_clear(struct cq_ident_entry *e) {
    if (!e) return;
    free(e->login);
    free(e->gitlab_state);
    free(e->login_source);
    free(e->roles_source);
    free(e->reason);
    for (char **r = e->roles; r && *r; r++)
        free(*r);
    free(e->roles);
    memset(e, 0, sizeof(*e));
}

void cq_ident_age(long long ms, char out[32]) {
    long long s = ms < 0 ? 0 : ms / 1000;
    if (s < 120)
        snprintf(out, 32, "%lld s", s);
    else if (s < 7200)
        snprintf(out, 32, "%lld min", s / 60);
    else
        snprintf(out, 32, "%lld h", s / 3600);
}
