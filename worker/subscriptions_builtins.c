/* subscriptions_builtins: the chat built-ins subscribe / unsubscribe / subscriptions
 * (issue 15). Unlike help or whoami they are under the policy like any configured command (a
 * rule must name them): w_subs_decide decides, w_subs_builtin runs them against Redis (keys in
 * subscriptions.h) once the request's run-once claim is held, and answers with one line. */
#include "service_int.h"
#include "subscriptions.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strutil.h"

/* sub(hash, set; name, json, max, member): the channel's count, or -1 when it is full */
static const char SUB_LUA[] =
    "local n = redis.call('HLEN', KEYS[1])\n"
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and n >= tonumber(ARGV[3]) then\n"
    "  return -1\n"
    "end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('SADD', KEYS[2], ARGV[4])\n"
    "return redis.call('HLEN', KEYS[1])\n";

/* unsub(hash, set; name, member): 1 when it was there */
static const char UNSUB_LUA[] = "local r = redis.call('HDEL', KEYS[1], ARGV[1])\n"
                                "if redis.call('HLEN', KEYS[1]) == 0 then\n"
                                "  redis.call('SREM', KEYS[2], ARGV[2])\n"
                                "end\n"
                                "return r\n";

void w_subs_decide(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    const char *word = j->req.command;
    if (!cfg->events.enabled) {
        j->kind = JK_INVALID;
        j->status = "invalid";
        j->text = cq_strprintf("`%s`: GitLab event subscriptions are not enabled here "
                               "(events.enabled in the chatops config)",
                               word);
        return;
    }
    w_policy_check(cfg, j->person, j->channel, word, NULL, &j->dec);
    if (!j->dec.allowed) {
        j->kind = JK_DENIED;
        j->status = "denied";
        j->text = strdup(j->dec.reason);
        return;
    }
    j->kind = JK_BUILTIN;
    j->status = "ok";
    j->pl_builtin = PB_SUBS;
    j->text = strdup("");
}

struct keys {
    char hash[600], set[300], member[300];
};

static bool keys_of(const struct job *j, struct keys *k) {
    const char *p = j->cfg->redis.prefix ? j->cfg->redis.prefix : "";
    if (!j->req.channel_id || !*j->req.channel_id) return false;
    snprintf(k->member, sizeof k->member, "%s|%s", j->req.platform, j->req.channel_id);
    snprintf(k->hash, sizeof k->hash, "%sev:chat:%s", p, k->member);
    snprintf(k->set, sizeof k->set, "%sev:chats", p);
    return true;
}

static void finish(struct job *j, const char *status, char *text) {
    if (w_job_gone(j))
        w_job_abandon(j, "stopped during a subscription built-in");
    else
        w_finish_with(j, status, text);
    w_job_op_end(j);
}

static void on_sub(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (err || !reply || reply->type != REDIS_REPLY_INTEGER) {
        finish(j, "failed",
               cq_strprintf("the subscription was not saved: %s",
                            err ? err->msg : "unexpected answer from redis"));
        return;
    }
    if (reply->integer < 0) {
        finish(j, "invalid",
               cq_strprintf("this channel already has %d subscriptions "
                            "(events.max_chat_subscriptions): `unsubscribe` one first",
                            j->cfg->events.max_chat_subscriptions));
        return;
    }
    char *rest = NULL;
    size_t len = 0;
    for (size_t i = 1; i < j->argv.n; i++)
        len += strlen(j->argv.v[i]) + 1;
    rest = calloc(1, len + 1);
    for (size_t i = 1; rest && i < j->argv.n; i++) {
        strcat(rest, " ");
        strcat(rest, j->argv.v[i]);
    }
    finish(j, "ok",
           cq_strprintf("Subscribed this channel to GitLab events of `%s`%s%s%s. `subscriptions` "
                        "lists them; `unsubscribe %s` stops it.",
                        j->argv.v[0], rest && *rest ? " (" : "", rest && *rest ? rest + 1 : "",
                        rest && *rest ? ")" : "", j->argv.v[0]));
    free(rest);
}

