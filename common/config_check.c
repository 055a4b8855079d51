/* config_check: the worker-facing checks run after config.c has filled the tables:
 * command names, arguments and modes, the {{...}} references of templates (which
 * variables exist, where secrets may go), policy rules, people/channel ids, and the
 * cross-section rules (slack/feishu secrets, poll and backoff bounds, ingress paths).
 * Messages go through the same "file:line:col: key.path: reason" helpers (config_int.h). */
#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_names.h"
#include "config.h"
#include "config_int.h"
#include "redis.h"
#include "strutil.h"
#include "template_vars.h"
#include "utf8.h"
#include "yamltree.h"

static const char *const BUILTINS[] = CQ_BUILTIN_NAMES;

static const struct cq_ynode *node_at(const struct cq_ynode *n, const char *key) {
    const struct cq_ynode *v = cq_ynode_get(n, key);
    return v ? v : n;
}

bool cq_cfg_in_list(char *const *l, const char *s) {
    for (size_t i = 0; l && l[i]; i++)
        if (strcmp(l[i], s) == 0) return true;
    return false;
}

static bool role_exists(const struct cq_config *cfg, const char *role) {
    for (size_t i = 0; i < cfg->n_people; i++)
        if (cq_cfg_in_list(cfg->people[i].roles, role)) return true;
    for (size_t i = 0; i < cfg->identity.n_role_rules; i++) /* identity.roles_from_gitlab */
        if (strcmp(cfg->identity.role_rules[i].role, role) == 0) return true;
    return false;
}

static void sugg_roles(struct sugg *sg, const struct cq_config *cfg) {
    for (size_t i = 0; i < cfg->n_people; i++)
        for (size_t j = 0; cfg->people[i].roles && cfg->people[i].roles[j]; j++)
            cq_cfg_sugg_add(sg, cfg->people[i].roles[j]);
    for (size_t i = 0; i < cfg->identity.n_role_rules; i++)
        cq_cfg_sugg_add(sg, cfg->identity.role_rules[i].role);
}

static const struct cq_arg_spec *find_arg(const struct cq_command *cmd, const char *name) {
    for (size_t i = 0; i < cmd->n_args; i++)
        if (strcmp(cmd->args[i].name, name) == 0) return &cmd->args[i];
    return NULL;
}

/* Checks the {{...}} references of one template against the command and the secrets.
 * Secrets may only land where nothing shows them again: headers and request bodies. A URL
 * part (path, query, pipeline ref) is quoted in logs, errors, chat replies, the run-once
 * claim and audit records, so {{secrets.X}} there is refused (`no_secret` names the place). */
