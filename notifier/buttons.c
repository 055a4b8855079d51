/* buttons: Approve / Deny and Confirm / Cancel on a parked request's message (see buttons.h).
 * The worker decides what a click means; these only carry the action's name and the id. */
#include "buttons.h"

#include <stdio.h>
#include <string.h>

struct choice {
    const char *name, *label, *style; /* style: Slack "primary" | "danger"; Feishu type */
};

static const struct choice approval[] = {{"approve", "Approve", "primary"},
                                         {"deny", "Deny", "danger"}};
static const struct choice confirm[] = {{"confirm", "Confirm", "primary"},
                                        {"cancel", "Cancel", "danger"}};

static const struct choice *choices_of(const struct cq_result *r) {
    if (!r->buttons_kind || !r->buttons_request_id || !*r->buttons_request_id) return NULL;
    if (strcmp(r->buttons_kind, "approval") == 0) return approval;
    if (strcmp(r->buttons_kind, "confirm") == 0) return confirm;
    return NULL;
}

static cJSON *text_of(const char *tag_key, const char *tag, const char *text) {
    cJSON *t = cJSON_CreateObject();
    if (t && (!cJSON_AddStringToObject(t, tag_key, tag) ||
              !cJSON_AddStringToObject(t, "content", text))) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

int ntf_slack_choice_buttons(cJSON *blocks, const struct cq_result *r) {
    const struct choice *c = choices_of(r);
    if (!c) return 0;
    cJSON *b = cJSON_CreateObject(), *els;
    if (!b) return -1;
    cJSON_AddItemToArray(blocks, b);
    if (!cJSON_AddStringToObject(b, "type", "actions") ||
        !cJSON_AddStringToObject(b, "block_id", "chatops_choice") ||
        !(els = cJSON_AddArrayToObject(b, "elements")))
        return -1;
    for (int i = 0; i < 2; i++) {
        char id[32];
        cJSON *btn = cJSON_CreateObject(), *t;
        if (!btn) return -1;
        cJSON_AddItemToArray(els, btn);
        snprintf(id, sizeof id, "chatops_%s", c[i].name);
        if (!cJSON_AddStringToObject(btn, "type", "button") ||
            !cJSON_AddStringToObject(btn, "action_id", id) ||
            !cJSON_AddStringToObject(btn, "value", r->buttons_request_id) ||
            !cJSON_AddStringToObject(btn, "style", c[i].style) || !(t = cJSON_CreateObject()))
            return -1;
        cJSON_AddItemToObject(btn, "text", t);
        if (!cJSON_AddStringToObject(t, "type", "plain_text") ||
            !cJSON_AddStringToObject(t, "text", c[i].label))
            return -1;
    }
    return 0;
}

int ntf_feishu_choice_buttons(cJSON *elements, const struct cq_result *r) {
    const struct choice *c = choices_of(r);
    if (!c) return 0;
    cJSON *act = cJSON_CreateObject(), *acts;
    if (!act) return -1;
    cJSON_AddItemToArray(elements, act);
    if (!cJSON_AddStringToObject(act, "tag", "action") ||
        !(acts = cJSON_AddArrayToObject(act, "actions")))
        return -1;
    for (int i = 0; i < 2; i++) {
        cJSON *btn = cJSON_CreateObject(), *v, *t;
        if (!btn) return -1;
        cJSON_AddItemToArray(acts, btn);
        if (!cJSON_AddStringToObject(btn, "tag", "button") ||
            !cJSON_AddStringToObject(btn, "type", i == 0 ? "primary" : "danger") ||
            !(t = text_of("tag", "plain_text", c[i].label)))
            return -1;
        cJSON_AddItemToObject(btn, "text", t);
        if (!(v = cJSON_AddObjectToObject(btn, "value")) ||
            !cJSON_AddStringToObject(v, "chatops", c[i].name) ||
            !cJSON_AddStringToObject(v, "request_id", r->buttons_request_id))
            return -1;
    }
    return 0;
}
