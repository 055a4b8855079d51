/* normalize: small helpers the platform modules share on the way from a raw HTTP body to a
 * request envelope: form decoding, command splitting, UTF-8 length, outcome bookkeeping. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "utf8.h"

void ing_verdict_clear(struct ing_verdict *o) {
    if (!o) return;
    free(o->body);
    struct cq_request *r = &o->req;
    if (o->borrowed & ING_BORROW_STAMP) r->id = r->received_at = NULL;
    if (o->borrowed & ING_BORROW_FORM)
        r->platform = r->tenant = r->channel_id = r->channel_name = r->user_id = r->user_name =
            r->reply.response_url = r->reply.chat_id = NULL;
    cq_request_clear(r);
    ing_form_clear(&o->form);
    memset(o, 0, sizeof(*o));
}

void ing_reject(struct ing_verdict *out, int status, const char *reason, const char *detail) {
    out->kind = ING_REJECT;
    out->status = status;
    out->reason = reason;
    size_t n = detail ? strnlen(detail, sizeof(out->detail) - 1) : 0;
    memcpy(out->detail, detail ? detail : "", n); /* cut to the buffer: only for the log */
    out->detail[n] = '\0';
}

void ing_reply(struct ing_verdict *out, int status, const char *content_type, char *body) {
    if (!body) {
        ing_reject(out, 500, "out of memory", NULL);
        return;
    }
    out->kind = ING_REPLY;
    out->status = status;
    out->content_type = content_type;
    free(out->body);
    out->body = body;
}

void ing_challenge(struct ing_verdict *out, const char *ch) {
    if (!ch) {
        ing_reject(out, 400, "missing challenge", NULL);
        return;
    }
    cJSON *a = cJSON_CreateObject();
    ing_reply(out, 200, "application/json",
              a && cJSON_AddStringToObject(a, "challenge", ch) ? cJSON_PrintUnformatted(a) : NULL);
    cJSON_Delete(a);
}

char *ing_slack_ephemeral(const char *text) {
    static const char head[] = "{\"response_type\":\"ephemeral\",\"text\":\"", tail[] = "\"}";
    size_t n = strlen(text);
    char *s = malloc(sizeof(head) - 1 + n * 6 + sizeof(tail)); /* \u00XX is the longest */
    if (!s) return NULL;
    char *w = s + sizeof(head) - 1;
    memcpy(s, head, sizeof(head) - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = (char)c;
        } else if (c < 0x20) {
            static const char short_esc[] = "btnvfr"; /* \b \t \n (no \v in JSON) \f \r */
            *w++ = '\\';
            if (c >= '\b' && c <= '\r' && c != '\v') {
                *w++ = short_esc[c - '\b'];
            } else {
                snprintf(w, 6, "u%04x", c);
                w += 5;
            }
        } else {
            *w++ = (char)c;
        }
    }
    memcpy(w, tail, sizeof(tail));
    return s;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes [s, s+len) to out (room for len + 1) and NUL-terminates it; false on a bad escape
 * or a NUL byte. Returns the end of what it wrote (after the NUL) in *next. */
static bool form_decode(const char *s, size_t len, char *out, char **next) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (len - i < 3) return false;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0) return false;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0) return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *next = out + o + 1;
    return true;
}

enum cq_rc ing_form_parse(const char *body, size_t len, size_t max_fields, struct ing_form *form) {
    enum cq_rc rc = CQ_OK;
    size_t i = 0, cap = 0;
    memset(form, 0, sizeof(*form));
    /* decoded text is never longer than its source, and a pair of k bytes writes at most k + 1
     * (its '=' becomes a NUL, plus the NUL after the value; "a" alone shares its name's NUL),
     * the extra byte paid by the '&' before the next pair: len + 1 bytes hold them all */
    char *w = form->buf = malloc(len + 1);
    if (!w) return CQ_ENOMEM;
    while (i < len) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > i) { /* skip empty pairs ("a=1&&b=2") */
            const char *eqp = memchr(body + i, '=', end - i);
            size_t eq = eqp ? (size_t)(eqp - body) : end;
            if (form->n == max_fields) {
                rc = CQ_EPARSE;
                goto out;
            }
            if (form->n == cap) { /* grown by doubling: Slack sends about a dozen fields */
                cap = cap ? cap * 2 : 16;
                struct ing_form_field *nf = realloc(form->f, cap * sizeof(*nf));
                if (!nf) {
                    rc = CQ_ENOMEM;
                    goto out;
                }
                form->f = nf;
            }
            struct ing_form_field *f = &form->f[form->n];
            f->name = w;
            if (!form_decode(body + i, eq - i, w, &w)) {
                rc = CQ_EPARSE;
                goto out;
            }
            if (eq == end) { /* "a" alone: the value is "", the name's own NUL */
                f->value = w - 1;
            } else {
                f->value = w;
                if (!form_decode(body + eq + 1, end - eq - 1, w, &w)) {
                    rc = CQ_EPARSE;
                    goto out;
                }
            }
            form->n++;
        }
        i = end + 1;
    }
