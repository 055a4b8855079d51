/* event_format: see event_format.h. */
#include "event_format.h"

#include <stddef.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slack_format.h"

struct row {
    const char *word;
    struct ntf_event_look look;
};

static const struct row ROWS[] = {
    {"fixed", {":white_check_mark:", "✅", "Fixed", "green"}},
    {"broken", {":boom:", "💥", "Broken", "red"}},
    {"success", {":white_check_mark:", "✅", "Succeeded", "green"}},
    {"failed", {":x:", "❌", "Failed", "red"}},
    {"running", {":hourglass_flowing_sand:", "⏳", "Running", "wathet"}},
    {"pending", {":hourglass:", "⏳", "Pending", "wathet"}},
    {"created", {":hourglass:", "⏳", "Created", "wathet"}},
    {"canceled", {":white_circle:", "⚪", "Canceled", "grey"}},
    {"skipped", {":white_circle:", "⚪", "Skipped", "grey"}},
    {"manual", {":raised_hand:", "✋", "Waiting for a click", "orange"}},
    {"blocked", {":raised_hand:", "✋", "Blocked", "orange"}},
    {"merge", {":twisted_rightwards_arrows:", "🔀", "Merged", "purple"}},
    {"merged", {":twisted_rightwards_arrows:", "🔀", "Merged", "purple"}},
    {"open", {":new:", "🆕", "Opened", "blue"}},
    {"opened", {":new:", "🆕", "Opened", "blue"}},
    {"close", {":no_entry_sign:", "🚫", "Closed", "grey"}},
    {"closed", {":no_entry_sign:", "🚫", "Closed", "grey"}},
};

bool ntf_event_look(const struct cq_result *r, struct ntf_event_look *out) {
    if (!r || !r->event_kind || !*r->event_kind) return false;
    const char *w = r->event_status ? r->event_status : "";
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++)
        if (strcmp(ROWS[i].word, w) == 0) {
            *out = ROWS[i].look;
            return true;
        }
    *out = (struct ntf_event_look){":loudspeaker:", "📣", "GitLab", "blue"};
    return true;
}

struct field_def {
    const char *label;
    size_t off;
};

static const struct field_def FIELDS[] = {
    {"Project", offsetof(struct cq_result, event_project)},
    {"Ref", offsetof(struct cq_result, event_ref)},
    {"Environment", offsetof(struct cq_result, event_env)},
    {"Author", offsetof(struct cq_result, event_author)},
};

static const char *field_value(const struct cq_result *r, size_t i) {
    const char *v = *(char *const *)((const char *)r + FIELDS[i].off);
    return v && *v ? v : NULL;
}

static cJSON *text_of(const char *tag, const char *type_key, const char *text) {
    cJSON *t = cJSON_CreateObject();
    if (!t || !cJSON_AddStringToObject(t, type_key, tag) ||
        !cJSON_AddStringToObject(t, strcmp(type_key, "type") == 0 ? "text" : "content", text)) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

cJSON *ntf_event_slack_fields(const struct cq_result *r) {
    cJSON *b = NULL, *fields = NULL;
    size_t n = 0;
    if (!r->event_kind) return NULL;
    for (size_t i = 0; i < sizeof(FIELDS) / sizeof(FIELDS[0]); i++) {
        const char *v = field_value(r, i);
        if (!v) continue;
        char *esc = ntf_slack_escape(v), *txt = NULL;
        if (esc) txt = malloc(strlen(FIELDS[i].label) + strlen(esc) + 8);
        if (txt) sprintf(txt, "*%s*\n%s", FIELDS[i].label, esc);
        cJSON *t = txt ? text_of("mrkdwn", "type", txt) : NULL;
        free(esc);
        free(txt);
        if (!t || (!fields && !(fields = cJSON_CreateArray()))) {
            cJSON_Delete(t);
            cJSON_Delete(fields);
            return NULL;
        }
        cJSON_AddItemToArray(fields, t);
        n++;
    }
    if (!n) return NULL;
    if (!(b = cJSON_CreateObject()) || !cJSON_AddStringToObject(b, "type", "section")) {
        cJSON_Delete(b);
        cJSON_Delete(fields);
        return NULL;
    }
    cJSON_AddItemToObject(b, "fields", fields);
    return b;
}

cJSON *ntf_event_feishu_fields(const struct cq_result *r) {
    cJSON *div = NULL, *fields = NULL;
    if (!r->event_kind) return NULL;
    for (size_t i = 0; i < sizeof(FIELDS) / sizeof(FIELDS[0]); i++) {
        const char *v = field_value(r, i);
        if (!v) continue;
        char *txt = malloc(strlen(FIELDS[i].label) + strlen(v) + 4);
        cJSON *f = cJSON_CreateObject(), *t = NULL;
        if (txt) sprintf(txt, "%s: %s", FIELDS[i].label, v);
        if (txt) t = text_of("plain_text", "tag", txt);
        free(txt);
        if (!f || !t || !cJSON_AddBoolToObject(f, "is_short", 1) ||
            (!fields && !(fields = cJSON_CreateArray()))) {
            cJSON_Delete(f);
            cJSON_Delete(t);
            cJSON_Delete(fields);
            return NULL;
        }
        cJSON_AddItemToObject(f, "text", t);
        cJSON_AddItemToArray(fields, f);
    }
    if (!fields) return NULL;
    if (!(div = cJSON_CreateObject()) || !cJSON_AddStringToObject(div, "tag", "div")) {
        cJSON_Delete(div);
        cJSON_Delete(fields);
        return NULL;
    }
    cJSON_AddItemToObject(div, "fields", fields);
    return div;
}
