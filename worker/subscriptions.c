/* subscriptions: the stored form of a chat subscription and its matching (see
 * subscriptions.h). The built-ins that write them are in subscriptions_builtins.c. */
#include "subscriptions.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "utf8.h"

static const char *const STATUSES[] = {"success", "failed",  "running", "canceled",
                                       "pending", "skipped", "created", "manual",
                                       "fixed",   "broken",  NULL};

bool w_subs_split_chat(const char *member, char *platform, size_t plen, char *chat, size_t clen) {
    const char *bar = member ? strchr(member, '|') : NULL;
    if (!bar || bar == member || !bar[1]) return false;
    size_t pl = (size_t)(bar - member);
    if (pl >= plen || strlen(bar + 1) >= clen) return false;
    memcpy(platform, member, pl);
    platform[pl] = '\0';
    snprintf(chat, clen, "%s", bar + 1);
    return strcmp(platform, "slack") == 0 || strcmp(platform, "feishu") == 0;
}

/* A JSON array of strings as a NULL-terminated array pointing into the cJSON tree (the
 * array itself is malloc'd); NULL when absent or empty. *bad when it is not such an array. */
static char **list_of(const cJSON *o, const char *k, bool *bad) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k), *it;
    if (!a) return NULL;
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n <= 0) {
        if (n < 0) *bad = true;
        return NULL;
    }
    char **l = calloc((size_t)n + 1, sizeof(char *));
    size_t i = 0;
    if (!l) {
        *bad = true;
        return NULL;
    }
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it))
            *bad = true;
        else
            l[i++] = it->valuestring;
    }
    return l;
}

bool w_subs_json_matches(const char *json, const struct w_ev_facts *f) {
    cJSON *o = cJSON_Parse(json);
    bool bad = !cJSON_IsObject(o), ok = false;
    char **projects = list_of(o, "projects", &bad), **kinds = list_of(o, "kinds", &bad),
         **statuses = list_of(o, "statuses", &bad), **refs = list_of(o, "refs", &bad),
         **envs = list_of(o, "environments", &bad);
    struct w_ev_match m = {projects, kinds, statuses, refs, envs, NULL, NULL};
    if (!bad && projects) ok = w_ev_matches(&m, f);
    free(projects);
    free(kinds);
    free(statuses);
    free(refs);
    free(envs);
    cJSON_Delete(o);
    return ok;
}

static bool in(const char *const *l, const char *s) {
    for (size_t i = 0; l[i]; i++)
        if (strcmp(l[i], s) == 0) return true;
    return false;
}

char *w_subs_parse(const char *const *words, size_t n, const char *by, char *why, size_t whylen) {
    cJSON *o = NULL, *projects, *kinds, *statuses, *refs, *envs;
    char *out = NULL;
    if (n < 1) {
        snprintf(why, whylen,
                 "usage: subscribe PROJECT [KIND ...] [STATUS ...] [ref=GLOB] [env=GLOB] "
                 "(e.g. `subscribe ops/* pipeline failed fixed ref=main`)");
        return NULL;
    }
    if (!cq_utf8_valid(words[0], strlen(words[0])) || strlen(words[0]) > 200) {
        snprintf(why, whylen, "the project pattern is not valid text of at most 200 bytes");
        return NULL;
    }
    o = cJSON_CreateObject();
    if (!o || !(projects = cJSON_AddArrayToObject(o, "projects")) ||
        !(kinds = cJSON_AddArrayToObject(o, "kinds")) ||
        !(statuses = cJSON_AddArrayToObject(o, "statuses")) ||
        !(refs = cJSON_AddArrayToObject(o, "refs")) ||
        !(envs = cJSON_AddArrayToObject(o, "environments")))
        goto oom;
    if (!cJSON_AddItemToArray(projects, cJSON_CreateString(words[0]))) goto oom;
    for (size_t i = 1; i < n; i++) {
        const char *w = words[i];
        cJSON *to = NULL;
        if (in(cq_event_kinds, w))
            to = kinds;
        else if (in(STATUSES, w))
            to = statuses;
        else if (strncmp(w, "ref=", 4) == 0 && w[4])
            to = refs, w += 4;
        else if (strncmp(w, "env=", 4) == 0 && w[4])
            to = envs, w += 4;
        if (!to) {
            snprintf(why, whylen,
                     "`%.60s` is neither an event kind (push, tag_push, merge_request, pipeline, "
                     "job, deployment, release, issue, note), a status (success, failed, "
                     "running, canceled, fixed, broken, ...), ref=GLOB nor env=GLOB",
                     words[i]);
            goto out;
        }
        if (!cJSON_AddItemToArray(to, cJSON_CreateString(w))) goto oom;
    }
    if (by && !cJSON_AddStringToObject(o, "by", by)) goto oom;
    const char *names[] = {"kinds", "statuses", "refs", "environments"};
    for (size_t i = 0; i < 4; i++)
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, names[i])) == 0)
            cJSON_DeleteItemFromObjectCaseSensitive(o, names[i]);
    out = cJSON_PrintUnformatted(o);
    if (!out) goto oom;
    goto out;
oom:
    snprintf(why, whylen, "out of memory");
out:
    cJSON_Delete(o);
    return out;
}
