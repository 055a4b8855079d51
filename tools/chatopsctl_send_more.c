/* chatopsctl send --platform dingtalk|mattermost|discord|webex: builds the request each of
 * these platforms sends to the ingress and signs it exactly as the platform does (DingTalk
 * timestamp + sign, Mattermost's per-team token, Discord's Ed25519 signature with the test
 * private key from CQ_DISCORD_TEST_PRIVATE_KEY, Webex's HMAC-SHA1 after creating the message
 * in the fake, since a Webex notification carries its id only). */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "chatopsctl.h"
#include "chatopsctl_send.h"
#include "crypto.h"
#include "httpc.h"
#include "strutil.h"

bool cq_ctl_more_platform(const char *p) {
    return p && (!strcmp(p, "dingtalk") || !strcmp(p, "mattermost") || !strcmp(p, "discord") ||
                 !strcmp(p, "webex"));
}

/* base minus a trailing suffix (new string). */
static char *cut(const char *url, const char *suffix) {
    size_t n = strlen(url), s = strlen(suffix);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= s && strncmp(url + n - s, suffix, s) == 0) n -= s;
    return strndup(url, n);
}

char *cq_ctl_more_sink(const struct cq_config *cfg, const char *platform) {
    if (!strcmp(platform, "discord") && cfg->discord.api_base)
        return cut(cfg->discord.api_base, "/api/v10");
    if (!strcmp(platform, "webex") && cfg->webex.api_base) return cut(cfg->webex.api_base, "/v1");
    /* dingtalk, mattermost: the session webhook / response_url is ours to pick; the notifier's
     * sinks (api_base) take them in the demo */
    if (!strcmp(platform, "mattermost") && cfg->mattermost.api_base)
        return cut(cfg->mattermost.api_base, "");
    if (!strcmp(platform, "dingtalk") && cfg->dingtalk.api_base)
        return cut(cfg->dingtalk.api_base, "");
    return NULL;
}

static void random_hex(char *out, size_t nbytes) {
    unsigned char r[16];
    if (nbytes > sizeof r) nbytes = sizeof r;
    if (cq_random_bytes(r, nbytes) != CQ_OK) memset(r, 0x5a, nbytes);
    cq_hex(r, nbytes, out);
}

/* "/ops deploy web" -> "deploy web": these platforms have no slash command of ours in it. */
static const char *strip_slash(const char *t) {
    while (*t == ' ')
        t++;
    if (*t == '/') {
        t += strcspn(t, " ");
        while (*t == ' ')
            t++;
    }
    return t;
}

