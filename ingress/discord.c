/* discord: the interactions endpoint in. X-Signature-Ed25519 over X-Signature-Timestamp + raw
 * body is checked first with the application's public key (OpenSSL Ed25519; Discord sends
 * bad signatures on purpose and disables an endpoint that accepts one: 401). PING is
 * answered PONG; an application command becomes a request whose text is the command name
 * and its options flattened (sub-commands as words, options in the configured argument order,
 * --flag for flag arguments), answered with a deferred response (type 5) once Kafka
 * confirmed it (platform.h). Pure, like slack.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "strutil.h"

#define MAX_LEAVES 32        /* option values taken from one command */
#define MAX_DEPTH 3          /* group > sub-command > options */
#define TOKEN_LIFE_MS 900000 /* an interaction token takes follow-ups for 15 minutes */

static char *dup_or_null(const char *s) {
    return s && *s ? strdup(s) : NULL;
}

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jobj(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsObject(v) ? v : NULL;
}

static const char *verify(const struct cq_config *cfg, const struct ing_headers *h,
                          const char *body, size_t len, time_t now) {
    const char *ts = h->discord_ts, *sig = h->discord_sig;
    char *end = NULL;
    if (!ts || !*ts || !sig || !*sig) return "missing signature headers";
    long long t = strtoll(ts, &end, 10);
    if (end == ts || *end || strlen(ts) > 12 || t <= 0) return "bad timestamp";
    long long skew = (long long)now - t;
    if (skew > cfg->discord.max_clock_skew_s || -skew > cfg->discord.max_clock_skew_s)
        return "stale timestamp";
    if (!cq_ed25519_verify_hex(cfg->discord.public_key, ts, body, len, sig)) return "bad signature";
    return NULL;
}

/* A growing text (bounded by the caller's max_text check later). */
struct buf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 128;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s) {
    put(b, s, strlen(s));
}

/* A value as one word for the worker's tokenizer: as is when plain, else double-quoted with
 * \" \\ \$ \` escaped. */
static void put_word(struct buf *b, const char *v) {
    bool plain = *v != '\0';
    for (const char *p = v; *p && plain; p++)
        plain = !strchr(" \t\r\n'\"\\$`", *p);
    puts_(b, " ");
    if (plain) {
        puts_(b, v);
        return;
    }
    puts_(b, "\"");
    for (const char *p = v; *p; p++) {
        if (strchr("\"\\$`", *p)) puts_(b, "\\");
        put(b, p, 1);
    }
    puts_(b, "\"");
}

struct leaf {
    const char *name;
    char value[64];  /* numbers and booleans printed here */
    const char *str; /* strings borrowed from the tree */
    bool used;
};

/* Walks data.options: sub-command groups (2) and sub-commands (1) add their name to the
 * command words, every other option is a leaf. false on a malformed or too deep tree. */
static bool walk(const cJSON *opts, int depth, struct buf *words, struct leaf *leaves, size_t *n) {
    const cJSON *o;
    if (!opts) return true;
    if (!cJSON_IsArray(opts) || depth > MAX_DEPTH) return false;
    cJSON_ArrayForEach(o, opts) {
        const char *name = jstr(o, "name");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
        if (!name || !*name || !cJSON_IsNumber(type)) return false;
        if (type->valueint == 1 || type->valueint == 2) {
            put_word(words, name);
            if (!walk(cJSON_GetObjectItemCaseSensitive(o, "options"), depth + 1, words, leaves, n))
                return false;
            continue;
        }
        if (*n >= MAX_LEAVES) return false;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        struct leaf *l = &leaves[(*n)++];
        l->name = name;
        if (cJSON_IsString(v))
            l->str = v->valuestring;
        else if (cJSON_IsBool(v))
            snprintf(l->value, sizeof(l->value), "%s", cJSON_IsTrue(v) ? "true" : "false");
        else if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble)
            snprintf(l->value, sizeof(l->value), "%lld", (long long)v->valuedouble);
        else if (cJSON_IsNumber(v))
            snprintf(l->value, sizeof(l->value), "%g", v->valuedouble);
        else
            return false;
    }
    return true;
}

static const char *leaf_value(const struct leaf *l) {
    return l->str ? l->str : l->value;
}

/* "lb weight blue 30": the command's words, then the options in the order of the configured
 * command's arguments (--flag value for a flag argument), then any others as given. */
