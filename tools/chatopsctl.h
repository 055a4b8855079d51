/* chatopsctl.h: the sub-commands of chatopsctl, one file each (chatopsctl_*.c), and the
 * small blocking HTTP helper they share. Each command returns the process exit code:
 * 0 ok, 1 the operation failed (one line on stderr), 2 usage error. Internal to tools/. */
#ifndef CQ_CHATOPSCTL_H
#define CQ_CHATOPSCTL_H

#include <stddef.h>

#include "config.h"

/* `send [options] TEXT`: argv/argc are the arguments after "send". cfg borrowed. */
int cq_ctl_send(const struct cq_config *cfg, int argc, char **argv);
/* chatopsctl discord register [--dry-run] (chatopsctl_discord.c): the config's commands as
 * Discord application commands; the JSON of that set (caller frees; NULL when out of memory). */
int cq_ctl_discord(const struct cq_config *cfg, int argc, char **argv);
char *cq_ctl_discord_commands(const struct cq_config *cfg);
/* Argument checks without a config (usage errors exit 2 before any config is read):
 * 0 when argv is acceptable, else 2 after one line on stderr. */
int cq_ctl_send_usage(int argc, char **argv);
/* `click ACTION REQ` (and `approve REQ`, `deny REQ`): argv starts at ACTION (chatopsctl_click.c).
 */
int cq_ctl_click(const struct cq_config *cfg, int argc, char **argv);
int cq_ctl_click_usage(int argc, char **argv);
int cq_ctl_pipelines_usage(int argc, char **argv);
int cq_ctl_dlq_usage(int argc, char **argv);
/* `reload [--all]`: SIGHUP to the local services started with config (chatopsctl_reload.c). */
int cq_ctl_reload(const char *config, int argc, char **argv);
/* `pipelines`: in-flight pipelines from Redis. */
int cq_ctl_pipelines(const struct cq_config *cfg, int argc, char **argv);
/* `dlq list [--max N]` / `dlq replay P:OFFSET|OFFSET|--all`: argv starts after "dlq". */
int cq_ctl_dlq(const struct cq_config *cfg, int argc, char **argv);
int cq_ctl_audit_usage(int argc, char **argv);
/* `audit list [--max N]`: the latest audit records, decoded; argv starts after "audit". */
int cq_ctl_audit(const struct cq_config *cfg, int argc, char **argv);

/* `gitlab-hook KIND [options]`: a GitLab webhook as GitLab sends it (chatopsctl_gitlab.c). */
int cq_ctl_gitlab_usage(int argc, char **argv);
int cq_ctl_gitlab(const struct cq_config *cfg, int argc, char **argv);
/* `identity USER [--platform P] [--flush]` (chatopsctl_identity.c): argv after "identity". */
int cq_ctl_identity_usage(int argc, char **argv);
int cq_ctl_identity(const struct cq_config *cfg, int argc, char **argv);

/* The options send and click share (one parser, chatopsctl_send.c): --as, --channel,
 * --platform, --ingress, --sink take a string, --timeout seconds > 0. */
struct cq_ctl_target_opts {
    const char *as, *channel, *platform, *ingress, *sink;
    double timeout_s;
};
/* argv[*i] is one of them: CQ_CTL_OPT_TAKEN (value stored, *i on the value), else
 * CQ_CTL_OPT_NONE (not one of them), CQ_CTL_OPT_NO_VALUE or CQ_CTL_OPT_BAD_TIMEOUT; the
 * caller words the usage error. */
enum { CQ_CTL_OPT_NONE, CQ_CTL_OPT_TAKEN, CQ_CTL_OPT_NO_VALUE, CQ_CTL_OPT_BAD_TIMEOUT };
int cq_ctl_target_opt(int argc, char **argv, int *i, struct cq_ctl_target_opts *o);

struct cq_ctl_http {
    long status; /* 0 when no response arrived */
    char *body;  /* NUL-terminated, never NULL after cq_ctl_http_do returned 0; caller frees */
    size_t len;
    char err[256]; /* curl's reason when status == 0 */
};

/* Blocking request with libcurl easy. headers: NULL-terminated "Name: value" lines or NULL.
 * Returns 0 when a response arrived (any status), -1 otherwise (out->err says why). */
int cq_ctl_http_do(const char *method, const char *url, const char *const *headers,
                   const char *body, size_t body_len, int timeout_ms, struct cq_ctl_http *out);

#endif
