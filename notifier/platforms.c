/* platforms: the notifier's platform table (see platforms.h) and what its rows share: the
 * result as Markdown, cut to a platform's limit with a visible note, and the reply route's
 * expiry. */
#include "platforms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "utf8.h"

#include <cjson/cJSON.h>

/* Slack and Feishu: no hooks, their paths are route.c/service.c's own */
static const struct ntf_platform slack_row = {.name = "slack", .id = 0};
static const struct ntf_platform feishu_row = {.name = "feishu", .id = 1};

static const struct ntf_platform *const rows[] = {
    &slack_row,
    &feishu_row,
    &ntf_dingtalk_platform,
    &ntf_mattermost_platform,
    &ntf_discord_platform,
    &ntf_webex_platform,
};

const struct ntf_platform *ntf_platform_find(const char *name) {
    for (size_t i = 0; name && i < sizeof rows / sizeof rows[0]; i++)
        if (strcmp(rows[i]->name, name) == 0) return rows[i];
    return NULL;
}

static const char *status_word(const char *status) {
    if (!status) return "";
    if (strcmp(status, "ok") == 0) return "done";
    if (strcmp(status, "denied") == 0) return "denied";
    if (strcmp(status, "invalid") == 0) return "invalid";
    if (strcmp(status, "failed") == 0) return "failed";
    if (strcmp(status, "timeout") == 0) return "timed out";
    return status;
}

/* bytes of the first max_chars code points of s (valid UTF-8) */
static size_t chars_prefix(const char *s, size_t len, size_t max_chars) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && n++ == max_chars) return i;
    return len;
}

char *ntf_plat_markdown(const struct cq_result *r, size_t max_bytes, size_t max_chars) {
    const char *text = r->text ? r->text : "";
    char head[400] = "", foot[600] = "";
    if (r->command && *r->command && strcmp(r->step, "final") == 0)
        snprintf(head, sizeof head, "**%.200s**: %s\n\n", r->command, status_word(r->status));
    if (r->pipeline.web_url && *r->pipeline.web_url) {
        if (r->pipeline.id > 0)
            snprintf(foot, sizeof foot, "\n\n[Open pipeline #%lld](%.500s)", r->pipeline.id,
                     r->pipeline.web_url);
        else
            snprintf(foot, sizeof foot, "\n\n[Open pipeline](%.500s)", r->pipeline.web_url);
    }
    size_t hl = strlen(head), tl = strlen(text), fl = strlen(foot);
    size_t total = hl + tl + fl;
    char *out = malloc(total + 1);
    if (!out) return NULL;
    memcpy(out, head, hl);
    memcpy(out + hl, text, tl);
    memcpy(out + hl + tl, foot, fl);
    out[total] = '\0';
    size_t keep = total;
    if (max_bytes > 0 && keep > max_bytes) keep = max_bytes;
    if (max_chars > 0) {
        size_t b = chars_prefix(out, total, max_chars);
        if (b < keep) keep = b;
    }
    if (keep == total) return out;
    /* cut: room for the note (at most 48 bytes, and so at most 48 characters) */
    size_t room = max_bytes > 48 ? max_bytes - 48 : max_bytes > 0 ? 0 : total;
    if (max_chars > 0) {
        size_t b = chars_prefix(out, total, max_chars > 48 ? max_chars - 48 : 0);
        if (b < room) room = b;
    }
    room = cq_utf8_prefix(out, total, room);
    char note[48];
    snprintf(note, sizeof note, "\n… (cut: %zu more bytes)", total - room);
    size_t nl = strlen(note);
    memcpy(out + room, note, nl + 1);
    return out;
}

bool ntf_plat_expired(const struct cq_result *r) {
    if (!r->reply.expires_at || !*r->reply.expires_at) return false;
    long long at = ntf_rfc3339_ms(r->reply.expires_at);
    return at < 0 || at <= ntf_wall_ms() + 2000; /* 2 s: the request must still arrive */
}

enum ntf_outcome ntf_plat_http_class(const struct ntf_attempt_answer *a, char *why,
                                     size_t why_len) {
    if (a->rc != CQ_OK) {
        snprintf(why, why_len, "no_answer");
        return NTF_OUT_RETRY;
    }
    if (a->status >= 200 && a->status < 300) {
        snprintf(why, why_len, "ok");
        return NTF_OUT_DELIVERED;
    }
    char msg[100] = "";
    cJSON *b = a->body ? cJSON_Parse(a->body) : NULL;
    const cJSON *m = b ? cJSON_GetObjectItemCaseSensitive(b, "message") : NULL;
    if (cJSON_IsString(m))
        cq_utf8_copy(msg, sizeof msg, m->valuestring, strlen(m->valuestring), NULL);
    cJSON_Delete(b);
    snprintf(why, why_len, "http_%ld%s%s", a->status, msg[0] ? ": " : "", msg);
    if (a->status == 408 || a->status == 429 || a->status >= 500) return NTF_OUT_RETRY;
    return NTF_OUT_PERMANENT;
}

char *ntf_plat_json(cJSON *o, struct cq_err *err) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) cq_err_set(err, CQ_ENOMEM, "out of memory");
    return s;
}
