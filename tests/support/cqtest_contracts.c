/* cqtest_contracts: see cqtest_contracts.h. */
#include "cqtest_contracts.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqtest_samples.h"
#include "envelope.h"
#include "utf8.h"

/* Returns the condition's text from the calling function when it does not hold. */
#define RULE(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) return #cond;                                                                 \
    } while (0)

static bool one_line(const char *s) {
    return s && !strchr(s, '\n') && !strchr(s, '\r');
}

static const char *request_violation(const char *body, const struct cq_request *req,
                                     const char *platform, size_t max_text) {
    cJSON *j = cJSON_Parse(body);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    bool has_id = cJSON_IsString(id) && id->valuestring[0] != '\0';
    cJSON_Delete(j);
    RULE(has_id);
    struct cq_request back = {0};
    struct cq_err err = {0};
    const char *why = NULL;
    size_t pl = strlen(platform);
    if (cq_request_decode(body, strlen(body), 0, &back, &err) != CQ_OK)
        why = "the body decodes as a request";
    else if (!cqt_request_equal(&back, req))
        why = "the body decodes to the verdict's request";
    else if (!back.platform || strcmp(back.platform, platform) != 0)
        why = "the platform is the route's";
    else if (!back.command || !back.command[0] || !back.user_id || !back.user_id[0])
        why = "command and user are not empty";
    else if (back.retry_num < 0 || back.retry_num > CQ_ENV_MAX_RETRY_NUM)
        why = "retry_num is in range";
    else if (!back.dedupe_key || strncmp(back.dedupe_key, platform, pl) != 0 ||
             back.dedupe_key[pl] != ':')
        why = "dedupe_key is \"<platform>:...\"";
    /* command + " " + text is what the user typed (trimmed): within limits.max_text */
    else if (cq_utf8_len(back.command, strlen(back.command)) +
                 cq_utf8_len(back.text, strlen(back.text)) >
             max_text)
        why = "command and text are within limits.max_text";
    cq_request_clear(&back);
    return why;
}

const char *cqt_verdict_violation(const struct ing_verdict *v, const char *platform,
                                  size_t max_text) {
    RULE(v->kind == ING_REJECT || v->kind == ING_REPLY || v->kind == ING_REQUEST ||
         v->kind == ING_PIPELINE || v->kind == ING_EVENT);
    RULE(memchr(v->detail, '\0', sizeof(v->detail)) != NULL);
    switch (v->kind) {
    case ING_REJECT:
        RULE(v->status >= 400 && v->status <= 503);
        RULE(v->reason && v->reason[0] && one_line(v->reason));
        return NULL;
    case ING_REPLY:
        RULE(v->status >= 200 && v->status <= 299);
        RULE(v->body != NULL && v->content_type != NULL);
        return NULL;
    case ING_REQUEST:
        RULE(v->body != NULL);
        return request_violation(v->body, &v->req, platform, max_text);
    case ING_PIPELINE: {
        long long p = 0, q = 0;
        char tail = 0;
        RULE(sscanf(v->key, "%lld:%lld%c", &p, &q, &tail) == 2 && p >= 1 && q >= 1);
        return NULL;
    }
    case ING_EVENT: { /* an event record that decodes, keyed by a project id */
        struct cq_event ev;
        struct cq_err err = {0};
        RULE(v->body != NULL);
        RULE(cq_event_decode(v->body, strlen(v->body), 0, &ev, &err) == CQ_OK);
        cq_event_clear(&ev);
        return NULL;
    }
    }
    return NULL;
}

const char *cqt_bound_violation(const struct w_bound_args *bd, const struct cq_command *c,
                                int default_max_len) {
    RULE(bd->cmd == c && bd->n == c->n_args);
    for (size_t i = 0; i < bd->n; i++) {
        const struct cq_arg_spec *s = &c->args[i];
        const char *v = bd->values[i];
        if (s->required) RULE(v != NULL);
        if (!v) continue;
        int limit = s->max_len > 0 ? s->max_len : default_max_len;
        RULE(strlen(v) <= (size_t)limit);
        if (s->type == CQ_ARG_INT) {
            char *end = NULL;
            long long n = strtoll(v, &end, 10);
            RULE(*v && *end == '\0' && n >= s->min && n <= s->max);
        }
        if (s->enum_values) {
            bool found = false;
            for (char **e = s->enum_values; *e; e++)
                found = found || strcmp(*e, v) == 0;
            RULE(found);
        }
    }
    return NULL;
}
