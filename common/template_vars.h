/* template_vars: the one list of the fixed {{...}} template variables (besides args.*,
 * secrets.* and response.*). config_check.c accepts exactly these in templates and
 * worker/template.c gives each a value (a switch over enum cq_tpl_var, so a variable added
 * here without a value there is a -Wswitch error). X(ID, "name") */
#ifndef CQ_TEMPLATE_VARS_H
#define CQ_TEMPLATE_VARS_H

#include <string.h>

#define CQ_TEMPLATE_VARS(X)                                                                        \
    X(USER_GITLAB_LOGIN, "user.gitlab_login")                                                      \
    X(USER_NAME, "user.name")                                                                      \
    X(USER_ID, "user.id")                                                                          \
    X(CHANNEL_NAME, "channel.name")                                                                \
    X(CHANNEL_ID, "channel.id")                                                                    \
    X(REQUEST_ID, "request.id")                                                                    \
    X(COMMAND_NAME, "command.name")                                                                \
    X(CHAT_INPUT, "chat.input")

#define CQ_TPL_ENUM_(id, name) CQ_TPL_##id,
enum cq_tpl_var { CQ_TEMPLATE_VARS(CQ_TPL_ENUM_) CQ_TPL_N_VARS };

#define CQ_TPL_NAME_(id, name) name,
/* NULL-terminated: {"user.gitlab_login", ..., NULL}, in enum cq_tpl_var order. */
#define CQ_TEMPLATE_VAR_NAMES                                                                      \
    { CQ_TEMPLATE_VARS(CQ_TPL_NAME_) NULL }

/* The variable's enum cq_tpl_var, or -1 when name is not one of them. */
static inline int cq_tpl_var_index(const char *name) {
    static const char *const names[] = CQ_TEMPLATE_VAR_NAMES;
    for (int i = 0; name && names[i]; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

#endif
