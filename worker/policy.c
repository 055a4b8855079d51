/* policy: deny-by-default decisions for the worker. A rule grants roles or people
 * some commands, optionally only in some channels and only for some argument
 * values. The first rule that matches allows; otherwise the reason is built from
 * the rules that exist for this command, so it says what would have been allowed. */
#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "builtin_names.h"

static bool in_list(char **list, const char *s) {
    for (char **p = list; p && *p; p++)
        if (strcmp(*p, s) == 0) return true;
    return false;
}

static const char *strip_hash(const char *s) {
    return (s && s[0] == '#') ? s + 1 : s;
}

const struct cq_person *w_policy_person(const struct cq_config *cfg, const char *platform,
                                        const char *user_id) {
    if (!cfg || !platform || !user_id) return NULL;
    for (size_t i = 0; i < cfg->n_people; i++) {
        const struct cq_person *p = &cfg->people[i];
        char **ids = cq_person_ids(p, platform);
        if (in_list(ids, user_id)) return p;
    }
    return NULL;
}

const struct cq_channel *w_policy_channel(const struct cq_config *cfg, const char *platform,
                                          const char *channel_id) {
    if (!cfg || !channel_id) return NULL;
    for (size_t i = 0; i < cfg->n_channels; i++) {
        const struct cq_channel *c = &cfg->channels[i];
        if (c->id && strcmp(c->id, channel_id) == 0 &&
            (!platform || !c->platform || strcmp(c->platform, platform) == 0))
            return c;
    }
    return NULL;
}

bool w_policy_is_builtin(const char *name) {
    return cq_is_builtin_name(name);
}

/* "*" is every configured person; a user nobody configured matches only a rule that says
 * so with the role "@unknown" (CQ_ROLE_UNKNOWN). */
static bool rule_who(const struct cq_rule *r, const struct cq_person *person) {
    if (!person) return in_list(r->roles, CQ_ROLE_UNKNOWN);
    if (in_list(r->roles, "*")) return true;
    for (char **role = person->roles; role && *role; role++)
        if (in_list(r->roles, *role)) return true;
    return person->name && in_list(r->people, person->name);
}

static bool rule_cmd(const struct cq_rule *r, const char *cmd) {
    return in_list(r->commands, "*") || in_list(r->commands, cmd);
}

static bool rule_where(const struct cq_rule *r, const struct cq_channel *ch) {
    if (!r->channels) return true;
    if (!ch || !ch->name) return false;
    for (char **c = r->channels; *c; c++)
        if (strcmp(strip_hash(*c), strip_hash(ch->name)) == 0) return true;
    return false;
}

static bool rule_args(const struct cq_rule *r, const struct w_bound_args *args) {
    if (!args) return true;
    for (size_t i = 0; i < r->n_args; i++) {
        const char *v = w_bound_get(args, r->args[i].arg);
        if (!v || !in_list(r->args[i].values, v)) return false;
    }
    return true;
}