static char *print(cJSON *root) {
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

static int dingtalk(const struct cq_config *cfg, const char *text, const struct target *t,
                    const char *ingress, const char *sink, struct outgoing *g) {
    char id[33], ts[32], exp[32];
    if (!cfg->dingtalk.app_secret.value) {
        fprintf(stderr, "chatopsctl: send: dingtalk is not enabled in %s\n", cfg->path);
        return 1;
    }
    random_hex(id, 16);
    long long now_ms = (long long)time(NULL) * 1000;
    snprintf(ts, sizeof ts, "%lld", now_ms);
    snprintf(exp, sizeof exp, "%lld", now_ms + 90 * 60 * 1000); /* a session lasts ~1.5 h */
    g->match = cq_strprintf("/robot/sendBySession?session=%s", id);
    char *hook = g->match ? cq_strprintf("%s%s", sink, g->match) : NULL;
    char *content = cq_strprintf(" %s", strip_slash(text));
    char *msgid = cq_strprintf("msg%s", id);
    cJSON *root = cJSON_CreateObject(), *tx = cJSON_CreateObject();
    if (!hook || !content || !msgid || !root || !tx) {
        cJSON_Delete(root);
        cJSON_Delete(tx);
        goto out;
    }
    cJSON_AddStringToObject(root, "conversationId", t->channel_id);
    cJSON_AddStringToObject(root, "chatbotCorpId", "dingdemo");
    cJSON_AddStringToObject(root, "chatbotUserId", "$:LWCP_v1:$bot");
    cJSON_AddStringToObject(root, "msgId", msgid);
    cJSON_AddStringToObject(root, "senderNick", t->user_name);
    cJSON_AddBoolToObject(root, "isAdmin", false);
    cJSON_AddStringToObject(root, "senderStaffId", t->user_id);
    cJSON_AddRawToObject(root, "sessionWebhookExpiredTime", exp);
    cJSON_AddRawToObject(root, "createAt", ts);
    cJSON_AddStringToObject(root, "senderCorpId", "dingdemo");
    cJSON_AddStringToObject(root, "conversationType", "2");
    cJSON_AddStringToObject(root, "senderId", t->user_id);
    cJSON_AddStringToObject(root, "conversationTitle", t->channel_name);
    cJSON_AddBoolToObject(root, "isInAtList", true);
    cJSON_AddStringToObject(root, "sessionWebhook", hook);
    cJSON_AddStringToObject(tx, "content", content);
    cJSON_AddItemToObject(root, "text", tx);
    cJSON_AddStringToObject(root, "robotCode", "dingdemo");
    cJSON_AddStringToObject(root, "msgtype", "text");
    g->body = print(root);
    char *sign = cq_dingtalk_sign(cfg->dingtalk.app_secret.value, ts);
    g->url = cq_strprintf("%s%s", ingress, cfg->ingress.dingtalk_events_path);
    g->headers[0] = strdup("Content-Type: application/json; charset=utf-8");
    g->headers[1] = cq_strprintf("timestamp: %s", ts);
    g->headers[2] = sign ? cq_strprintf("sign: %s", sign) : NULL;
    free(sign);
out:
    free(hook);
    free(content);
    free(msgid);
    return g->body && g->url && g->headers[0] && g->headers[1] && g->headers[2] ? 0 : 1;
}

static int mattermost(const struct cq_config *cfg, const char *text, const struct target *t,
                      const char *ingress, const char *sink, struct outgoing *g) {
    char id[33];
    if (cfg->mattermost.n_tokens == 0 || !cfg->mattermost.tokens[0].secret.value) {
        fprintf(stderr, "chatopsctl: send: mattermost is not enabled in %s\n", cfg->path);
        return 1;
    }
    random_hex(id, 16);
    g->match = cq_strprintf("/hooks/commands/%s", id);
    char *resp = g->match ? cq_strprintf("%s%s", sink, g->match) : NULL;
    const char *fields[][2] = {
        {"channel_id", t->channel_id},
        {"channel_name", t->channel_name},
        {"command", "/ops"},
        {"response_url", resp ? resp : ""},
        {"team_domain", cfg->mattermost.tokens[0].name},
        {"team_id", cfg->mattermost.tokens[0].name},
        {"text", strip_slash(text)},
        {"token", cfg->mattermost.tokens[0].secret.value},
        {"trigger_id", id},
        {"user_id", t->user_id},
        {"user_name", t->user_name},
    };
    size_t n = 0;
    char *form = NULL;
    for (size_t i = 0; resp && i < sizeof fields / sizeof fields[0]; i++) {
        char *e = cq_url_escape(fields[i][1], strlen(fields[i][1]));
        char *next =
            e ? cq_strprintf("%s%s%s=%s", form ? form : "", i ? "&" : "", fields[i][0], e) : NULL;
        free(e);
        free(form);
        form = next;
        if (!form) break;
    }
    free(resp);
    if (!form) return 1;
    n = strlen(form);
    g->body = form;
    g->body_len = n;
    g->url = cq_strprintf("%s%s", ingress, cfg->ingress.mattermost_commands_path);
    g->headers[0] = strdup("Content-Type: application/x-www-form-urlencoded");
    g->headers[1] = strdup("User-Agent: mattermost-chatopsctl");
    return g->url && g->headers[0] && g->headers[1] ? 0 : 1;
}

/* Discord: the typed options of "lb weight blue 30" as Discord sends them, from the
 * configured command (sub-command words, positional and --flag arguments, int types). */
static cJSON *discord_data(const struct cq_config *cfg, const char *text) {
    const char *words[64];
    size_t n = 0;
    char *copy = strdup(text), *save = NULL;
    cJSON *data = cJSON_CreateObject();
    if (!copy || !data) goto fail;
    for (char *w = strtok_r(copy, " ", &save); w && n < 64; w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    if (n == 0) words[n++] = "help";
    /* the longest configured command name that the words start with */
    const struct cq_command *cmd = NULL;
    size_t used = 1;
    char name[512] = "";
    for (size_t k = 1; k <= n && k <= 4; k++) {
        size_t off = strlen(name);
        snprintf(name + off, sizeof name - off, "%s%s", k > 1 ? " " : "", words[k - 1]);
        const struct cq_command *c = cq_config_command(cfg, name);
        if (c) cmd = c, used = k;
    }
    cJSON_AddStringToObject(data, "id", "100000000000000001");
    cJSON_AddStringToObject(data, "name", words[0]);
    cJSON_AddNumberToObject(data, "type", 1);
    cJSON *opts = cJSON_AddArrayToObject(data, "options");
    for (size_t k = 1; k < used && opts; k++) { /* sub-commands */
        cJSON *sub = cJSON_CreateObject();
        cJSON_AddNumberToObject(sub, "type", 1);
        cJSON_AddStringToObject(sub, "name", words[k]);
        cJSON_AddItemToArray(opts, sub);
        opts = cJSON_AddArrayToObject(sub, "options");
    }
    size_t pos = 0;
    for (size_t k = used; k < n && opts; k++) {
        const struct cq_arg_spec *spec = NULL;
        const char *value = words[k];
        if (cmd && !strncmp(words[k], "--", 2)) {
            for (size_t a = 0; a < cmd->n_args && !spec; a++)
                if (cmd->args[a].flag && !strcmp(cmd->args[a].flag, words[k] + 2))
                    spec = &cmd->args[a];
            if (spec && k + 1 < n) value = words[++k];
        }
        while (cmd && !spec && pos < cmd->n_args) {
            if (!cmd->args[pos].flag) spec = &cmd->args[pos];
            pos++;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", spec ? spec->name : "text");
        char *end = NULL;
        (void)strtoll(value, &end, 10);
        bool number = end != value && *end == '\0';
        if (spec && spec->type == CQ_ARG_INT && number) {
            cJSON_AddNumberToObject(o, "type", 4);
            cJSON_AddRawToObject(o, "value", value);
        } else {
            cJSON_AddNumberToObject(o, "type", 3);
            cJSON_AddStringToObject(o, "value", value);
        }
        cJSON_AddItemToArray(opts, o);
    }
    free(copy);
    return data;
fail:
    free(copy);
    cJSON_Delete(data);
    return NULL;
}

static int discord(const struct cq_config *cfg, const char *text, const struct target *t,
                   const char *ingress, struct outgoing *g) {
    const char *seed = getenv("CQ_DISCORD_TEST_PRIVATE_KEY");
    char pub[65], sig[129], ts[32], id[33], token[33];
    if (!cfg->discord.public_key || !cfg->discord.application_id) {
        fprintf(stderr, "chatopsctl: send: discord is not enabled in %s\n", cfg->path);
        return 1;
    }
    if (!seed || cq_ed25519_public_hex(seed, pub) != CQ_OK) {
        fprintf(stderr, "chatopsctl: send: set CQ_DISCORD_TEST_PRIVATE_KEY to the 64 hex digits "
                        "of the test application's Ed25519 private key\n");
        return 1;
    }
    if (strcasecmp(pub, cfg->discord.public_key) != 0) {
        fprintf(stderr,
                "chatopsctl: send: CQ_DISCORD_TEST_PRIVATE_KEY is not the key of "
                "discord.public_key in %s\n",
                cfg->path);
        return 1;
    }
    random_hex(id, 8);
    random_hex(token, 16);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    g->match = cq_strprintf("/webhooks/%s/%s", cfg->discord.application_id, token);
    cJSON *root = cJSON_CreateObject(), *data = discord_data(cfg, strip_slash(text));
    cJSON *member = cJSON_CreateObject(), *user = cJSON_CreateObject();
    char *iid = cq_strprintf("1%s", id);
    if (!root || !data || !member || !user || !g->match || !iid) {
        cJSON_Delete(root);
        cJSON_Delete(data);
        cJSON_Delete(member);
        cJSON_Delete(user);
        free(iid);
        return 1;
    }
    cJSON_AddNumberToObject(root, "type", 2);
    cJSON_AddStringToObject(root, "id", iid);
    cJSON_AddStringToObject(root, "application_id", cfg->discord.application_id);
    cJSON_AddStringToObject(root, "token", token);
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "guild_id", "200000000000000001");
    cJSON_AddStringToObject(root, "channel_id", t->channel_id);
    cJSON_AddStringToObject(user, "id", t->user_id);
    cJSON_AddStringToObject(user, "username", t->user_name);
    cJSON_AddItemToObject(member, "user", user);
    cJSON_AddItemToObject(root, "member", member);
    cJSON_AddItemToObject(root, "data", data);
    free(iid);
    g->body = print(root);
    if (!g->body || cq_ed25519_sign_hex(seed, ts, g->body, strlen(g->body), sig) != CQ_OK) return 1;
    g->url = cq_strprintf("%s%s", ingress, cfg->ingress.discord_interactions_path);
    g->headers[0] = strdup("Content-Type: application/json");
    g->headers[1] = cq_strprintf("X-Signature-Ed25519: %s", sig);
    g->headers[2] = cq_strprintf("X-Signature-Timestamp: %s", ts);
    g->headers[3] = strdup("User-Agent: Discord-Interactions/1.0 (+https://discord.com)");
    return g->url && g->headers[0] && g->headers[1] && g->headers[2] && g->headers[3] ? 0 : 1;
}

/* Webex: the user's message is created in the fake first (POST /v1/messages), then the
 * webhook names its id, like Webex does. */
static int webex(const struct cq_config *cfg, const char *text, const struct target *t,
                 const char *ingress, const char *sink, struct outgoing *g) {
    char sig[41], wh[17];
    struct cq_ctl_http r = {0};
    int rc = 1;
    if (!cfg->webex.webhook_secret.value) {
        fprintf(stderr, "chatopsctl: send: webex is not enabled in %s\n", cfg->path);
        return 1;
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "roomId", t->channel_id);
    char *line = cq_strprintf("%s%s%s", cfg->webex.bot_name ? cfg->webex.bot_name : "",
                              cfg->webex.bot_name ? " " : "", strip_slash(text));
    if (line) cJSON_AddStringToObject(m, "text", line);
    cJSON_AddStringToObject(m, "personId", t->user_id);
    cJSON_AddStringToObject(m, "personEmail", t->user_name);
    free(line);
    char *mbody = print(m);
    char *url = cq_strprintf("%s/v1/messages", sink);
    char *auth =
        cq_strprintf("Authorization: Bearer %s",
                     cfg->webex.bot_token.value ? cfg->webex.bot_token.value : "demo-user-token");
    const char *hdrs[] = {"Content-Type: application/json", auth, NULL};
    if (!mbody || !url || !auth ||
        cq_ctl_http_do("POST", url, hdrs, mbody, strlen(mbody), 5000, &r) != 0 || r.status != 200) {
        fprintf(stderr,
                "chatopsctl: send: could not create the message in the Webex fake %s "
                "(HTTP %ld) %s\n",
                url ? url : "", r.status, r.err);
        goto out;
    }
    cJSON *created = cJSON_Parse(r.body);
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(created, "id");
    if (cJSON_IsString(mid)) g->match = strdup(mid->valuestring);
    cJSON_Delete(created);
    if (!g->match) {
        fprintf(stderr, "chatopsctl: send: the Webex fake created no message id\n");
        goto out;
    }
    random_hex(wh, 8);
    cJSON *root = cJSON_CreateObject(), *data = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", wh);
    cJSON_AddStringToObject(root, "name", "chatops");
    cJSON_AddStringToObject(root, "targetUrl", ingress);
    cJSON_AddStringToObject(root, "resource", "messages");
    cJSON_AddStringToObject(root, "event", "created");
    cJSON_AddStringToObject(root, "orgId", "org-demo");
    cJSON_AddStringToObject(data, "id", g->match);
    cJSON_AddStringToObject(data, "roomId", t->channel_id);
    cJSON_AddStringToObject(data, "roomType", "group");
    cJSON_AddStringToObject(data, "personId", t->user_id);
    cJSON_AddStringToObject(data, "personEmail", t->user_name);
    cJSON_AddItemToObject(root, "data", data);
    g->body = print(root);
    if (!g->body ||
        cq_hmac_sha1_hex(cfg->webex.webhook_secret.value, g->body, strlen(g->body), sig) != CQ_OK)
        goto out;
    g->url = cq_strprintf("%s%s", ingress, cfg->ingress.webex_events_path);
    g->headers[0] = strdup("Content-Type: application/json");
    g->headers[1] = cq_strprintf("X-Spark-Signature: %s", sig);
    rc = g->url && g->headers[0] && g->headers[1] ? 0 : 1;
out:
    free(mbody);
    free(url);
    free(auth);
    free(r.body);
    return rc;
}

int cq_ctl_build_more(const struct cq_config *cfg, const char *text, const struct target *t,
                      const char *ingress, const char *sink, struct outgoing *g) {
    int rc = !strcmp(t->platform, "dingtalk")     ? dingtalk(cfg, text, t, ingress, sink, g)
             : !strcmp(t->platform, "mattermost") ? mattermost(cfg, text, t, ingress, sink, g)
             : !strcmp(t->platform, "discord")    ? discord(cfg, text, t, ingress, g)
                                                  : webex(cfg, text, t, ingress, sink, g);
    if (rc == 0 && !g->body_len && g->body) g->body_len = strlen(g->body);
    return rc;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool cq_ctl_more_show(const char *body) {
    cJSON *m = cJSON_Parse(body);
    const char *text = jstr(m, "markdown");
    if (!text) text = jstr(m, "content");
    if (!text) text = jstr(m, "text");
    if (!text) text = jstr(m, "message");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(m, "markdown");
    if (!text && cJSON_IsObject(md)) text = jstr(md, "text"); /* DingTalk markdown */
    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(m, "text");
    if (!text && cJSON_IsObject(tx)) text = jstr(tx, "content"); /* DingTalk text */
    const char *shown = text ? text : body;
    for (const char *p = shown; *p;) {
        size_t n = strcspn(p, "\n");
        printf("  %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n') p++;
    }
    bool final = !(strstr(shown, "Accepted") || strstr(shown, "In progress") ||
                   strstr(shown, "accepted") || strstr(shown, "in progress"));
    cJSON_Delete(m);
    return final;
}
