/* decide: the decision step of a request: its age and size, argument binding,
 * identity (person, channel), policy and the built-ins' answers. Pure: reads the config
 * and the request only, never touches Redis, Kafka or the network (it counts expired
 * requests in a metric). Unit-tested by tests/unit/test_worker_decide.c. */
#include "service.h"
#include "service_int.h"
#include "strutil.h"

#include "admin_http.h"
#include "args.h"
#include "builtin_names.h"
#include "builtins.h"
#include "crypto.h"
#include "envelope.h"
#include "httpc.h"
#include "identity.h"
#include "kafka.h"
#include "locks.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "policy.h"
#include "redis.h"
#include "template.h"
#include "utf8.h"
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *w_cmd_name(const struct job *j) {
    return j->cmd ? j->cmd->name : (j->req.command ? j->req.command : "");
}

const char *w_decision_word(const struct job *j) {
    switch (j->kind) {
    case JK_BUILTIN:
    case JK_ACTION:
        return "allowed";
    case JK_DENIED:
        return "denied";
    case JK_UNKNOWN:
    case JK_INVALID:
        return "invalid";
    case JK_EXPIRED:
        return "expired";
    }
    return "invalid";
}

static char *join_words(const struct w_argv *av, size_t from) {
    size_t len = 1;
    for (size_t i = from; i < av->n; i++)
        len += strlen(av->v[i]) + 1;
    char *s = malloc(len);
    if (!s) return NULL;
    s[0] = '\0';
    for (size_t i = from; i < av->n; i++) {
        if (i > from) strcat(s, " ");
        strcat(s, av->v[i]);
    }
    return s;
}

static bool family_word(const struct cq_config *cfg, const char *word) {
    size_t n = strlen(word);
    for (size_t i = 0; i < cfg->n_commands; i++)
        if (strncmp(cfg->commands[i].name, word, n) == 0 && cfg->commands[i].name[n] == ' ')
            return true;
    return false;
}

/* Fills kind, dec, status/text for everything but actions. Never touches the network. */
void w_decide(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    struct cq_err err = {0};
    const char *word = j->req.command;
    char usage[300];
    size_t used = 0;

    j->person = w_identity_person(j); /* people:, else what identity.c resolved */
    j->channel = w_policy_channel(cfg, j->req.platform, j->req.channel_id);
    j->status = "invalid";
    /* Never run an old request: after committed offsets expired or a group was renamed
     * (auto.offset.reset=earliest), or a long outage, Kafka hands out requests whose
     * run-once claims may have expired; max_request_age_s stays below redis.dedupe_ttl_s. */
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    if (!cq_rfc3339_parse_ms(j->req.received_at, &j->received_ms) ||
        now_ms - j->received_ms > (int64_t)cfg->worker.max_request_age_s * 1000) {
        bool readable = j->received_ms != 0;
        j->kind = JK_EXPIRED;
        j->status = "failed";
        j->text = readable ? cq_strprintf("`%s` expired: it was received %lld s ago, more than "
                                          "the %d s a request may wait; it was NOT run "
                                          "(req %s), run it again if it is still wanted",
                                          word, (long long)((now_ms - j->received_ms) / 1000),
                                          cfg->worker.max_request_age_s, j->req.id)
                           : cq_strprintf("`%s` was NOT run: its receive time is unreadable, so "
                                          "its age is unknown (req %s)",
                                          word, j->req.id);
        w_metric_expired();
        if (!readable) j->received_ms = 0;
        return;
    }
    if (cfg->limits.max_text > 0 && j->req.text &&
        cq_utf8_len(j->req.text, strlen(j->req.text)) > (size_t)cfg->limits.max_text) {
        j->kind = JK_INVALID;
        j->text =
            cq_strprintf("the command text is longer than %d characters", cfg->limits.max_text);
        return;
    }
    if (w_args_tokenize(j->req.text, cfg->limits.max_args, cfg->limits.max_arg_len, &j->argv,
                        &err) != CQ_OK) {
        j->kind = JK_INVALID;
        j->text = strdup(err.msg);
        return;
    }
    if (w_approval_decide(j)) return; /* approve / deny / confirm (approval.c) */
    if (w_explain_decide(j)) return;  /* explain COMMAND ARGS (explain.c) */
    if (w_policy_is_builtin(word)) {
        j->kind = JK_BUILTIN;
        w_policy_check(cfg, j->person, j->channel, word, NULL, &j->dec);
        j->status = "ok";
        if (strcmp(word, "help") == 0) {
            char *topic = join_words(&j->argv, 0);
            j->text = topic ? w_builtin_help(cfg, j->person, j->channel, topic) : NULL;
            free(topic);
        } else if (strcmp(word, "whoami") == 0) {
            j->text = w_identity_whoami(j); /* with where each fact came from */
        } else if (strcmp(word, "cancel") == 0) {
            /* The tracker checks who may cancel (requester or cancel_roles). */
            if (j->argv.n != 1) {
                j->status = "invalid";
                j->text = strdup("usage: cancel REQUEST_ID (`pipelines` lists them)");
            } else {
                j->pl_builtin = PB_CANCEL;
                j->text = strdup("");
            }
        } else {
            j->pl_builtin = PB_LIST;
            j->text = strdup("");
        }
        return;
    }
    if (w_locks_decide(j)) return; /* locks / lock / unlock (locks.c) */
    if (cq_is_policed_builtin_name(word)) {
        w_subs_decide(j);
        return;
    }
    j->cmd = w_args_resolve(cfg, word, &j->argv, &used);
    j->input = w_args_rest(j->req.text, used);
    if (!j->cmd) {
        j->kind = JK_UNKNOWN;
        if (family_word(cfg, word)) {
            char *list = w_builtin_help(cfg, j->person, j->channel, word);
            j->text = list ? cq_strprintf("`%s` needs a sub-command:\n%s", word, list) : NULL;
            free(list);
        } else {
            j->text = w_builtin_unknown(cfg, word);
        }
        return;
    }
    if (!w_policy_may_run(cfg, j->person, j->channel, j->cmd->name)) {
        /* Not theirs here whatever the arguments: say so before judging arguments. */
        j->kind = JK_DENIED;
        j->status = "denied";
        w_policy_check(cfg, j->person, j->channel, j->cmd->name, NULL, &j->dec);
        j->text = strdup(j->dec.reason);
        return;
    }
    if (w_args_bind(j->cmd, &j->argv, used, cfg->limits.max_arg_len, &j->args, &err) != CQ_OK) {
        j->kind = JK_INVALID;
        w_args_usage(j->cmd, usage, sizeof(usage));
        j->text = cq_strprintf("%s\n%s", err.msg, usage);
        return;
    }
    w_policy_check(cfg, j->person, j->channel, j->cmd->name, &j->args, &j->dec);
    if (!j->dec.allowed) {
        j->kind = JK_DENIED;
        j->status = "denied";
        j->text = strdup(j->dec.reason);
        return;
    }
    j->kind = JK_ACTION;
    j->status = NULL;
}