out:
    if (rc != CQ_OK) ing_form_clear(form);
    return rc;
}

const char *ing_form_get(const struct ing_form *form, const char *name) {
    for (size_t i = 0; i < form->n; i++) /* the first byte rules out most names at once */
        if (form->f[i].name[0] == name[0] && strcmp(form->f[i].name, name) == 0)
            return form->f[i].value;
    return NULL;
}

void ing_form_clear(struct ing_form *form) {
    if (!form) return;
    free(form->f);
    free(form->buf);
    memset(form, 0, sizeof(*form));
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

enum cq_rc ing_split(const char *text, char **command, char **rest) {
    const char *s = text ? text : "";
    *command = *rest = NULL;
    while (is_space(*s))
        s++;
    const char *w = s;
    while (*w && !is_space(*w))
        w++;
    const char *r = w;
    while (is_space(*r))
        r++;
    size_t rlen = strlen(r);
    while (rlen && is_space(r[rlen - 1]))
        rlen--;
    *command = w == s ? strdup("help") : strndup(s, (size_t)(w - s));
    *rest = strndup(r, rlen);
    if (!*command || !*rest) {
        free(*command);
        free(*rest);
        *command = *rest = NULL;
        return CQ_ENOMEM;
    }
    return CQ_OK;
}

enum cq_rc ing_stamp(struct cq_request *req) {
    char id[CQ_UUID_LEN + 1], ts[32];
    enum cq_rc rc = cq_uuid4(id);
    if (rc != CQ_OK) return rc;
    cq_now_rfc3339(ts);
    free(req->id);
    free(req->received_at);
    req->id = strdup(id);
    req->received_at = strdup(ts);
    return req->id && req->received_at ? CQ_OK : CQ_ENOMEM;
}

/* Text checks shared by commands and mentions; fills command + text. */
bool ing_set_command(const struct cq_config *cfg, const char *text, struct cq_request *r,
                     struct ing_verdict *out) {
    if (cq_utf8_len(text, strlen(text)) > (size_t)cfg->limits.max_text) {
        ing_reject(out, 400, "text too long", NULL);
        return false;
    }
    if (ing_split(text, &r->command, &r->text) != CQ_OK) {
        ing_reject(out, 500, "out of memory", NULL);
        return false;
    }
    return true;
}

/* Last step of both routes: stamp, and prove the envelope encodes (so a bad field is a 400
 * here rather than a message nobody can read). */
void ing_finish(struct ing_verdict *out) {
    struct cq_err err = {0};
    struct cq_request *r = &out->req;
    /* the id and the time in the verdict itself: no allocation (ing_stamp's work) */
    _Static_assert(sizeof(out->stamp_id) > CQ_UUID_LEN, "stamp_id holds a UUID");
    if (cq_uuid4(out->stamp_id) != CQ_OK) {
        ing_reject(out, 500, "no random bytes for the request id", NULL);
        return;
    }
    cq_now_rfc3339(out->stamp_at);
    if (!(out->borrowed & ING_BORROW_STAMP)) {
        free(r->id);
        free(r->received_at);
    }
    r->id = out->stamp_id;
    r->received_at = out->stamp_at;
    out->borrowed |= ING_BORROW_STAMP;
    char *json = cq_request_encode(&out->req, &err);
    if (!json) {
        ing_reject(out, err.code == CQ_ENOMEM ? 500 : 400,
                   err.code == CQ_ENOMEM ? "out of memory" : "malformed request", err.msg);
        return;
    }
    free(out->body);
    out->body = json;
    out->kind = ING_REQUEST;
}
