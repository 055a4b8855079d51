/* errors: one X-macro table yields enum cq_rc and its messages; struct cq_err
 * carries the code plus the sentence a user or operator will read. Every
 * common/ function returns cq_rc and fills a caller-supplied cq_err. */
#ifndef CQ_ERRORS_H
#define CQ_ERRORS_H

#include <stddef.h>

#define CQ_ERRORS(X)                                                                               \
    X(OK, "ok")                                                                                    \
    X(ENOMEM, "out of memory")                                                                     \
    X(EINVAL, "invalid argument")                                                                  \
    X(EIO, "input/output error")                                                                   \
    X(ECONFIG, "invalid configuration")                                                            \
    X(EPARSE, "malformed input")                                                                   \
    X(EENCODE, "message cannot be encoded")                                                        \
    X(ETOOBIG, "input exceeds the configured limit")                                               \
    X(EVERSION, "unsupported message version")                                                     \
    X(EAUTH, "authentication failed")                                                              \
    X(ESTALE, "request timestamp outside the replay window")                                       \
    X(ECRYPTO, "cryptographic operation failed")                                                   \
    X(EKAFKA, "kafka error")                                                                       \
    X(ETIMEOUT, "timed out")                                                                       \
    X(EREDIS, "redis error")                                                                       \
    X(EHTTP, "http error")                                                                         \
    X(ENOTFOUND, "not found")                                                                      \
    X(EDENIED, "permission denied")                                                                \
    X(EEXISTS, "already exists")                                                                   \
    X(ESHUTDOWN, "shutting down")

enum cq_rc {
#define CQ_ERR_ENUM(name, msg) CQ_##name,
    CQ_ERRORS(CQ_ERR_ENUM)
#undef CQ_ERR_ENUM
        CQ_RC_COUNT
};

struct cq_err {
    enum cq_rc code;
    int sys_errno;
    char msg[256]; /* one readable line; never contains a secret value */
};

/* Static text for a code; never NULL. */
const char *cq_rc_str(enum cq_rc rc);

/* Sets err (if not NULL) and returns rc, so `return cq_err_set(err, CQ_EPARSE, "...")` works. */
enum cq_rc cq_err_set(struct cq_err *err, enum cq_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to CQ_OK with an empty message. NULL is a no-op. */
void cq_err_clear(struct cq_err *err);

#endif