static enum cq_rc check_template(struct ctx *c, const struct cq_config *cfg,
                                 const struct cq_command *cmd, const char *tpl,
                                 const struct cq_ynode *at, bool is_reply, const char *no_secret) {
    static const char *const fixed[] = CQ_TEMPLATE_VAR_NAMES;
    const char *p = tpl;
    char hint[96];
    while (p && (p = strstr(p, "{{")) != NULL) {
        const char *end = strstr(p + 2, "}}");
        if (!end) return cq_cfg_fail(c, at, "unclosed {{ in template");
        const char *s = p + 2, *e = end;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char name[128];
        if ((size_t)(e - s) >= sizeof(name))
            return cq_cfg_fail(c, at, "template variable name is too long");
        memcpy(name, s, (size_t)(e - s));
        name[e - s] = '\0';
        p = end + 2;
        if (strncmp(name, "secrets.", 8) == 0) {
            if (is_reply)
                return cq_cfg_fail(
                    c, at, "reply_template may not use {{%s}} (secrets stay out of chat)", name);
            if (no_secret)
                return cq_cfg_fail(
                    c, at,
                    "{{%s}} may not appear in %s (it is shown in logs, replies and audit "
                    "records); pass secrets in a header or the body",
                    name, no_secret);
            struct sugg sg = {.word = name + 8};
            bool found = false;
            for (size_t i = 0; i < cfg->n_secrets && !found; i++) {
                found = strcmp(cfg->secrets[i].name, name + 8) == 0;
                cq_cfg_sugg_add(&sg, cfg->secrets[i].name);
            }
            if (!found)
                return cq_cfg_fail(c, at, "{{%s}}: no secret '%s' in secrets%s", name, name + 8,
                                   cq_cfg_sugg_hint(&sg, hint));
        } else if (strncmp(name, "args.", 5) == 0) {
            if (!find_arg(cmd, name + 5)) {
                struct sugg sg = {.word = name + 5};
                for (size_t i = 0; i < cmd->n_args; i++)
                    cq_cfg_sugg_add(&sg, cmd->args[i].name);
                return cq_cfg_fail(c, at, "{{%s}}: the command has no argument '%s'%s", name,
                                   name + 5, cq_cfg_sugg_hint(&sg, hint));
            }
        } else if (strncmp(name, "response", 8) == 0 && (name[8] == '.' || !name[8])) {
            if (!is_reply)
                return cq_cfg_fail(c, at, "{{%s}} is only available in reply_template", name);
        } else if (cq_cfg_choice_index(fixed, name) < 0) {
            struct sugg sg = {.word = name};
            for (size_t i = 0; fixed[i]; i++)
                cq_cfg_sugg_add(&sg, fixed[i]);
            return cq_cfg_fail(c, at, "unknown template variable {{%s}}%s", name,
                               cq_cfg_sugg_hint(&sg, hint));
        }
    }
    return CQ_OK;
}

static bool command_name_ok(const char *n) {
    bool word_start = true;
    if (!*n) return false;
    for (; *n; n++) {
        if (*n == ' ') {
            if (word_start) return false;
            word_start = true;
        } else if (islower((unsigned char)*n) || isdigit((unsigned char)*n) ||
                   (!word_start && (*n == '-' || *n == '_'))) {
            word_start = false;
        } else {
            return false;
        }
    }
    return !word_start;
}

static enum cq_rc check_args(struct ctx *c, struct cq_command *cmd, const struct cq_ynode *cn) {
    const struct cq_ynode *list = cq_ynode_get(cn, "args");
    for (size_t i = 0; i < cmd->n_args; i++) {
        struct cq_arg_spec *a = &cmd->args[i];
        const struct cq_ynode *an = list->items[i];
        size_t old = cq_cfg_push_key(c, "args");
        cq_cfg_push_index(c, i);
        enum cq_rc rc = CQ_OK;
        char b[64];
        if (!cq_cfg_plain_key(a->name))
            rc = (cq_cfg_push_key(c, "name"),
                  cq_cfg_fail(c, node_at(an, "name"), "argument names use a-z, 0-9, - and _"));
        for (size_t j = 0; rc == CQ_OK && j < i; j++) {
            if (strcmp(cmd->args[j].name, a->name) == 0)
                rc = (cq_cfg_push_key(c, "name"),
                      cq_cfg_fail(c, node_at(an, "name"), "argument '%s' is declared twice",
                                  a->name));
            else if (a->flag && cmd->args[j].flag && strcmp(a->flag, cmd->args[j].flag) == 0)
                rc = (cq_cfg_push_key(c, "flag"),
                      cq_cfg_fail(c, node_at(an, "flag"), "flag '%s' is declared twice", a->flag));
        }
        if (rc == CQ_OK && a->type == CQ_ARG_ENUM && !(a->enum_values && a->enum_values[0]))
            rc = cq_cfg_fail(c, an, "type enum needs a non-empty 'values' list");
        if (rc == CQ_OK && a->type != CQ_ARG_ENUM && a->enum_values)
            rc = (cq_cfg_push_key(c, "values"),
                  cq_cfg_fail(c, node_at(an, "values"), "values apply only to type enum"));
        if (rc == CQ_OK && a->type != CQ_ARG_INT &&
            (cq_ynode_get(an, "min") || cq_ynode_get(an, "max")))
            rc = (cq_cfg_push_key(c, cq_ynode_get(an, "min") ? "min" : "max"),
                  cq_cfg_fail(c, node_at(an, cq_ynode_get(an, "min") ? "min" : "max"),
                              "min and max apply only to type int"));
        if (rc == CQ_OK && a->min > a->max)
            rc = (cq_cfg_push_key(c, "min"),
                  cq_cfg_fail(c, node_at(an, "min"), "%lld is above max %lld", a->min, a->max));
        if (rc == CQ_OK && a->regex) {
            regex_t re;
            int e = regcomp(&re, a->regex, REG_EXTENDED | REG_NOSUB);
            if (e != 0) {
                char why[96];
                regerror(e, &re, why, sizeof(why));
                rc = (cq_cfg_push_key(c, "regex"),
                      cq_cfg_fail(c, node_at(an, "regex"), "does not compile: %s", why));
            } else {
                regfree(&re);
            }
        }
        if (rc == CQ_OK && a->default_value) {
            const struct cq_ynode *dn = node_at(an, "default");
            cq_cfg_push_key(c, "default");
            long long x;
            if (a->type == CQ_ARG_ENUM && !cq_cfg_in_list(a->enum_values, a->default_value))
                rc = cq_cfg_fail(c, dn, "'%s' is not one of the values",
                                 cq_cfg_shown(a->default_value, b));
            else if (a->type == CQ_ARG_INT && !cq_cfg_parse_ll(a->default_value, &x))
                rc =
                    cq_cfg_fail(c, dn, "'%s' is not an integer", cq_cfg_shown(a->default_value, b));
            else if (a->type == CQ_ARG_INT && (x < a->min || x > a->max))
                rc = cq_cfg_fail(c, dn, "%lld is outside min..max", x);
        }
        cq_cfg_pop(c, old);
        if (rc != CQ_OK) return rc;
    }
    return CQ_OK;
}

