/* policy: who may run which command where, deny by default. Maps a platform user
 * to a configured person (unknown user = no roles) and a channel id to a named
 * channel, then finds the first rule that grants the command with these
 * arguments here. A denial carries one specific, truthful line the user sees. */
#ifndef CQ_WORKER_POLICY_H
#define CQ_WORKER_POLICY_H

#include <stdbool.h>

#include "args.h"
#include "config.h"

/* Commands the worker answers itself; help and whoami are open to everyone. */
#define W_BUILTIN_RULE "builtin"

struct w_decision {
    bool allowed;
    const char *rule; /* borrowed rule name when allowed (W_BUILTIN_RULE for built-ins) */
    char reason[300]; /* when denied: the one line the user reads */
};

/* Borrowed person for (platform, user_id), NULL for an unknown user. */
const struct cq_person *w_policy_person(const struct cq_config *cfg, const char *platform,
                                        const char *user_id);
/* Borrowed channel for (platform, channel_id), NULL when not configured. */
const struct cq_channel *w_policy_channel(const struct cq_config *cfg, const char *platform,
                                          const char *channel_id);

/* True for help, whoami, cancel, pipelines. */
bool w_policy_is_builtin(const char *name);

/* Decides whether person (may be NULL) may run command cmd_name with args (may be NULL)
 * in channel (may be NULL = an unconfigured channel, matched only by rules without a
 * channel list). Fills *out; never fails. */
void w_policy_check(const struct cq_config *cfg, const struct cq_person *person,
                    const struct cq_channel *channel, const char *cmd_name,
                    const struct w_bound_args *args, struct w_decision *out);

/* Whether some rule could allow person to run cmd in channel for some argument values
 * (used by help: argument limits are shown, not guessed). */
bool w_policy_may_run(const struct cq_config *cfg, const struct cq_person *person,
                      const struct cq_channel *channel, const char *cmd_name);

#endif