/* Bounded line builder: appends until full, never overflows. */
struct line {
    char *buf;
    size_t size, used;
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct line *l, const char *fmt, ...) {
    if (l->used + 1 >= l->size) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(l->buf + l->used, l->size - l->used, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    l->used += (size_t)w;
    if (l->used >= l->size) l->used = l->size - 1;
}

static void put_list(struct line *l, char **list, const char *prefix, const char *sep) {
    size_t k = 0;
    for (char **p = list; p && *p; p++, k++)
        put(l, "%s%s%s", k ? sep : "", prefix, strip_hash(*p));
}

static size_t count(char **list) {
    size_t n = 0;
    while (list && list[n])
        n++;
    return n;
}

/* "role sre", "roles sre or release", "person bob", "everyone", "every known user",
 * "unknown users". */
static void put_who(struct line *l, const struct cq_rule *r) {
    bool star = in_list(r->roles, "*"), unknown = in_list(r->roles, CQ_ROLE_UNKNOWN);
    if (star) {
        put(l, unknown ? "everyone" : "every known user");
        return;
    }
    size_t nr = count(r->roles) - unknown, np = count(r->people);
    if (nr) {
        put(l, "%s ", nr > 1 ? "roles" : "role");
        size_t k = 0;
        for (char **p = r->roles; p && *p; p++)
            if (strcmp(*p, CQ_ROLE_UNKNOWN) != 0) put(l, "%s%s", k++ ? " or " : "", *p);
    }
    if (unknown) put(l, "%sunknown users", nr ? " or " : "");
    if (np) {
        put(l, "%s%s ", nr || unknown ? " or " : "", np > 1 ? "people" : "person");
        put_list(l, r->people, "", " or ");
    }
    if (!nr && !np && !unknown) put(l, "nobody");
}

/* The command as the user ran it, with the argument values that some rule constrains. */
static void put_label(struct line *l, const struct cq_config *cfg, const char *cmd,
                      const struct w_bound_args *args) {
    put(l, "%s", cmd);
    if (!args || !args->cmd) return;
    for (size_t i = 0; i < args->cmd->n_args; i++) {
        const char *name = args->cmd->args[i].name;
        bool constrained = false;
        for (size_t k = 0; k < cfg->n_rules && !constrained; k++) {
            const struct cq_rule *r = &cfg->rules[k];
            if (!rule_cmd(r, cmd)) continue;
            for (size_t a = 0; a < r->n_args; a++)
                if (strcmp(r->args[a].arg, name) == 0) constrained = true;
        }
        if (constrained && args->values[i]) put(l, " %s=%s", name, args->values[i]);
    }
}

static void put_you(struct line *l, const struct cq_person *person, const struct cq_channel *ch) {
    if (!person) {
        put(l, " (you are not a known user, so you have no roles)");
        return;
    }
    put(l, " (you: %s, ", person->name ? person->name : "?");
    if (count(person->roles)) {
        put(l, "roles ");
        put_list(l, person->roles, "", ", ");
    } else {
        put(l, "no roles");
    }
    if (ch && ch->name)
        put(l, ", in #%s)", strip_hash(ch->name));
    else
        put(l, ", in an unlisted channel)");
}

void w_policy_check(const struct cq_config *cfg, const struct cq_person *person,
                    const struct cq_channel *channel, const char *cmd_name,
                    const struct w_bound_args *args, struct w_decision *out) {
    struct line l = {out->reason, sizeof(out->reason), 0};
    size_t n_cmd = 0, n_args_ok = 0, n_who = 0, n_here = 0;

    out->allowed = false;
    out->rule = NULL;
    out->reason[0] = '\0';
    if (cq_is_builtin_name(cmd_name)) {
        /* cancel and pipelines check ownership themselves (requester or cancel_roles). */
        out->allowed = true;
        out->rule = W_BUILTIN_RULE;
        return;
    }
    if (!cfg || !cmd_name) {
        put(&l, "no command");
        return;
    }
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct cq_rule *r = &cfg->rules[i];
        if (!rule_cmd(r, cmd_name)) continue;
        n_cmd++;
        bool a = rule_args(r, args), w = rule_who(r, person), h = rule_where(r, channel);
        if (a && w && h) {
            out->allowed = true;
            out->rule = r->name;
            return;
        }
        n_args_ok += a;
        n_who += a && w;
        n_here += w && h;
    }

    put_label(&l, cfg, cmd_name, args);
    if (n_cmd == 0) {
        put(&l, " is not granted by any rule (deny by default)");
    } else if (n_args_ok == 0) {
        /* The values are the problem: list what the rules for this user and place accept. */
        if (n_here > 0) {
            put(&l, " is not allowed for you here; allowed:");
            for (size_t i = 0; i < cfg->n_rules; i++) {
                const struct cq_rule *r = &cfg->rules[i];
                if (!rule_cmd(r, cmd_name) || !rule_who(r, person) || !rule_where(r, channel))
                    continue;
                for (size_t a = 0; a < r->n_args; a++) {
                    put(&l, " %s=", r->args[a].arg);
                    put_list(&l, r->args[a].values, "", "|");
                }
            }
        } else {
            put(&l, " is not allowed by any rule with these values");
        }
    } else if (n_who > 0) {
        put(&l, " is allowed for you only in ");
        size_t k = 0;
        for (size_t i = 0; i < cfg->n_rules; i++) {
            const struct cq_rule *r = &cfg->rules[i];
            if (rule_cmd(r, cmd_name) && rule_args(r, args) && rule_who(r, person) && r->channels) {
                put(&l, "%s", k++ ? " or " : "");
                put_list(&l, r->channels, "#", " or ");
            }
        }
    } else {
        put(&l, " is allowed only for ");
        size_t k = 0;
        for (size_t i = 0; i < cfg->n_rules; i++) {
            const struct cq_rule *r = &cfg->rules[i];
            if (!rule_cmd(r, cmd_name) || !rule_args(r, args)) continue;
            if (k++) put(&l, "; or ");
            put_who(&l, r);
            if (r->channels) {
                put(&l, " in ");
                put_list(&l, r->channels, "#", " or ");
            }
        }
    }
    put_you(&l, person, channel);
}

bool w_policy_may_run(const struct cq_config *cfg, const struct cq_person *person,
                      const struct cq_channel *channel, const char *cmd_name) {
    if (w_policy_is_builtin(cmd_name)) return true;
    for (size_t i = 0; cfg && i < cfg->n_rules; i++) {
        const struct cq_rule *r = &cfg->rules[i];
        if (rule_cmd(r, cmd_name) && rule_who(r, person) && rule_where(r, channel)) return true;
    }
    return false;
}
