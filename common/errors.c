/* errors: messages for enum cq_rc and the cq_err helpers (see errors.h). */
#include "errors.h"

#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const messages[] = {
#define CQ_ERR_MSG(name, msg) msg,
    CQ_ERRORS(CQ_ERR_MSG)
#undef CQ_ERR_MSG
};

const char *cq_rc_str(enum cq_rc rc) {
    if ((int)rc < 0 || rc >= CQ_RC_COUNT) return "unknown error";
    return messages[rc];
}

enum cq_rc cq_err_set(struct cq_err *err, enum cq_rc rc, const char *fmt, ...) {
    if (!err) return rc;
    err->code = rc;
    err->sys_errno = 0;
    if (fmt) {
        /* Formatted wider than msg, then cut on a character boundary and made valid UTF-8:
         * a message that a byte cut or an argument's bytes made invalid could not be put in
         * a result envelope, so the user would get no reason at all. */
        char wide[4 * sizeof(err->msg)];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(wide, sizeof(wide), fmt, ap);
        va_end(ap);
        size_t len = n < 0 ? 0 : (size_t)n < sizeof(wide) ? (size_t)n : sizeof(wide) - 1;
        cq_utf8_copy(err->msg, sizeof(err->msg), wide, len, NULL);
        /* One line, whatever the arguments carried (a YAML key with "\n", a header value):
         * messages end up in logs and replies, where a raw newline would forge a second line. */
        for (char *p = err->msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    } else {
        snprintf(err->msg, sizeof(err->msg), "%s", cq_rc_str(rc));
    }
    return rc;
}

void cq_err_clear(struct cq_err *err) {
    if (!err) return;
    memset(err, 0, sizeof(*err));
}