static enum cq_rc check_command(struct ctx *c, struct cq_config *cfg, struct cq_command *cmd,
                                const struct cq_ynode *kn, const struct cq_ynode *cn) {
    const struct cq_ynode *hn = cq_ynode_get(cn, "http"), *pn = cq_ynode_get(cn, "pipeline");
    char hint[96];
    if (hn && cq_ynode_is_null(hn)) hn = NULL;
    if (pn && cq_ynode_is_null(pn)) pn = NULL;
    if (!command_name_ok(cmd->name))
        return cq_cfg_fail(c, kn,
                           "command names are words of a-z, 0-9, - and _ separated by single "
                           "spaces");
    if (cq_cfg_choice_index(BUILTINS, cmd->name) >= 0 || cq_is_policed_builtin_name(cmd->name))
        return cq_cfg_fail(c, kn, "'%s' is a built-in command", cmd->name);
    enum cq_rc rc = check_args(c, cmd, cn);
    if (rc != CQ_OK) return rc;
    if (cmd->mode == CQ_MODE_DIRECT) {
        if (!hn) return cq_cfg_fail(c, node_at(cn, "mode"), "mode direct needs an 'http' section");
        if (pn)
            return cq_cfg_fail(c, pn,
                               "'pipeline' applies only to modes trigger_and_wait and "
                               "trigger_and_return");
        struct cq_http_action *h = &cmd->http;
        size_t old = cq_cfg_push_key(c, "http");
        if (!h->base_url && cfg->gitlab.base_url && !(h->base_url = strdup(cfg->gitlab.base_url)))
            rc = cq_cfg_nomem(c);
        if (rc == CQ_OK && !h->base_url)
            rc = cq_cfg_fail(c, hn, "base_url is missing and gitlab.base_url is not set");
        if (rc == CQ_OK && strncmp(h->base_url, "http://", 7) != 0 &&
            strncmp(h->base_url, "https://", 8) != 0)
            rc = (cq_cfg_push_key(c, "base_url"),
                  cq_cfg_fail(c, node_at(hn, "base_url"), "must start with http:// or https://"));
        if (rc == CQ_OK && strcspn(strstr(h->base_url, "://") + 3, "/?#") >
                               strcspn(strstr(h->base_url, "://") + 3, "@"))
            rc = (cq_cfg_push_key(c, "base_url"),
                  cq_cfg_fail(c, node_at(hn, "base_url"),
                              "may not hold user:password@ (the URL is shown in logs and replies); "
                              "pass credentials in a header"));
        const struct {
            const char *key;
            const char *tpl;
        } tpls[] = {{"path", h->path},
                    {"query", h->query},
                    {"body", h->body},
                    {"reply_template", h->reply_template}};
        for (size_t i = 0; rc == CQ_OK && i < sizeof(tpls) / sizeof(tpls[0]); i++) {
            size_t o2 = cq_cfg_push_key(c, tpls[i].key);
            rc = check_template(c, cfg, cmd, tpls[i].tpl, node_at(hn, tpls[i].key), i == 3,
                                i < 2 ? "the URL" : NULL);
            cq_cfg_pop(c, o2);
        }
        const struct cq_ynode *hh = cq_ynode_get(hn, "headers");
        for (size_t i = 0; rc == CQ_OK && i < h->n_headers; i++) {
            size_t o2 = cq_cfg_push_key(c, "headers");
            cq_cfg_push_key(c, h->headers[i].name);
            rc =
                check_template(c, cfg, cmd, h->headers[i].value, hh->items[2 * i + 1], false, NULL);
            cq_cfg_pop(c, o2);
        }
        cq_cfg_pop(c, old);
        return rc;
    }
    if (!pn)
        return cq_cfg_fail(c, node_at(cn, "mode"), "mode %s needs a 'pipeline' section",
                           cq_cfg_modes[cmd->mode]);
    if (hn) return cq_cfg_fail(c, hn, "'http' applies only to mode direct");
    struct cq_pipeline_action *p = &cmd->pipeline;
    size_t old = cq_cfg_push_key(c, "pipeline");
    if (p->manual_job && cmd->mode != CQ_MODE_TRIGGER_AND_RETURN)
        rc = cq_cfg_fail(c, node_at(pn, "manual_job"),
                         "manual_job applies only to trigger_and_return");
    bool named = false; /* by name: a lenient check leaves values unresolved */
    for (size_t i = 0; i < cfg->n_secrets && !named; i++)
        named = strcmp(cfg->secrets[i].name, p->trigger_token_name) == 0;
    if (rc == CQ_OK && !named) {
        struct sugg sg = {.word = p->trigger_token_name};
        for (size_t i = 0; i < cfg->n_secrets; i++)
            cq_cfg_sugg_add(&sg, cfg->secrets[i].name);
        size_t o2 = cq_cfg_push_key(c, "trigger_token");
        rc = cq_cfg_fail(c, node_at(pn, "trigger_token"), "no secret '%s' in secrets%s",
                         p->trigger_token_name, cq_cfg_sugg_hint(&sg, hint));
        cq_cfg_pop(c, o2);
    }
    if (rc == CQ_OK) {
        size_t o2 = cq_cfg_push_key(c, "ref");
        rc = check_template(c, cfg, cmd, p->ref, node_at(pn, "ref"), false, "a pipeline ref");
        cq_cfg_pop(c, o2);
    }
    const struct cq_ynode *vn = cq_ynode_get(pn, "variables");
    for (size_t i = 0; rc == CQ_OK && i < p->n_variables; i++) {
        size_t o2 = cq_cfg_push_key(c, "variables");
        cq_cfg_push_key(c, p->variables[i].name);
        if (cq_config_var_reserved(p->variables[i].name))
            rc = cq_cfg_fail(c, vn->items[2 * i],
                             "reserved name: the worker sets %s on every trigger; "
                             "use another name",
                             p->variables[i].name);
        else
            rc = check_template(c, cfg, cmd, p->variables[i].value, vn->items[2 * i + 1], false,
                                NULL);
        cq_cfg_pop(c, o2);
    }
    cq_cfg_pop(c, old);
    return rc;
}

