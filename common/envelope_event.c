/* envelope_event: the GitLab event record (chatops.events, "v":1) on the field-table engine
 * of envelope.c (envelope_int.h): the ingress writes it, the worker's event router reads it.
 * See envelope.h for the shape. */
#include "envelope.h"
#include "envelope_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cq_event_kinds[] = {"push",       "tag_push", "merge_request", "pipeline", "job",
                                      "deployment", "release",  "issue",         "note",     NULL};

#define EVT(m) offsetof(struct cq_event, m)

static const struct field event_fields[] = {
    {NULL, "kind", EVT(kind), 32, F_REQUIRED | F_NONEMPTY, cq_event_kinds},
    {NULL, "instance", EVT(instance), CQ_ENV_MAX_NAME, 0, NULL},
    {NULL, "uuid", EVT(uuid), CQ_ENV_MAX_KEY, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "received_at", EVT(received_at), CQ_ENV_MAX_TIME, F_REQUIRED | F_NONEMPTY, NULL},
    {NULL, "body", EVT(body), CQ_ENV_MAX_EVENT_BODY, F_REQUIRED | F_NONEMPTY, NULL},
};

char *cq_event_encode(const struct cq_event *e, struct cq_err *err) {
    cJSON *root = NULL;
    char *out = NULL;
    if (!e) {
        cq_err_set(err, CQ_EINVAL, "event: NULL");
        return NULL;
    }
    root = cJSON_CreateObject();
    if (!root || !env_add_number(root, "v", CQ_EVENT_VERSION)) {
        cq_err_set(err, CQ_ENOMEM, "event: out of memory");
        goto out;
    }
    if (env_encode_fields("event", e, event_fields, NFIELDS(event_fields), root, err) != CQ_OK)
        goto out;
    out = env_print_or_fail(root, "event", err);
out:
    cJSON_Delete(root);
    return out;
}

enum cq_rc cq_event_decode(const char *json, size_t len, size_t max_len, struct cq_event *out,
                           struct cq_err *err) {
    cJSON *root = NULL;
    enum cq_rc rc;
    if (!out) return cq_err_set(err, CQ_EINVAL, "event: NULL output");
    memset(out, 0, sizeof(*out));
    rc = env_parse_root("event", json, len, max_len, CQ_EVENT_VERSION, NULL, false, &root, err);
    if (rc == CQ_OK)
        rc = env_decode_fields("event", root, event_fields, NFIELDS(event_fields), out, err);
    cJSON_Delete(root);
    if (rc != CQ_OK) cq_event_clear(out);
    return rc;
}

void cq_event_clear(struct cq_event *e) {
    if (!e) return;
    env_clear_fields(e, event_fields, NFIELDS(event_fields));
    memset(e, 0, sizeof(*e));
}
