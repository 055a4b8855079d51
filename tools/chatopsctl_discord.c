/* chatopsctl discord register: creates the Discord application commands from the config's
 * commands and arguments, in the shape the ingress flattens back (ingress/discord.c): the
 * first word of a command's name is the application command, a second word a sub-command
 * (type 1), a third a sub-command group (type 2) around it; each argument an option named
 * like it: int (type 4, min/max), enum (string with choices), string (type 3); required
 * options first (Discord's rule). One PUT {discord.api_base}/applications/{id}/commands with
 * the bot token replaces the whole set (bulk overwrite); --dry-run prints the JSON instead. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "builtin_names.h"
#include "chatopsctl.h"
#include "strutil.h"

#define MAX_WORDS 3
#define DESC_MAX 100

/* Discord wants a description of 1..100 characters (cut on a byte boundary that is ASCII
 * here: a non-ASCII description is cut before its first non-ASCII byte past 97). */
static void add_desc(cJSON *o, const char *d, const char *fallback) {
    char buf[DESC_MAX + 1];
    const char *s = d && *d ? d : fallback;
    size_t n = strlen(s);
    if (n > DESC_MAX) {
        n = DESC_MAX - 3;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        snprintf(buf, sizeof buf, "%.*s...", (int)n, s);
        s = buf;
    }
    cJSON_AddStringToObject(o, "description", s);
}

static cJSON *find_named(cJSON *arr, const char *name) {
    cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return e;
    }
    return NULL;
}

static cJSON *child(cJSON *parent, const char *name, int type, const char *desc) {
    cJSON *opts = cJSON_GetObjectItemCaseSensitive(parent, "options");
    if (!opts) opts = cJSON_AddArrayToObject(parent, "options");
    cJSON *c = find_named(opts, name);
    if (c) return c;
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddNumberToObject(c, "type", type);
    add_desc(c, desc, name);
    cJSON_AddItemToArray(opts, c);
    return c;
}

/* The command's arguments as options on o, required ones first. */
static void add_args(cJSON *o, const struct cq_command *cmd) {
    cJSON *opts = cJSON_AddArrayToObject(o, "options");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t a = 0; a < cmd->n_args; a++) {
            const struct cq_arg_spec *s = &cmd->args[a];
            bool required = s->required && !s->default_value;
            if (required != (pass == 0)) continue;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", s->name);
            cJSON_AddNumberToObject(x, "type", s->type == CQ_ARG_INT ? 4 : 3);
            char d[DESC_MAX + 1];
            snprintf(d, sizeof d, "%s%s%s", s->name, s->flag ? " (--" : "", s->flag ? s->flag : "");
            if (s->flag) strncat(d, ")", sizeof d - strlen(d) - 1);
            add_desc(x, d, s->name);
            cJSON_AddBoolToObject(x, "required", required);
            if (s->type == CQ_ARG_INT && s->min != LLONG_MIN)
                cJSON_AddNumberToObject(x, "min_value", (double)s->min);
            if (s->type == CQ_ARG_INT && s->max != LLONG_MAX)
                cJSON_AddNumberToObject(x, "max_value", (double)s->max);
            if (s->type == CQ_ARG_ENUM && s->enum_values) {
                cJSON *ch = cJSON_AddArrayToObject(x, "choices");
                for (size_t k = 0; s->enum_values[k] && k < 25; k++) {
                    cJSON *c = cJSON_CreateObject();
                    cJSON_AddStringToObject(c, "name", s->enum_values[k]);
                    cJSON_AddStringToObject(c, "value", s->enum_values[k]);
                    cJSON_AddItemToArray(ch, c);
                }
            }
            cJSON_AddItemToArray(opts, x);
        }
    }
}

