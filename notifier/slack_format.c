/* slack_format: Block Kit bodies for results (see slack_format.h). The text is escaped for
 * mrkdwn, split on line boundaries into section blocks (code fences kept balanced in each
 * block), and cut with a visible note when it would pass the block or message limits. */
#include "slack_format.h"
#include "buttons.h"
#include "event_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "utf8.h"

char *ntf_slack_escape(const char *s) {
    size_t len = 0;
    for (const char *p = s; *p; p++)
        len += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : 1;
    char *out = malloc(len + 1);
    if (!out) return NULL;
    char *o = out;
    for (const char *p = s; *p; p++) {
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
        if (rep) {
            size_t rl = strlen(rep);
            memcpy(o, rep, rl);
            o += rl;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* A growable string with a code point count. */
struct sbuf {
    char *s;
    size_t len, cap, chars;
};

static int sb_add(struct sbuf *b, const char *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) return -1;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
    b->chars += cq_utf8_len(p, n);
    return 0;
}

struct chunks {
    char **v;
    size_t n, cap;
};

static int chunks_push(struct chunks *c, struct sbuf *b) {
    if (c->n + 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        char **nv = realloc(c->v, cap * sizeof *nv);
        if (!nv) return -1;
        c->v = nv;
        c->cap = cap;
    }
    if (!b->s && sb_add(b, "", 0) != 0) return -1;
    c->v[c->n++] = b->s;
    c->v[c->n] = NULL;
    memset(b, 0, sizeof *b);
    return 0;
}

void ntf_slack_chunks_free(char **chunks) {
    if (!chunks) return;
    for (char **p = chunks; *p; p++)
        free(*p);
    free(chunks);
}

static int count_fences(const char *p, size_t n) {
    int k = 0;
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(p + i, "```", 3) == 0) {
            k++;
            i += 2;
        }
    return k;
}

/* Bytes of p[0..n) that hold at most max_chars code points, backed off so that the cut
 * splits neither a UTF-8 sequence nor an &entity; (at least one character is kept). */
static size_t prefix_bytes(const char *p, size_t n, size_t max_chars) {
    size_t i = 0, chars = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && ((unsigned char)p[j] & 0xC0) == 0x80)
            j++;
        if (chars + 1 > max_chars) break;
        chars++;
        i = j;
    }
    size_t cut = i;
    for (size_t k = cut; k > 0 && cut - k < 5; k--) {
        if (p[k - 1] == ';') break;
        if (p[k - 1] == '&') {
            if (k - 1 > 0) cut = k - 1;
            break;
        }
    }
    if (cut == 0) { /* keep one whole character to make progress */
        cut = 1;
        while (cut < n && ((unsigned char)p[cut] & 0xC0) == 0x80)
            cut++;
    }
    return cut;
}

char **ntf_slack_split(const char *s, size_t max_chars, size_t *n) {
    struct chunks out = {0};
    struct sbuf cur = {0};
    bool in_fence = false, has_content = false;
    const size_t close_len = 4; /* "\n```" */
    if (n) *n = 0;
    if (max_chars < 16) return NULL;

    const char *p = s, *end = s + strlen(s);
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *line = p;
        size_t lb = (size_t)(le - line);
        for (;;) {
            size_t lc = cq_utf8_len(line, lb);
            bool fence_after = in_fence ^ (count_fences(line, lb) & 1);
            size_t need = (has_content ? 1 : 0) + lc + (fence_after ? close_len : 0);
            if (cur.chars + need <= max_chars) {
                if ((has_content && sb_add(&cur, "\n", 1) != 0) || sb_add(&cur, line, lb) != 0)
                    goto out;
                has_content = true;
                in_fence = fence_after;
                break;
            }
            if (has_content) { /* flush and retry the line in a fresh chunk */
                if (in_fence && sb_add(&cur, "\n```", close_len) != 0) goto out;
                if (chunks_push(&out, &cur) != 0) goto out;
                has_content = false;
                if (in_fence && sb_add(&cur, "```\n", 4) != 0) goto out;
                continue;
            }
            /* the line alone is too long: hard-split it */
            size_t room = max_chars - cur.chars - close_len;
            size_t take = prefix_bytes(line, lb, room);
            if (sb_add(&cur, line, take) != 0) goto out;
            in_fence ^= (count_fences(line, take) & 1);
            if (in_fence && sb_add(&cur, "\n```", close_len) != 0) goto out;
            if (chunks_push(&out, &cur) != 0) goto out;
            if (in_fence && sb_add(&cur, "```\n", 4) != 0) goto out;
            line += take;
            lb -= take;
            if (lb == 0) {
                has_content = cur.len > 0;
                break;
            }
        }
        if (!nl) break;
        p = nl + 1;
    }
    if (has_content || out.n == 0) {
        if (in_fence && has_content && sb_add(&cur, "\n```", close_len) != 0) goto out;
        if (chunks_push(&out, &cur) != 0) goto out;
    } else {
        free(cur.s);
    }
    if (n) *n = out.n;
    return out.v;
