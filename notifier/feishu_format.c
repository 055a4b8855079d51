/* feishu_format: text messages and interactive cards for results (see feishu_format.h).
 * The card or text is built with cJSON, printed, and the printed JSON becomes the
 * "content" string of the outer body, which cJSON escapes a second time. */
#include "feishu_format.h"
#include "buttons.h"
#include "event_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "slack_format.h"
#include "utf8.h"

enum cq_rc ntf_feishu_uuid(const struct cq_result *r, char out[NTF_FEISHU_UUID_MAX + 1]) {
    if (!r || !r->request_id || !*r->request_id || !r->step || !*r->step) {
        out[0] = '\0';
        return CQ_EINVAL;
    }
    char full[CQ_ENV_MAX_ID + 64];
    int n = snprintf(full, sizeof full, "%s-%c-%d", r->request_id, r->step[0], r->seq);
    if (n > 0 && n <= NTF_FEISHU_UUID_MAX) {
        memcpy(out, full, (size_t)n + 1);
        return CQ_OK;
    }
    /* too long for Feishu: a stable digest of the whole key */
    n = snprintf(full, sizeof full, "%s-%s-%d", r->request_id, r->step, r->seq);
    uint8_t d[CQ_SHA256_LEN];
    char hex[CQ_SHA256_LEN * 2 + 1];
    if (n < 0 || cq_sha256(full, strlen(full), d) != CQ_OK) return CQ_ECRYPTO;
    cq_hex(d, sizeof d, hex);
    snprintf(out, NTF_FEISHU_UUID_MAX + 1, "h-%.48s", hex);
    return CQ_OK;
}

struct look {
    const char *icon, *label, *color;
};

static struct look look_of(const struct cq_result *r) {
    struct ntf_event_look ev;
    if (ntf_event_look(r, &ev)) return (struct look){ev.icon, ev.label, ev.color};
    const char *st = r->status ? r->status : "", *step = r->step ? r->step : "";
    if (strcmp(st, "ok") == 0) {
        if (strcmp(step, "ack") == 0) return (struct look){"📥", "Accepted", "blue"};
        if (strcmp(step, "progress") == 0) return (struct look){"⏳", "In progress", "wathet"};
        return (struct look){"✅", "Succeeded", "green"};
    }
    if (strcmp(st, "denied") == 0) return (struct look){"⛔", "Denied", "orange"};
    if (strcmp(st, "invalid") == 0) return (struct look){"⚠️", "Invalid command", "yellow"};
    if (strcmp(st, "timeout") == 0) return (struct look){"⏰", "Timed out", "red"};
    return (struct look){"❌", "Failed", "red"};
}

/* Text as Feishu shows it literally: text messages and lark_md parse tags (`<at
 * user_id="all">` mentions everyone, `<b>`, `<a>`...), so &, < and > become HTML entities,
 * which both render as the characters. New string, or NULL when out of memory. */