char *cq_ctl_discord_commands(const struct cq_config *cfg) {
    cJSON *root = cJSON_CreateArray();
    static const char *const builtins[] = CQ_BUILTIN_NAMES;
    for (size_t b = 0; root && builtins[b]; b++) { /* help, whoami, ...: the rest as text */
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", builtins[b]);
        cJSON_AddNumberToObject(c, "type", 1);
        add_desc(c, NULL, builtins[b]);
        cJSON *opts = cJSON_AddArrayToObject(c, "options");
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", "text");
        cJSON_AddNumberToObject(t, "type", 3);
        add_desc(t, "the rest of the command", NULL);
        cJSON_AddBoolToObject(t, "required", false);
        cJSON_AddItemToArray(opts, t);
        cJSON_AddItemToArray(root, c);
    }
    for (size_t i = 0; root && i < cfg->n_commands; i++) {
        const struct cq_command *cmd = &cfg->commands[i];
        char *copy = strdup(cmd->name), *save = NULL, *w[MAX_WORDS + 1];
        size_t n = 0;
        for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t && n <= MAX_WORDS;
             t = strtok_r(NULL, " ", &save))
            w[n++] = t;
        if (n == 0 || n > MAX_WORDS) {
            fprintf(stderr, "chatopsctl: discord: command '%s' has more than %d words: skipped\n",
                    cmd->name, MAX_WORDS);
            free(copy);
            continue;
        }
        cJSON *top = find_named(root, w[0]);
        if (!top) {
            top = cJSON_CreateObject();
            cJSON_AddStringToObject(top, "name", w[0]);
            cJSON_AddNumberToObject(top, "type", 1);
            add_desc(top, n == 1 ? cmd->description : NULL, w[0]);
            cJSON_AddItemToArray(root, top);
        }
        cJSON *at = top;
        if (n == 3) at = child(top, w[1], 2, NULL);
        if (n >= 2) at = child(at, w[n - 1], 1, cmd->description);
        if (cJSON_GetObjectItemCaseSensitive(at, "options") && n == 1)
            fprintf(stderr,
                    "chatopsctl: discord: '%s' has sub-commands: its own arguments are "
                    "not registered\n",
                    cmd->name);
        else
            add_args(at, cmd);
        free(copy);
    }
    char *s = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return s;
}

int cq_ctl_discord(const struct cq_config *cfg, int argc, char **argv) {
    bool dry = argc > 0 && !strcmp(argv[0], "--dry-run");
    if (!cfg->discord.application_id) {
        fprintf(stderr, "chatopsctl: discord register: discord.application_id is not set in %s\n",
                cfg->path);
        return 1;
    }
    char *body = cq_ctl_discord_commands(cfg);
    if (!body) {
        fprintf(stderr, "chatopsctl: discord register: out of memory\n");
        return 1;
    }
    if (dry) {
        printf("%s\n", body);
        free(body);
        return 0;
    }
    if (!cfg->discord.bot_token.value) {
        fprintf(stderr, "chatopsctl: discord register: discord.bot_token is not set in %s\n",
                cfg->path);
        free(body);
        return 1;
    }
    struct cq_ctl_http r = {0};
    char *url = cq_strprintf("%s/applications/%s/commands", cfg->discord.api_base,
                             cfg->discord.application_id);
    char *auth = cq_strprintf("Authorization: Bot %s", cfg->discord.bot_token.value);
    const char *hdrs[] = {"Content-Type: application/json", auth, NULL};
    int rc = 1;
    if (!url || !auth) {
        fprintf(stderr, "chatopsctl: discord register: out of memory\n");
    } else if (cq_ctl_http_do("PUT", url, hdrs, body, strlen(body), 15000, &r) != 0) {
        fprintf(stderr, "chatopsctl: discord register: %s: %s\n", url, r.err);
    } else if (r.status != 200 && r.status != 201) {
        char *shown = cq_config_redact(cfg, strdup(r.body ? r.body : ""));
        fprintf(stderr, "chatopsctl: discord register: Discord answered HTTP %ld: %.300s\n",
                r.status, shown ? shown : "");
        free(shown);
    } else {
        cJSON *a = cJSON_Parse(r.body);
        printf("registered %d application commands for application %s\n",
               cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0, cfg->discord.application_id);
        cJSON_Delete(a);
        rc = 0;
    }
    free(r.body);
    free(url);
    free(auth);
    free(body);
    return rc;
}
