/* builtins: the commands the worker answers itself without an action: help (only
 * what this user may run in this channel), help CMD, whoami, and the did-you-mean
 * reply for an unknown command. Pure functions over the config and policy. */
#ifndef CQ_WORKER_BUILTINS_H
#define CQ_WORKER_BUILTINS_H

#include "config.h"
#include "strutil.h" /* cq_levenshtein for did-you-mean */

/* help (topic NULL or "") or help TOPIC (a command name or its first words).
 * Returns a new text; caller frees. NULL on ENOMEM. */
char *w_builtin_help(const struct cq_config *cfg, const struct cq_person *person,
                     const struct cq_channel *channel, const char *topic);

/* whoami: person, GitLab login, roles, or that the user is unknown. Caller frees. */
char *w_builtin_whoami(const struct cq_person *person, const char *platform, const char *user_id);

/* "unknown command `flg`; did you mean `flag`?" (closest known command word by
 * Levenshtein distance, when close enough). Caller frees. */
char *w_builtin_unknown(const struct cq_config *cfg, const char *word);

#endif
