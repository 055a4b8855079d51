/* form: the x-www-form-urlencoded parser for Slack slash commands (see form.h). Input is
 * untrusted and already bounded by the HTTP layer's max_body. */
#include "form.h"

#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *cq_form_unescape(const char *in, size_t len, int plus_space, struct cq_err *err) {
    char *out = malloc(len + 1);
    size_t o = 0;
    if (!out) {
        cq_err_set(err, CQ_ENOMEM, "form: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (len - i < 3) {
                cq_err_set(err, CQ_EPARSE, "form: truncated %%-escape at byte %zu", i);
                goto fail;
            }
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0) {
                cq_err_set(err, CQ_EPARSE, "form: bad %%-escape at byte %zu", i);
                goto fail;
            }
            c = (char)(hi * 16 + lo);
            if (c == '\0') {
                cq_err_set(err, CQ_EPARSE, "form: encoded NUL at byte %zu", i);
                goto fail;
            }
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '\0') {
            cq_err_set(err, CQ_EPARSE, "form: NUL byte at %zu", i);
            goto fail;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

enum cq_rc cq_form_parse(const char *body, size_t len, size_t max_fields, struct cq_form *out,
                         struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    size_t pos = 0, cap = 0;
    memset(out, 0, sizeof *out);
    while (pos < len) {
        const char *amp = memchr(body + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > pos) {
            const char *eq = memchr(body + pos, '=', end - pos);
            size_t nend = eq ? (size_t)(eq - body) : end;
            if (out->n == max_fields) {
                rc = cq_err_set(err, CQ_ETOOBIG, "form: more than %zu fields", max_fields);
                goto out;
            }
            if (out->n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct cq_form_field *f = realloc(out->fields, ncap * sizeof *f);
                if (!f) {
                    rc = cq_err_set(err, CQ_ENOMEM, "form: out of memory");
                    goto out;
                }
                out->fields = f;
                cap = ncap;
            }
            struct cq_form_field *f = &out->fields[out->n];
            f->name = cq_form_unescape(body + pos, nend - pos, 1, err);
            if (!f->name) {
                rc = err ? err->code : CQ_EPARSE;
                goto out;
            }
            f->value = eq ? cq_form_unescape(eq + 1, end - nend - 1, 1, err) : strdup("");
            if (!f->value) {
                free(f->name);
                rc = err && err->code != CQ_OK ? err->code
                                               : cq_err_set(err, CQ_ENOMEM, "form: out of memory");
                goto out;
            }
            out->n++;
        }
        pos = end + 1;
    }
out:
    return rc;
}

const char *cq_form_get(const struct cq_form *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->fields[i].name, name) == 0) return f->fields[i].value;
    return NULL;
}

void cq_form_clear(struct cq_form *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->fields[i].name);
        free(f->fields[i].value);
    }
    free(f->fields);
    f->fields = NULL;
    f->n = 0;
}
