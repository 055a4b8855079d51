/* fuzz_gitlab_hook: libFuzzer target for ing_gitlab_hook (POST /gitlab/hook). The first byte
 * picks the X-Gitlab-Event and X-Gitlab-Token headers (mostly the right ones, so the JSON is
 * parsed); the rest is the body. Contract: only the configured token gets past a 401, only a
 * "Pipeline Hook" is produced, and its key is "<project.id>:<object_attributes.id>" of the
 * body. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static const char *const events[] = {
    "Pipeline Hook", "Pipeline Hook", "Push Hook", "pipeline hook", "", NULL,
    "Pipeline Hook", "Job Hook"};
static const char *const tokens[] = {FZ_GL_TOKEN,     FZ_GL_TOKEN, FZ_GL_TOKEN, FZ_GL_TOKEN,
                                     FZ_GL_TOKEN "x", "",          NULL,        "fz-gl-toK"};

static long long id_of(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_main();
    if (size < 1) return 0;
    struct ing_headers h = {.gitlab_event = events[data[0] & 7u],
                            .gitlab_token = tokens[(data[0] >> 3) & 7u]};
    size_t n = size - 1;
    char *body = fz_dup(data + 1, n);
    struct ing_verdict v;
    ing_gitlab_hook(cfg, &h, body, n, &v);
    fz_check_verdict(&v, "gitlab");
    bool tok_ok = h.gitlab_token && strcmp(h.gitlab_token, FZ_GL_TOKEN) == 0;
    if (!tok_ok)
        FZ_ASSERT(v.kind == ING_REJECT && v.status == 401);
    else
        FZ_ASSERT(v.kind != ING_REJECT || v.status != 401);
    if (v.kind == ING_PIPELINE) {
        FZ_ASSERT(tok_ok && h.gitlab_event && strcmp(h.gitlab_event, "Pipeline Hook") == 0);
        cJSON *root = cJSON_ParseWithLength(body, n);
        char want[96];
        snprintf(want, sizeof(want), "%lld:%lld",
                 id_of(cJSON_GetObjectItemCaseSensitive(root, "project"), "id"),
                 id_of(cJSON_GetObjectItemCaseSensitive(root, "object_attributes"), "id"));
        FZ_ASSERT(strcmp(v.key, want) == 0);
        cJSON_Delete(root);
    }
    ing_verdict_clear(&v);
    free(body);
    return 0;
}
