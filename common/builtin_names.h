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
    X(PIPELINES, "pipelines")

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

#endif