static char *flatten(const struct cq_config *cfg, const cJSON *data, bool *malformed) {
    struct buf words = {0}, text = {0};
    struct leaf leaves[MAX_LEAVES];
    size_t n = 0;
    memset(leaves, 0, sizeof(leaves));
    *malformed = false;
    const char *name = jstr(data, "name");
    if (!name || !*name) {
        *malformed = true;
        return NULL;
    }
    puts_(&words, name);
    if (!walk(cJSON_GetObjectItemCaseSensitive(data, "options"), 0, &words, leaves, &n)) {
        *malformed = true;
        free(words.p);
        return NULL;
    }
    puts_(&text, words.oom ? "" : words.p);
    const struct cq_command *cmd = words.oom ? NULL : cq_config_command(cfg, words.p);
    for (size_t a = 0; cmd && a < cmd->n_args; a++) {
        const struct cq_arg_spec *spec = &cmd->args[a];
        for (size_t i = 0; i < n; i++) {
            if (leaves[i].used || strcmp(leaves[i].name, spec->name) != 0) continue;
            leaves[i].used = true;
            if (spec->flag) {
                puts_(&text, " --");
                puts_(&text, spec->flag);
            }
            put_word(&text, leaf_value(&leaves[i]));
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!leaves[i].used) put_word(&text, leaf_value(&leaves[i]));
    free(words.p);
    if (words.oom || text.oom) {
        free(text.p);
        return NULL;
    }
    return text.p;
}

static void command(const struct cq_config *cfg, const cJSON *root, time_t now,
                    struct ing_verdict *out) {
    struct cq_request *r = &out->req;
    const cJSON *data = jobj(root, "data"), *member = jobj(root, "member");
    const cJSON *user = member ? jobj(member, "user") : jobj(root, "user");
    const char *id = jstr(root, "id"), *token = jstr(root, "token");
    const char *app = jstr(root, "application_id"), *channel = jstr(root, "channel_id");
    const char *uid = jstr(user, "id"), *guild = jstr(root, "guild_id");
    bool malformed = false;
    char *text = NULL, when[32];
    if (!id || !*id || !token || !*token || !app || !*app || !uid || !*uid || !data) {
        ing_reject(out, 400, "malformed interaction",
                   "id, token, application_id, data or the user missing");
        return;
    }
    if (!(text = flatten(cfg, data, &malformed))) {
        ing_reject(out, malformed ? 400 : 500,
                   malformed ? "malformed interaction" : "out of memory",
                   malformed ? "data.name or data.options" : NULL);
        return;
    }
    if (!ing_set_command(cfg, text, r, out)) goto out;
    if (!ing_set_identity(r, "discord", id, out)) goto out;
    const char *base = cfg->discord.api_base ? cfg->discord.api_base : "";
    size_t ulen = strlen(base) + strlen(app) + strlen(token) + 16;
    r->reply.response_url = malloc(ulen);
    if (r->reply.response_url)
        snprintf(r->reply.response_url, ulen, "%s/webhooks/%s/%s", base, app, token);
    ing_rfc3339_ms((long long)now * 1000 + TOKEN_LIFE_MS, when);
    r->reply.expires_at = strdup(when);
    r->reply.app_id = strdup(app);
    r->reply.chat_id = dup_or_null(channel);
    r->reply.conversation_type = strdup(guild && *guild ? "group" : "direct");
    r->tenant = dup_or_null(guild);
    r->channel_id = dup_or_null(channel);
    r->user_id = strdup(uid);
    const char *nick = jstr(user, "global_name");
    r->user_name = dup_or_null(nick && *nick ? nick : jstr(user, "username"));
    if (!r->reply.response_url || !r->reply.expires_at || !r->reply.app_id || !r->user_id ||
        !r->reply.conversation_type) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    ing_finish(out);
out:
    free(text);
}

void ing_discord_interaction(const struct cq_config *cfg, const struct ing_headers *h,
                             const char *body, size_t len, time_t now, struct ing_verdict *out) {
    cJSON *root = NULL;
    memset(out, 0, sizeof(*out));
    if (!cfg->discord.public_key) {
        ing_reject(out, 404, "discord is not enabled", NULL);
        return;
    }
    const char *why = verify(cfg, h, body, len, now);
    if (why) {
        ing_reject(out, 401, why, NULL);
        out->public_reason = "invalid request signature";
        return;
    }
    if (cq_json_has_nul_escape(body, len)) {
        ing_reject(out, 400, "malformed JSON", "an escaped NUL (\\u0000) in a string");
        goto out;
    }
    root = cJSON_ParseWithLength(body, len);
    const cJSON *type =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "type") : NULL;
    if (!cJSON_IsNumber(type)) {
        ing_reject(out, 400, "malformed JSON", "no numeric type");
        goto out;
    }
    switch (type->valueint) {
    case 1: /* PING */
        ing_reply(out, 200, "application/json", strdup("{\"type\":1}"));
        break;
    case 2: /* APPLICATION_COMMAND */
        command(cfg, root, now, out);
        break;
    case 4: /* APPLICATION_COMMAND_AUTOCOMPLETE: no suggestions */
        ing_reply(out, 200, "application/json", strdup("{\"type\":8,\"data\":{\"choices\":[]}}"));
        break;
    default: /* components, modals: not ours; an ephemeral line says so */
        ing_reply(out, 200, "application/json",
                  strdup("{\"type\":4,\"data\":{\"content\":\"This interaction is not "
                         "supported.\",\"flags\":64}}"));
        if (out->kind == ING_REPLY) out->reason = "unsupported interaction";
        break;
    }
out:
    cJSON_Delete(root);
}