bool cq_config_var_reserved(const char *name) {
    static const char *const reserved[] = {
        "CHAT_INPUT",      "CHAT_CHANNEL",       "CHAT_USER_ID",     "GITLAB_USER_LOGIN",
        "CHATOPS_COMMAND", "CHATOPS_REQUEST_ID", "CHATOPS_APPROVERS"}; /* issue 16 */
    for (size_t i = 0; name && i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(name, reserved[i]) == 0) return true;
    return false;
}

static enum cq_rc check_rule(struct ctx *c, const struct cq_config *cfg, const struct cq_rule *r,
                             const struct cq_ynode *rn) {
    char hint[96];
    enum cq_rc rc = CQ_OK;
    if (!(r->roles && r->roles[0]) && !(r->people && r->people[0]))
        return cq_cfg_fail(c, rn, "a rule needs 'roles' or 'people'");
    const struct cq_ynode *ln = cq_ynode_get(rn, "roles");
    for (size_t i = 0; r->roles && r->roles[i]; i++) {
        if (strcmp(r->roles[i], "*") == 0 || strcmp(r->roles[i], CQ_ROLE_UNKNOWN) == 0 ||
            role_exists(cfg, r->roles[i]))
            continue;
        struct sugg sg = {.word = r->roles[i]};
        sugg_roles(&sg, cfg);
        size_t old = cq_cfg_push_key(c, "roles");
        cq_cfg_push_index(c, i);
        rc = cq_cfg_fail(c, ln->items[i], "no person has role '%s'%s", r->roles[i],
                         cq_cfg_sugg_hint(&sg, hint));
        cq_cfg_pop(c, old);
        return rc;
    }
    ln = cq_ynode_get(rn, "people");
    for (size_t i = 0; r->people && r->people[i]; i++) {
        bool found = false;
        struct sugg sg = {.word = r->people[i]};
        for (size_t j = 0; j < cfg->n_people && !found; j++) {
            found = strcmp(cfg->people[j].name, r->people[i]) == 0;
            cq_cfg_sugg_add(&sg, cfg->people[j].name);
        }
        if (found) continue;
        size_t old = cq_cfg_push_key(c, "people");
        cq_cfg_push_index(c, i);
        rc = cq_cfg_fail(c, ln->items[i], "no person '%s' in people%s", r->people[i],
                         cq_cfg_sugg_hint(&sg, hint));
        cq_cfg_pop(c, old);
        return rc;
    }
    ln = cq_ynode_get(rn, "channels");
    for (size_t i = 0; r->channels && r->channels[i]; i++) {
        bool found = false;
        struct sugg sg = {.word = r->channels[i]};
        for (size_t j = 0; j < cfg->n_channels && !found; j++) {
            found = strcmp(cfg->channels[j].name, r->channels[i]) == 0;
            cq_cfg_sugg_add(&sg, cfg->channels[j].name);
        }
        if (found) continue;
        size_t old = cq_cfg_push_key(c, "channels");
        cq_cfg_push_index(c, i);
        rc = cq_cfg_fail(c, ln->items[i], "no channel '%s' in channels%s", r->channels[i],
                         cq_cfg_sugg_hint(&sg, hint));
        cq_cfg_pop(c, old);
        return rc;
    }
    ln = cq_ynode_get(rn, "commands");
    bool star = false;
    for (size_t i = 0; r->commands[i]; i++) {
        const char *name = r->commands[i];
        if (strcmp(name, "*") == 0) {
            star = true;
            continue;
        }
        if (cq_cfg_choice_index(BUILTINS, name) >= 0 || cq_is_policed_builtin_name(name) ||
            cq_config_command(cfg, name))
            continue;
        struct sugg sg = {.word = name};
        for (size_t j = 0; j < cfg->n_commands; j++)
            cq_cfg_sugg_add(&sg, cfg->commands[j].name);
        for (size_t j = 0; BUILTINS[j]; j++)
            cq_cfg_sugg_add(&sg, BUILTINS[j]);
        size_t old = cq_cfg_push_key(c, "commands");
        cq_cfg_push_index(c, i);
        rc = cq_cfg_fail(c, ln->items[i], "unknown command '%s'%s", name,
                         cq_cfg_sugg_hint(&sg, hint));
        cq_cfg_pop(c, old);
        return rc;
    }
    const struct cq_ynode *an = cq_ynode_get(rn, "args");
    for (size_t i = 0; i < r->n_args; i++) {
        const struct cq_arg_match *m = &r->args[i];
        const struct cq_ynode *mk = an->items[2 * i], *mv = an->items[2 * i + 1];
        size_t old = cq_cfg_push_key(c, "args");
        cq_cfg_push_key(c, m->arg);
        if (star) rc = cq_cfg_fail(c, mk, "argument rules need named commands, not '*'");
        for (size_t j = 0; rc == CQ_OK && r->commands[j]; j++) {
            const struct cq_command *cmd = cq_config_command(cfg, r->commands[j]);
            const struct cq_arg_spec *a = cmd ? find_arg(cmd, m->arg) : NULL;
            if (!cmd) {
                rc = cq_cfg_fail(c, mk, "built-in command '%s' takes no argument rules",
                                 r->commands[j]);
            } else if (!a) {
                struct sugg sg = {.word = m->arg};
                for (size_t k = 0; k < cmd->n_args; k++)
                    cq_cfg_sugg_add(&sg, cmd->args[k].name);
                rc = cq_cfg_fail(c, mk, "command '%s' has no argument '%s'%s", cmd->name, m->arg,
                                 cq_cfg_sugg_hint(&sg, hint));
            } else if (a->type == CQ_ARG_ENUM) {
                for (size_t k = 0; rc == CQ_OK && m->values[k]; k++)
                    if (!cq_cfg_in_list(a->enum_values, m->values[k])) {
                        char b[64];
                        cq_cfg_push_index(c, k);
                        rc = cq_cfg_fail(c, mv->items[k], "'%s' is not a value of %s.%s",
                                         cq_cfg_shown(m->values[k], b), cmd->name, a->name);
                    }
            }
        }
        cq_cfg_pop(c, old);
        if (rc != CQ_OK) return rc;
    }
    return CQ_OK;
}