static char *escape_markup(const char *s) {
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = s; *p; p++) {
        const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
        if (e) {
            memcpy(o, e, strlen(e));
            o += strlen(e);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* The result text (escaped), cut to max bytes with a note; new string. A cut never splits a
 * UTF-8 sequence or an entity. */
static char *body_text(const struct cq_result *r, size_t max, size_t *cut_bytes) {
    char *esc = escape_markup(r->text ? r->text : "");
    if (!esc) return NULL;
    const char *t = esc;
    size_t len = strlen(t), keep = cq_utf8_prefix(t, len, max);
    for (size_t k = keep; keep < len && k > 0 && keep - k < 5; k--)
        if (t[k - 1] == ';')
            break;
        else if (t[k - 1] == '&') {
            keep = k - 1;
            break;
        }
    char note[128] = "";
    if (keep < len) {
        snprintf(note, sizeof note, "\n… (output cut: %zu of %zu bytes not shown)", len - keep,
                 len);
        if (cut_bytes) *cut_bytes = len - keep;
    }
    size_t nl = strlen(note);
    char *out = malloc(keep + nl + 1);
    if (out) {
        memcpy(out, t, keep);
        memcpy(out + keep, note, nl + 1);
    }
    free(esc);
    return out;
}

static cJSON *tagged(const char *tag, const char *content) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "tag", tag) ||
        !cJSON_AddStringToObject(o, "content", content)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *card(const struct cq_result *r, const char *text, const char *title,
                   const char *color) {
    cJSON *c = cJSON_CreateObject(), *cfg = NULL, *hdr = NULL, *els = NULL, *it = NULL;
    if (!c) return NULL;
    if (!(cfg = cJSON_AddObjectToObject(c, "config")) ||
        !cJSON_AddBoolToObject(cfg, "wide_screen_mode", 1) ||
        !(hdr = cJSON_AddObjectToObject(c, "header")) ||
        !cJSON_AddStringToObject(hdr, "template", color) || !(it = tagged("plain_text", title)))
        goto out;
    cJSON_AddItemToObject(hdr, "title", it);
    if (!(els = cJSON_AddArrayToObject(c, "elements"))) goto out;
    if (*text) {
        cJSON *div = cJSON_CreateObject();
        if (!div) goto out;
        cJSON_AddItemToArray(els, div);
        if (!cJSON_AddStringToObject(div, "tag", "div") || !(it = tagged("lark_md", text)))
            goto out;
        cJSON_AddItemToObject(div, "text", it);
    }
    cJSON *evf = ntf_event_feishu_fields(r); /* a GitLab event's Project / Ref / ... */
    if (evf) cJSON_AddItemToArray(els, evf);
    bool pl_link = r->pipeline.web_url && *r->pipeline.web_url;
    if (pl_link || (r->event_url && *r->event_url)) {
        char label[64];
        if (pl_link)
            ntf_pipeline_label(label, sizeof label, r->pipeline.id);
        else
            snprintf(label, sizeof label, "%s", NTF_EVENT_LINK_LABEL);
        cJSON *act = cJSON_CreateObject(), *acts, *btn;
        if (!act) goto out;
        cJSON_AddItemToArray(els, act);
        if (!cJSON_AddStringToObject(act, "tag", "action") ||
            !(acts = cJSON_AddArrayToObject(act, "actions")) || !(btn = cJSON_CreateObject()))
            goto out;
        cJSON_AddItemToArray(acts, btn);
        if (!cJSON_AddStringToObject(btn, "tag", "button") ||
            !cJSON_AddStringToObject(btn, "type", "primary") ||
            !cJSON_AddStringToObject(btn, "url", pl_link ? r->pipeline.web_url : r->event_url) ||
            !(it = tagged("plain_text", label)))
            goto out;
        cJSON_AddItemToObject(btn, "text", it);
    }
    if (ntf_feishu_choice_buttons(els, r) != 0) goto out; /* Approve / Deny, ... (buttons.c) */
    char note[CQ_ENV_MAX_NAME + 128] = "";
    int n = 0;
    if (r->user_name && *r->user_name)
        n = snprintf(note, sizeof note, "Run by %.*s", CQ_ENV_MAX_NAME, r->user_name);
    if (r->pipeline.id > 0 && n >= 0 && (size_t)n < sizeof note) {
        char st[33] = ""; /* at most 32 bytes, cut on a character */
        if (r->pipeline.status)
            cq_utf8_copy(st, sizeof st, r->pipeline.status, strlen(r->pipeline.status), NULL);
        snprintf(note + n, sizeof note - (size_t)n, "%sPipeline #%lld%s%s", n ? " · " : "",
                 r->pipeline.id, r->pipeline.status ? ": " : "", st);
    }
    if (*note) {
        cJSON *ne = cJSON_CreateObject(), *nels;
        if (!ne) goto out;
        cJSON_AddItemToArray(els, ne);
        if (!cJSON_AddStringToObject(ne, "tag", "note") ||
            !(nels = cJSON_AddArrayToObject(ne, "elements")) || !(it = tagged("plain_text", note)))
            goto out;
        cJSON_AddItemToArray(nels, it);
    }
    return c;
out:
    cJSON_Delete(c);
    return NULL;
}

char *ntf_feishu_content(const struct cq_result *r, size_t max_text, const char **msg_type,
                         size_t *cut_bytes, struct cq_err *err) {
    char *out = NULL, *text = NULL, *head = NULL;
    cJSON *c = NULL;
    if (cut_bytes) *cut_bytes = 0;
    if (!r) {
        cq_err_set(err, CQ_EINVAL, "feishu format: missing result");
        return NULL;
    }
    bool interactive = (r->pipeline.web_url && *r->pipeline.web_url) ||
                       (r->event_kind && r->event_url && *r->event_url) || /* updatable */
                       r->buttons_kind;
    if (max_text == 0) max_text = interactive ? NTF_FEISHU_CARD_TEXT_BYTES : NTF_FEISHU_TEXT_BYTES;
    struct look lk = look_of(r);
    text = body_text(r, max_text, cut_bytes);
    size_t hl =
        64 + (r->command ? strlen(r->command) : 0) + (r->user_name ? strlen(r->user_name) : 0);
    head = malloc(hl);
    if (!text || !head) goto out;
    if (interactive) {
        snprintf(head, hl, "%s %s%s%s", lk.icon, lk.label, r->command && *r->command ? ": " : "",
                 r->command ? r->command : "");
        if (!(c = card(r, text, head, lk.color))) goto out;
        if (msg_type) *msg_type = "interactive";
    } else {
        int n = snprintf(head, hl, "%s %s", lk.icon, lk.label);
        if (r->command && *r->command && n > 0)
            n += snprintf(head + n, hl - (size_t)n, " · %s", r->command);
        if (r->user_name && *r->user_name && n > 0)
            snprintf(head + n, hl - (size_t)n, " · run by %s", r->user_name);
        char *ehead = escape_markup(head); /* the command and the name are user text */
        if (!ehead) goto out;
        size_t tl = strlen(ehead) + 2 + strlen(text) + 1;
        char *full = malloc(tl);
        if (!full) {
            free(ehead);
            goto out;
        }
        snprintf(full, tl, "%s%s%s", ehead, *text ? "\n" : "", text);
        free(ehead);
        c = cJSON_CreateObject();
        if (!c || !cJSON_AddStringToObject(c, "text", full)) {
            free(full);
            goto out;
        }
        free(full);
        if (msg_type) *msg_type = "text";
    }
    out = cJSON_PrintUnformatted(c);
out:
    if (!out) cq_err_set(err, CQ_ENOMEM, "feishu format: out of memory"); /* every other way here */
    cJSON_Delete(c);
    free(text);
    free(head);
    return out;
}

char *ntf_feishu_body(const struct cq_result *r, bool reply, size_t max_text, struct cq_err *err) {
    char *out = NULL, *content = NULL, uuid[NTF_FEISHU_UUID_MAX + 1];
    const char *type = NULL;
    cJSON *b = NULL;
    if (!r || ntf_feishu_uuid(r, uuid) != CQ_OK) {
        cq_err_set(err, CQ_EINVAL, "feishu format: result without request_id/step");
        return NULL;
    }
    if (!reply && (!r->reply.chat_id || !*r->reply.chat_id)) {
        cq_err_set(err, CQ_EINVAL, "feishu format: no chat_id to send to");
        return NULL;
    }
    if (!(content = ntf_feishu_content(r, max_text, &type, NULL, err))) return NULL;
    b = cJSON_CreateObject();
    if (!b || (!reply && !cJSON_AddStringToObject(b, "receive_id", r->reply.chat_id)) ||
        !cJSON_AddStringToObject(b, "msg_type", type) ||
        !cJSON_AddStringToObject(b, "content", content) ||
        !cJSON_AddStringToObject(b, "uuid", uuid) || !(out = cJSON_PrintUnformatted(b)))
        cq_err_set(err, CQ_ENOMEM, "feishu format: out of memory");
    cJSON_Delete(b);
    free(content);
    return out;
}
