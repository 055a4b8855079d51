/* gitlab: the pipeline webhook in. X-Gitlab-Token is compared in constant time; a Pipeline
 * Hook's raw JSON goes to chatops.pipeline-events keyed "<project.id>:<pipeline id>", so a
 * worker waiting on that pipeline learns of its end without polling delay. Pure, like slack.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "strutil.h"

static bool id_of(const cJSON *o, const char *name, long long *out) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 9e15) return false;
    *out = (long long)v->valuedouble;
    return true;
}

void ing_gitlab_hook(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                     size_t len, struct ing_verdict *out) {
    const char *want = cfg->gitlab.webhook_token.value;
    cJSON *root = NULL;
    long long project = 0, pipeline = 0;
    memset(out, 0, sizeof(*out));
    if (!want) {
        ing_reject(out, 404, "gitlab webhook is not configured", NULL);
        return;
    }
    if (!h->gitlab_token) {
        ing_reject(out, 401, "missing token", NULL);
        return;
    }
    if (!cq_ct_equal(want, strlen(want), h->gitlab_token, strlen(h->gitlab_token))) {
        ing_reject(out, 401, "bad token", NULL);
        return;
    }
    if (!h->gitlab_event || strcmp(h->gitlab_event, "Pipeline Hook") != 0) {
        /* other hook types are acknowledged so GitLab does not disable the hook */
        ing_reply(out, 200, "application/json", strdup("{}"));
        return;
    }
    if (cq_json_has_nul_escape(body, len)) {
        ing_reject(out, 400, "malformed JSON", "an escaped NUL (\\u0000) in a string");
        goto out;
    }
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        ing_reject(out, 400, "malformed JSON", NULL);
        goto out;
    }
    if (!id_of(cJSON_GetObjectItemCaseSensitive(root, "project"), "id", &project) ||
        !id_of(cJSON_GetObjectItemCaseSensitive(root, "object_attributes"), "id", &pipeline)) {
        ing_reject(out, 400, "malformed pipeline hook", "project.id or object_attributes.id");
        goto out;
    }
    snprintf(out->key, sizeof(out->key), "%lld:%lld", project, pipeline);
    out->kind = ING_PIPELINE;
out:
    cJSON_Delete(root);
}
