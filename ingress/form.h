/* form: application/x-www-form-urlencoded bodies (Slack slash commands) into name/value
 * pairs, percent-decoded ('+' is a space). Strict: a bad %XX escape, an encoded NUL or more
 * than max_fields pairs is an error, never a silent truncation. */
#ifndef CQ_INGRESS_FORM_H
#define CQ_INGRESS_FORM_H

#include <stddef.h>

#include "errors.h"

struct cq_form_field {
    char *name;
    char *value;
};

struct cq_form {
    struct cq_form_field *fields;
    size_t n;
};

/* Parses body (len bytes, need not be NUL-terminated) into *out (zeroed first; caller calls
 * cq_form_clear even on error). CQ_EPARSE with the reason in err->msg on malformed input,
 * CQ_ETOOBIG over max_fields, CQ_ENOMEM. Empty pairs ("a=1&&b=2") are skipped; a pair
 * without '=' has the value "". */
enum cq_rc cq_form_parse(const char *body, size_t len, size_t max_fields, struct cq_form *out,
                         struct cq_err *err);
/* First value of name (borrowed, valid until cq_form_clear), NULL when absent. */
const char *cq_form_get(const struct cq_form *f, const char *name);
/* Frees the fields; safe on a zeroed form. */
void cq_form_clear(struct cq_form *f);

/* Percent-decodes in[0..len) into a new NUL-terminated string (caller frees); plus_space
 * turns '+' into ' '. NULL with err on a bad escape, an encoded NUL or ENOMEM. */
char *cq_form_unescape(const char *in, size_t len, int plus_space, struct cq_err *err);

#endif