static void on_unsub(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (err || !reply || reply->type != REDIS_REPLY_INTEGER) {
        finish(j, "failed",
               cq_strprintf("the subscription was not removed: %s",
                            err ? err->msg : "unexpected answer from redis"));
        return;
    }
    if (reply->integer == 0)
        finish(j, "invalid",
               cq_strprintf("this channel has no subscription `%s` (`subscriptions` lists them)",
                            j->argv.v[0]));
    else
        finish(j, "ok", cq_strprintf("Unsubscribed this channel from `%s`.", j->argv.v[0]));
}

static void add_list(char **out, const char *line) {
    char *n = cq_strprintf("%s\n• %s", *out ? *out : "", line);
    free(*out);
    *out = n;
}

static void on_list(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    const struct cq_config *cfg = j->cfg;
    char *list = NULL;
    size_t n = 0;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY) {
        finish(j, "failed",
               cq_strprintf("subscriptions unavailable: %s",
                            err ? err->msg : "unexpected answer from redis"));
        return;
    }
    const struct cq_channel *here = j->channel;
    for (size_t i = 0; here && i < cfg->n_subscriptions; i++) {
        const struct cq_subscription *s = &cfg->subscriptions[i];
        for (size_t k = 0; s->channels && s->channels[k]; k++)
            if (strcmp(s->channels[k], here->name) == 0) {
                char line[300];
                snprintf(line, sizeof line, "%s (from the config)", s->name);
                add_list(&list, line);
                n++;
                break;
            }
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *name = reply->element[i], *js = reply->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || js->type != REDIS_REPLY_STRING) continue;
        cJSON *o = cJSON_Parse(js->str);
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(o, "by");
        char line[600];
        snprintf(line, sizeof line, "`%.200s`%s%.100s", name->str, cJSON_IsString(by) ? " by " : "",
                 cJSON_IsString(by) ? by->valuestring : "");
        cJSON_Delete(o);
        add_list(&list, line);
        n++;
    }
    char *text = n ? cq_strprintf("GitLab event subscriptions of this channel:%s", list)
                   : strdup("This channel has no GitLab event subscriptions (`subscribe "
                            "PROJECT [KIND ...] [STATUS ...] [ref=GLOB] [env=GLOB]`).");
    free(list);
    finish(j, "ok", text);
}

void w_subs_builtin(struct job *j) {
    struct w_worker *w = j->w;
    struct keys k;
    const char *word = j->req.command;
    enum cq_rc rc;
    char why[400] = "";
    w_job_op_begin(j);
    if (!keys_of(j, &k)) {
        finish(j, "invalid", cq_strprintf("`%s` needs a channel", word));
        return;
    }
    if (strcmp(word, "subscribe") == 0) {
        char *json = w_subs_parse((const char *const *)j->argv.v, j->argv.n,
                                  j->person ? j->person->name : j->req.user_name, why, sizeof why);
        if (!json) {
            finish(j, "invalid", strdup(why));
            return;
        }
        char max[16];
        snprintf(max, sizeof max, "%d", j->cfg->events.max_chat_subscriptions);
        const char *argv[] = {"EVAL",       SUB_LUA, "2", k.hash,  k.set,
                              j->argv.v[0], json,    max, k.member};
        rc = cq_redis_commandargv(w->redis, on_sub, j, 9, argv, NULL);
        cJSON_free(json);
    } else if (strcmp(word, "unsubscribe") == 0) {
        if (j->argv.n != 1) {
            finish(j, "invalid", strdup("usage: unsubscribe PROJECT (as `subscriptions` lists)"));
            return;
        }
        const char *argv[] = {"EVAL", UNSUB_LUA, "2", k.hash, k.set, j->argv.v[0], k.member};
        rc = cq_redis_commandargv(w->redis, on_unsub, j, 7, argv, NULL);
    } else {
        const char *argv[] = {"HGETALL", k.hash};
        rc = cq_redis_commandargv(w->redis, on_list, j, 2, argv, NULL);
    }
    if (rc != CQ_OK) finish(j, "failed", strdup("redis is unavailable; try again"));
}