static enum cq_rc check_ids(struct ctx *c, const struct cq_config *cfg, const struct cq_ynode *pn,
                            size_t i, const char *platform) {
    char *const *ids = cq_person_ids(&cfg->people[i], platform);
    for (size_t k = 0; ids && ids[k]; k++) {
        for (size_t j = 0; j < i; j++) {
            char *const *other = cq_person_ids(&cfg->people[j], platform);
            if (!cq_cfg_in_list(other, ids[k])) continue;
            const struct cq_ynode *ln = cq_ynode_get(pn, platform);
            size_t old = cq_cfg_push_key(c, cfg->people[i].name);
            cq_cfg_push_key(c, platform);
            cq_cfg_push_index(c, k);
            enum cq_rc rc = cq_cfg_fail(c, ln->items[k], "%s already belongs to %s", ids[k],
                                        cfg->people[j].name);
            cq_cfg_pop(c, old);
            return rc;
        }
    }
    return CQ_OK;
}

/* redis: TLS needs a hiredis this build does not have; Sentinel keys come as a pair. */
static enum cq_rc check_redis(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root) {
    const struct cq_ynode *sec = node_at(root, "redis");
    char host[256];
    int port;
    if (cfg->redis.tls || strncmp(cfg->redis.host, "rediss://", 9) == 0) {
        c->plen =
            (size_t)snprintf(c->path, sizeof(c->path), "redis.%s", cfg->redis.tls ? "tls" : "host");
        return cq_cfg_fail(c, node_at(sec, cfg->redis.tls ? "tls" : "host"),
                           "Redis over TLS needs hiredis >= 1.0 and this build has hiredis "
                           "%d.%d; terminate TLS in a local stunnel (see docs/operations.md)",
                           HIREDIS_MAJOR, HIREDIS_MINOR);
    }
    if (cfg->redis.sentinels && !cfg->redis.sentinels[0]) {
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "redis.sentinels");
        return cq_cfg_fail(c, node_at(sec, "sentinels"), "list is empty");
    }
    if (!cfg->redis.sentinels != !cfg->redis.master_name) {
        bool s = cfg->redis.sentinels != NULL;
        c->plen =
            (size_t)snprintf(c->path, sizeof(c->path), "redis.%s", s ? "master_name" : "sentinels");
        return cq_cfg_fail(c, node_at(sec, s ? "sentinels" : "master_name"),
                           "required with redis.%s", s ? "sentinels" : "master_name");
    }
    for (size_t i = 0; cfg->redis.sentinels && cfg->redis.sentinels[i]; i++) {
        if (cq_redis_parse_addr(cfg->redis.sentinels[i], host, sizeof(host), &port)) continue;
        const struct cq_ynode *l = cq_ynode_get(sec, "sentinels");
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "redis.sentinels[%zu]", i);
        return cq_cfg_fail(c, l && l->kind == CQ_YNODE_SEQ && i < l->n ? l->items[i] : sec,
                           "'%s' is not host:port (port 1-65535)", cfg->redis.sentinels[i]);
    }
    return CQ_OK;
}

