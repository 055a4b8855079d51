/* text_fetch: a request whose text is not in its envelope (text_source "webex": a Webex
 * webhook carries ids only) gets its text here, before the worker decides: GET
 * {webex.api_base}/messages/{reply.message_id} with the bot token, the bot's own name cut
 * from the front (webex.bot_name: a group message starts with the mention), then split into
 * command and text like the ingress does. The ingress answers Webex without this call, so
 * Webex's timeout never depends on it; a failure becomes the request's final answer
 * ("could not read the message"), never a silent drop (docs/platforms.md). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"
#include "service_int.h"
#include "strutil.h"

#define FETCH_TIMEOUT_MS 10000

struct fetch {
    struct job *j;
    void (*then)(struct job *);
};

bool w_text_pending(const struct job *j) {
    return j->req.text_source && strcmp(j->req.text_source, "webex") == 0;
}

static void count(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
    cq_metric_inc("chatops_worker_text_fetch_total",
                  "Message texts read from the platform before deciding, by outcome", labels);
}

/* Splits the message text into req.command / req.text (first word, the rest; "help" when
 * empty), after cutting the bot's name from the front. false when out of memory. */
static bool set_text(struct job *j, const char *text) {
    const char *bot = j->cfg->webex.bot_name;
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    size_t bl = bot ? strlen(bot) : 0;
    if (bl && strncasecmp(s, bot, bl) == 0 && (s[bl] == '\0' || isspace((unsigned char)s[bl])))
        s += bl;
    while (isspace((unsigned char)*s))
        s++;
    size_t w = 0;
    while (s[w] && !isspace((unsigned char)s[w]))
        w++;
    const char *r = s + w;
    while (isspace((unsigned char)*r))
        r++;
    size_t rl = strlen(r);
    while (rl && isspace((unsigned char)r[rl - 1]))
        rl--;
    char *cmd = w ? strndup(s, w) : strdup("help"), *rest = strndup(r, rl);
    if (!cmd || !rest) {
        free(cmd);
        free(rest);
        return false;
    }
    free(j->req.command);
    free(j->req.text);
    j->req.command = cmd;
    j->req.text = rest;
    return true;
}

/* Decides on what was read; on a failure, the decision becomes a failed final with why. */
static void decide(struct fetch *f, char *why) {
    struct job *j = f->j;
    w_decide(j);
    if (why) {
        j->kind = JK_INVALID;
        j->status = "failed";
        free(j->text);
        j->text = why;
    }
    f->then(j);
}

static void on_message(void *opaque, const struct cq_http_response *resp) {
    struct fetch *f = opaque;
    struct job *j = f->j;
    char *why = NULL;
    cJSON *body = NULL;
    if (w_job_gone(j)) {
        w_job_set_state(j, JS_ABANDONED);
        goto out;
    }
    if (resp->rc != CQ_OK || resp->status != 200) {
        count(resp->rc == CQ_OK ? "refused" : "unreachable");
        char st[32];
        snprintf(st, sizeof(st), "HTTP %ld", resp->status);
        why = cq_strprintf("could not read the Webex message to run it (%s); it was NOT run, "
                           "please send it again (req %s)",
                           resp->rc == CQ_OK ? st : resp->errmsg, j->req.id);
        cq_warn(j->req.id, "webex message text: %s", resp->rc == CQ_OK ? st : resp->errmsg);
    } else {
        body = cJSON_ParseWithLength(resp->body, resp->body_len);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "text");
        if (!cJSON_IsString(t)) {
            count("malformed");
            why = cq_strprintf("the Webex message has no readable text; it was NOT run (req %s)",
                               j->req.id);
        } else if (!set_text(j, t->valuestring)) {
            w_job_abandon(j, "out of memory");
            goto out;
        } else {
            count("ok");
        }
    }
    decide(f, why);
out:
    cJSON_Delete(body);
    free(f);
    w_job_op_end(j);
}

void w_text_fetch(struct job *j, void (*then)(struct job *)) {
    const struct cq_config *cfg = j->cfg;
    struct cq_err err = {0};
    struct fetch *f = calloc(1, sizeof(*f));
    char *id = j->req.reply.message_id
                   ? cq_url_escape(j->req.reply.message_id, strlen(j->req.reply.message_id))
                   : NULL;
    char *url = NULL, *auth = NULL;
    if (!f) {
        free(id);
        w_job_abandon(j, "out of memory");
        return;
    }
    f->j = j;
    f->then = then;
    if (!id || !cfg->webex.bot_token.value) {
        count("unconfigured");
        free(id);
        decide(f, cq_strprintf("the Webex message cannot be read: %s; it was NOT run (req %s)",
                               !id ? "no message id" : "webex.bot_token is not configured",
                               j->req.id));
        free(f);
        return;
    }
    url = cq_strprintf("%s/messages/%s", cfg->webex.api_base, id);
    auth = cq_strprintf("Authorization: Bearer %s", cfg->webex.bot_token.value);
    free(id);
    const char *hdrs[] = {auth, "Accept: application/json", NULL};
    struct cq_http_request req = {
        .method = "GET", .url = url, .headers = hdrs, .timeout_ms = FETCH_TIMEOUT_MS};
    w_job_op_begin(j);
    if (!url || !auth || cq_httpc_request(j->w->httpc, &req, on_message, f, &err) != CQ_OK) {
        j->ops--;
        count("unreachable");
        decide(f, cq_strprintf("could not read the Webex message to run it (%s); it was NOT run "
                               "(req %s)",
                               url && auth ? err.msg : "out of memory", j->req.id));
        free(f);
    }
    free(url);
    free(auth);
}