out:
    free(cur.s);
    if (out.v) ntf_slack_chunks_free(out.v);
    return NULL;
}

struct status_look {
    const char *emoji;
    const char *label;
};

static struct status_look look_of(const struct cq_result *r) {
    struct ntf_event_look ev;
    if (ntf_event_look(r, &ev)) return (struct status_look){ev.emoji, ev.label};
    const char *st = r->status ? r->status : "";
    const char *step = r->step ? r->step : "";
    if (strcmp(st, "ok") == 0) {
        if (strcmp(step, "ack") == 0) return (struct status_look){":inbox_tray:", "Accepted"};
        if (strcmp(step, "progress") == 0)
            return (struct status_look){":hourglass_flowing_sand:", "In progress"};
        return (struct status_look){":white_check_mark:", "Succeeded"};
    }
    if (strcmp(st, "denied") == 0) return (struct status_look){":no_entry:", "Denied"};
    if (strcmp(st, "invalid") == 0) return (struct status_look){":warning:", "Invalid command"};
    if (strcmp(st, "timeout") == 0) return (struct status_look){":alarm_clock:", "Timed out"};
    return (struct status_look){":x:", "Failed"};
}

static cJSON *text_obj(const char *type, const char *text) {
    cJSON *t = cJSON_CreateObject();
    if (!t) return NULL;
    if (!cJSON_AddStringToObject(t, "type", type) || !cJSON_AddStringToObject(t, "text", text)) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

static int add_section(cJSON *blocks, const char *mrkdwn) {
    cJSON *b = cJSON_CreateObject();
    cJSON *t = text_obj("mrkdwn", mrkdwn);
    if (!b || !t || !cJSON_AddStringToObject(b, "type", "section")) goto out;
    cJSON_AddItemToObject(b, "text", t);
    cJSON_AddItemToArray(blocks, b);
    return 0;
out:
    cJSON_Delete(b);
    cJSON_Delete(t);
    return -1;
}

static int add_context(cJSON *blocks, const char *mrkdwn) {
    cJSON *b = cJSON_CreateObject();
    cJSON *els = cJSON_CreateArray();
    cJSON *t = text_obj("mrkdwn", mrkdwn);
    if (!b || !els || !t || !cJSON_AddStringToObject(b, "type", "context")) goto out;
    cJSON_AddItemToArray(els, t);
    cJSON_AddItemToObject(b, "elements", els);
    cJSON_AddItemToArray(blocks, b);
    return 0;
out:
    cJSON_Delete(b);
    cJSON_Delete(els);
    cJSON_Delete(t);
    return -1;
}

static int add_button(cJSON *blocks, const char *label, const char *url) {
    cJSON *b = cJSON_CreateObject();
    cJSON *els = cJSON_CreateArray();
    cJSON *btn = cJSON_CreateObject();
    cJSON *t = text_obj("plain_text", label);
    if (!b || !els || !btn || !t || !cJSON_AddStringToObject(b, "type", "actions") ||
        !cJSON_AddStringToObject(btn, "type", "button") ||
        !cJSON_AddStringToObject(btn, "url", url) ||
        !cJSON_AddStringToObject(btn, "action_id", "open_pipeline"))
        goto out;
    cJSON_AddItemToObject(btn, "text", t);
    t = NULL;
    cJSON_AddItemToArray(els, btn);
    btn = NULL;
    cJSON_AddItemToObject(b, "elements", els);
    cJSON_AddItemToArray(blocks, b);
    return 0;
out:
    cJSON_Delete(b);
    cJSON_Delete(els);
    cJSON_Delete(btn);
    cJSON_Delete(t);
    return -1;
}

char *ntf_slack_format(const struct cq_result *r, const struct ntf_slack_msg_opts *o,
                       size_t *cut_chars, struct cq_err *err) {
    char *out = NULL, *esc_cmd = NULL, *esc_user = NULL, *esc_text = NULL, **chunks = NULL;
    char header[NTF_SLACK_SECTION_CHARS * 2 + 1], note[160], summary[1100];
    cJSON *root = NULL, *blocks = NULL;
    size_t nchunks = 0, total_text = 0, kept_chunks = 0;

    if (cut_chars) *cut_chars = 0;
    if (!r || !o) {
        cq_err_set(err, CQ_EINVAL, "slack format: missing result or options");
        return NULL;
    }
    if ((o->target != NTF_SLACK_RESPONSE_URL && !o->channel) ||
        (o->target == NTF_SLACK_UPDATE && !o->ts)) {
        cq_err_set(err, CQ_EINVAL, "slack format: chat.%s needs a channel%s",
                   o->target == NTF_SLACK_UPDATE ? "update" : "postMessage",
                   o->target == NTF_SLACK_UPDATE ? " and ts" : "");
        return NULL; /* nothing allocated yet */
    }
    struct ntf_slack_limits lim = {NTF_SLACK_SECTION_CHARS, NTF_SLACK_MAX_BLOCKS,
                                   NTF_SLACK_MESSAGE_CHARS};
    if (o->limits) {
        if (o->limits->section_chars > 0) lim.section_chars = o->limits->section_chars;
        if (o->limits->max_blocks > 0) lim.max_blocks = o->limits->max_blocks;
        if (o->limits->message_chars > 0) lim.message_chars = o->limits->message_chars;
    }
    if (lim.section_chars < 64) lim.section_chars = 64;
    if (lim.max_blocks < 5) lim.max_blocks = 5;

    struct status_look look = look_of(r);
    esc_cmd = ntf_slack_escape(r->command ? r->command : "");
    esc_user = ntf_slack_escape(r->user_name ? r->user_name : "");
    esc_text = ntf_slack_escape(r->text ? r->text : "");
    if (!esc_cmd || !esc_user || !esc_text) goto out;

    /* Header: emoji, status, `command`, who ran it; trimmed to one section. */
    {
        char cmd[200 * 4 + sizeof "…"]; /* 200 characters of up to 4 UTF-8 bytes each */
        size_t cb = prefix_bytes(esc_cmd, strlen(esc_cmd), 200);
        snprintf(cmd, sizeof cmd, "%.*s%s", (int)cb, esc_cmd, cb < strlen(esc_cmd) ? "…" : "");
        size_t ub = prefix_bytes(esc_user, strlen(esc_user), 100);
        int hl = snprintf(header, sizeof header, "%s *%s*", look.emoji, look.label);
        bool event = r->event_kind && *r->event_kind; /* a headline, not a command line */
        if (*cmd && hl > 0 && (size_t)hl < sizeof header)
            hl += snprintf(header + hl, sizeof header - (size_t)hl, event ? " %s" : " `%s`", cmd);
        if (*esc_user && hl > 0 && (size_t)hl < sizeof header)
            snprintf(header + hl, sizeof header - (size_t)hl, " · run by %.*s", (int)ub, esc_user);
        snprintf(summary, sizeof summary, "%s%s%s", look.label, *cmd ? ": " : "", cmd);
    }

    root = cJSON_CreateObject();
    blocks = cJSON_CreateArray();
    if (!root || !blocks) goto out;
    if (add_section(blocks, header) != 0) goto out;
    cJSON *evf = ntf_event_slack_fields(r); /* a GitLab event's Project / Ref / ... */
    if (evf) cJSON_AddItemToArray(blocks, evf);

    bool has_pipeline = r->pipeline.id > 0 || r->pipeline.web_url || r->pipeline.status;
    int fixed_blocks = 1 + (has_pipeline ? 2 : 0) + 1 + (r->buttons_kind ? 1 : 0) +
                       (evf ? 2 : 0); /* event fields and link */
    /* header, pipeline x2, cut note, choice buttons (buttons.c) */
    size_t budget = (size_t)lim.message_chars;
    size_t used = cq_utf8_len(header, strlen(header)) + cq_utf8_len(summary, strlen(summary)) +
                  300; /* pipeline context/button and the note */
    budget = budget > used ? budget - used : 0;

    if (*esc_text) {
        chunks = ntf_slack_split(esc_text, (size_t)lim.section_chars, &nchunks);
        if (!chunks) goto out;
        total_text = cq_utf8_len(esc_text, strlen(esc_text));
        size_t max_body_blocks = (size_t)(lim.max_blocks - fixed_blocks);
        for (size_t i = 0; i < nchunks; i++) {
            size_t c = cq_utf8_len(chunks[i], strlen(chunks[i]));
            if (i >= max_body_blocks || c > budget) break;
            if (add_section(blocks, chunks[i]) != 0) goto out;
            budget -= c;
            kept_chunks++;
        }
    }

    if (has_pipeline) {
        char ctx[CQ_ENV_MAX_URL + 256];
        char *st = ntf_slack_escape(r->pipeline.status ? r->pipeline.status : "");
        if (!st) goto out;
        if (r->pipeline.id > 0)
            snprintf(ctx, sizeof ctx, "Pipeline #%lld%s%s", r->pipeline.id, *st ? ": " : "", st);
        else
            snprintf(ctx, sizeof ctx, "Pipeline%s%s", *st ? ": " : "", st);
        free(st);
        if (add_context(blocks, ctx) != 0) goto out;
        if (r->pipeline.web_url && *r->pipeline.web_url) {
            char label[64];
            ntf_pipeline_label(label, sizeof label, r->pipeline.id);
            if (add_button(blocks, label, r->pipeline.web_url) != 0) goto out;
        }
    } else if (r->event_url && *r->event_url) { /* a GitLab event's page */
        if (add_button(blocks, NTF_EVENT_LINK_LABEL, r->event_url) != 0) goto out;
    }
    if (ntf_slack_choice_buttons(blocks, r) != 0) goto out; /* Approve / Deny, ... */

    /* characters in the chunks that did not fit (fence markers included, capped) */
    size_t cut = 0;
    for (size_t i = kept_chunks; i < nchunks; i++)
        cut += cq_utf8_len(chunks[i], strlen(chunks[i]));
    if (cut > total_text) cut = total_text;
    if (cut > 0) {
        snprintf(note, sizeof note,
                 ":scissors: _Output cut: %zu of %zu characters not shown (Slack message limits)._",
                 cut, total_text);
        if (add_context(blocks, note) != 0) goto out;
        if (cut_chars) *cut_chars = cut;
    }

    switch (o->target) {
    case NTF_SLACK_RESPONSE_URL:
        if (!cJSON_AddStringToObject(root, "response_type",
                                     r->response_type && *r->response_type ? r->response_type
                                                                           : "in_channel") ||
            !cJSON_AddBoolToObject(root, "replace_original", o->replace_original))
            goto out;
        break;
    case NTF_SLACK_POST_MESSAGE:
        if (!cJSON_AddStringToObject(root, "channel", o->channel)) goto out;
        if (o->thread_ts && !cJSON_AddStringToObject(root, "thread_ts", o->thread_ts)) goto out;
        break;
    case NTF_SLACK_UPDATE:
        if (!cJSON_AddStringToObject(root, "channel", o->channel) ||
            !cJSON_AddStringToObject(root, "ts", o->ts))
            goto out;
        break;
    }
    if (!cJSON_AddStringToObject(root, "text", summary)) goto out;
    cJSON_AddItemToObject(root, "blocks", blocks);
    blocks = NULL;
    out = cJSON_PrintUnformatted(root);
out:
    if (!out) cq_err_set(err, CQ_ENOMEM, "slack format: out of memory"); /* every other way here */
    cJSON_Delete(blocks);
    cJSON_Delete(root);
    ntf_slack_chunks_free(chunks);
    free(esc_cmd);
    free(esc_user);
    free(esc_text);
    return out;
}

void ntf_pipeline_label(char *buf, size_t n, long long id) {
    if (id > 0)
        snprintf(buf, n, "Open pipeline #%lld", id);
    else
        snprintf(buf, n, "Open pipeline");
}