enum cq_rc cq_cfg_cross_check(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root) {
    enum cq_rc rc = CQ_OK;
    char hint[96];
    const struct cq_ynode *sec;

    if (cfg->slack.enabled && !cfg->slack.signing_secret.ref) {
        sec = node_at(root, "slack");
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "slack.signing_secret");
        return cq_cfg_fail(c, sec, "required when slack.enabled is true");
    }
    if (cfg->feishu.enabled && !cfg->feishu.verification_token.ref) {
        sec = node_at(root, "feishu");
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "feishu.verification_token");
        return cq_cfg_fail(c, sec, "required when feishu.enabled is true");
    }
    if (cfg->feishu.enabled && cfg->feishu.require_encrypt_key && !cfg->feishu.encrypt_key.ref) {
        sec = node_at(root, "feishu");
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "feishu.encrypt_key");
        return cq_cfg_fail(
            c, sec,
            "required when feishu.require_encrypt_key is true (the default): without "
            "it events are not signed and only the verification token authenticates");
    }
    if ((rc = cq_cfg_check_platforms(c, cfg, root)) != CQ_OK) return rc; /* issue 18 */
    if (!cfg->slack.commands) { /* slack.commands defaults to [slack.command] */
        cfg->slack.commands = calloc(2, sizeof(char *));
        if (!cfg->slack.commands || !(cfg->slack.commands[0] = strdup(cfg->slack.command))) {
            c->plen = (size_t)snprintf(c->path, sizeof(c->path), "slack.commands");
            return cq_cfg_fail(c, NULL, "out of memory");
        }
    }
    for (size_t i = 0; cfg->slack.commands[i]; i++) {
        if (cfg->slack.commands[i][0] != '/') {
            c->plen = (size_t)snprintf(c->path, sizeof(c->path), "slack.commands[%zu]", i);
            const struct cq_ynode *l = cq_ynode_get(cq_ynode_get(root, "slack"), "commands");
            return cq_cfg_fail(c, l && l->kind == CQ_YNODE_SEQ && i < l->n ? l->items[i] : NULL,
                               "'%s' must start with '/' (as Slack sends it, e.g. /ops)",
                               cfg->slack.commands[i]);
        }
    }
    if ((rc = check_redis(c, cfg, root)) != CQ_OK) return rc;
    sec = node_at(root, "worker");
    if (cfg->worker.poll_min_ms > cfg->worker.poll_max_ms) {
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "worker.poll_min_ms");
        return cq_cfg_fail(c, node_at(sec, "poll_min_ms"), "%d is above worker.poll_max_ms %d",
                           cfg->worker.poll_min_ms, cfg->worker.poll_max_ms);
    }
    for (size_t i = 0; cfg->worker.cancel_roles && cfg->worker.cancel_roles[i]; i++) {
        const char *role = cfg->worker.cancel_roles[i];
        if (role_exists(cfg, role)) continue;
        struct sugg sg = {.word = role};
        sugg_roles(&sg, cfg);
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "worker.cancel_roles[%zu]", i);
        return cq_cfg_fail(c, cq_ynode_get(sec, "cancel_roles")->items[i],
                           "no person has role '%s'%s", role, cq_cfg_sugg_hint(&sg, hint));
    }
    sec = node_at(root, "notifier");
    if (cfg->notifier.backoff_base_ms > cfg->notifier.backoff_max_ms) {
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "notifier.backoff_base_ms");
        return cq_cfg_fail(c, node_at(sec, "backoff_base_ms"),
                           "%d is above notifier.backoff_max_ms %d", cfg->notifier.backoff_base_ms,
                           cfg->notifier.backoff_max_ms);
    }
    sec = node_at(node_at(root, "ingress"), "paths");
    for (size_t i = 0; i < cq_cfg_paths_schema.n; i++) {
        const char *p = *MEMBER(cfg, cq_cfg_paths_schema.fields[i].off, char *);
        if (p[0] == '/') continue;
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "ingress.paths.%s",
                                   cq_cfg_paths_schema.fields[i].key);
        return cq_cfg_fail(c, node_at(sec, cq_cfg_paths_schema.fields[i].key),
                           "paths must start with '/'");
    }
    c->plen = 0;

    sec = cq_ynode_get(root, "people");
    c->plen = (size_t)snprintf(c->path, sizeof(c->path), "people");
    for (size_t i = 0; i < cfg->n_people; i++) {
        const struct cq_ynode *pn = sec->items[2 * i + 1];
        static const char *const platforms[] = {"slack",   "feishu", "dingtalk", "mattermost",
                                                "discord", "webex",  NULL};
        for (const char *const *pf = platforms; *pf; pf++)
            if ((rc = check_ids(c, cfg, pn, i, *pf)) != CQ_OK) return rc;
    }
    sec = cq_ynode_get(root, "channels");
    c->plen = (size_t)snprintf(c->path, sizeof(c->path), "channels");
    for (size_t i = 0; i < cfg->n_channels; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->channels[i].platform, cfg->channels[j].platform) != 0 ||
                strcmp(cfg->channels[i].id, cfg->channels[j].id) != 0)
                continue;
            cq_cfg_push_key(c, cfg->channels[i].name);
            cq_cfg_push_key(c, "id");
            return cq_cfg_fail(c, node_at(sec->items[2 * i + 1], "id"), "%s %s is also channel %s",
                               cfg->channels[i].platform, cfg->channels[i].id,
                               cfg->channels[j].name);
        }
    }
    sec = cq_ynode_get(root, "commands");
    for (size_t i = 0; i < cfg->n_commands; i++) {
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "commands");
        cq_cfg_push_key(c, cfg->commands[i].name);
        rc = check_command(c, cfg, &cfg->commands[i], sec->items[2 * i], sec->items[2 * i + 1]);
        if (rc != CQ_OK) return rc;
    }
    sec = cq_ynode_get(root, "policy");
    for (size_t i = 0; i < cfg->n_rules; i++) {
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "policy[%zu]", i);
        rc = check_rule(c, cfg, &cfg->rules[i], sec->items[i]);
        if (rc != CQ_OK) return rc;
    }
    if ((rc = cq_cfg_identity_check(c, cfg, root)) != CQ_OK) return rc;
    c->plen = 0;
    c->path[0] = '\0';
    return CQ_OK;
}
