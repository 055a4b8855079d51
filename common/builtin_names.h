/* builtin_names: the one list of the worker's built-in chat commands. config_check.c refuses
 * them as command names and accepts them in policy rules; worker/policy.c always allows them;
 * worker/builtins.c offers them as did-you-mean answers. Add a built-in here, nowhere else.
 * X(ID, "name") */
#ifndef CQ_BUILTIN_NAMES_H
#define CQ_BUILTIN_NAMES_H

#include <stdbool.h>
#include <string.h>

#define CQ_BUILTINS(X)                                                                             \
    X(HELP, "help")                                                                                \
    X(WHOAMI, "whoami")                                                                            \
    X(CANCEL, "cancel")                                                                            \
    X(PIPELINES, "pipelines")                                                                      \
    X(APPROVE, "approve")                                                                          \
    X(DENY, "deny")                                                                                \
    X(CONFIRM, "confirm")                                                                          \
    X(EXPLAIN, "explain")

/* Built-ins the policy governs like configured commands (a rule must name them, or "*"):
 * the per-channel GitLab event subscriptions (worker/subscriptions_builtins.c). */
#define CQ_POLICED_BUILTINS(X)                                                                     \
    X(SUBSCRIBE, "subscribe")                                                                      \
    X(UNSUBSCRIBE, "unsubscribe")                                                                  \
    X(SUBSCRIPTIONS, "subscriptions")                                                              \
    X(LOCKS, "locks")                                                                              \
    X(LOCK, "lock")                                                                                \
    X(UNLOCK, "unlock")

#define CQ_BUILTIN_NAME_(id, name) name,
/* NULL-terminated: {"help", "whoami", ..., NULL}. */
#define CQ_BUILTIN_NAMES                                                                           \
    { CQ_BUILTINS(CQ_BUILTIN_NAME_) NULL }

static inline bool cq_is_builtin_name(const char *name) {
    static const char *const names[] = CQ_BUILTIN_NAMES;
    for (size_t i = 0; name && names[i]; i++)
        if (strcmp(name, names[i]) == 0) return true;
    return false;
}

static inline bool cq_is_policed_builtin_name(const char *name) {
    static const char *const names[] = {CQ_POLICED_BUILTINS(CQ_BUILTIN_NAME_) NULL};
    for (size_t i = 0; name && names[i]; i++)
        if (strcmp(name, names[i]) == 0) return true;
    return false;
}

#endif
