/* builtins: help, whoami and the did-you-mean answer. The help text is derived
 * from the policy, so a user never sees a command they could not run here. */
#include "builtins.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "builtin_names.h"
#include "policy.h"
#include "utf8.h"

struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...) {
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t ncap = t->cap ? t->cap : 256;
        while (ncap < t->len + (size_t)n + 1)
            ncap *= 2;
        char *ns = realloc(t->s, ncap);
        if (!ns) {
            t->failed = true;
            return;
        }
        t->s = ns;
        t->cap = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static char *done(struct text *t) {
    if (t->failed) {
        free(t->s);
        return NULL;
    }
    if (!t->s) return strdup("");
    return t->s;
}

static bool topic_match(const char *name, const char *topic) {
    size_t n = strlen(topic);
    return strncmp(name, topic, n) == 0 && (name[n] == '\0' || name[n] == ' ');
}

static void add_cmd(struct text *t, const struct cq_command *c) {
    char usage[300];
    w_args_usage(c, usage, sizeof(usage));
    add(t, "\n• `%s`", usage + (strncmp(usage, "usage: ", 7) == 0 ? 7 : 0));
    if (c->description && c->description[0]) add(t, " — %s", c->description);
}

char *w_builtin_help(const struct cq_config *cfg, const struct cq_person *person,
                     const struct cq_channel *channel, const char *topic) {
    struct text t = {0};
    const char *where = channel && channel->name ? channel->name : NULL;
    size_t shown = 0;

    if (topic && *topic) {
        size_t found = 0;
        for (size_t i = 0; cfg && i < cfg->n_commands; i++) {
            const struct cq_command *c = &cfg->commands[i];
            if (!topic_match(c->name, topic)) continue;
            found++;
            add_cmd(&t, c);
            if (!w_policy_may_run(cfg, person, channel, c->name))
                add(&t, " (you may not run it here)");
        }
        if (found == 0) {
            free(t.s);
            return w_builtin_unknown(cfg, topic);
        }
        /* drop the leading newline */
        char *s = done(&t);
        if (s && s[0] == '\n') memmove(s, s + 1, strlen(s));
        return s;
    }
    if (where)
        add(&t, "Commands you can run in #%s:", where[0] == '#' ? where + 1 : where);
    else
        add(&t, "Commands you can run here:");
    for (size_t i = 0; cfg && i < cfg->n_commands; i++) {
        const struct cq_command *c = &cfg->commands[i];
        if (!w_policy_may_run(cfg, person, channel, c->name)) continue;
        add_cmd(&t, c);
        shown++;
    }
    if (shown == 0) add(&t, "\n(none: ask an admin for a role that grants commands here)");
    add(&t, "\nAlso: `help CMD`, `whoami`.");
    if (cfg && cfg->events.enabled && w_policy_may_run(cfg, person, channel, "subscribe"))
        add(&t, "\nGitLab events here: `subscribe PROJECT [KIND ...] [STATUS ...] [ref=GLOB] "
                "[env=GLOB]`, `unsubscribe PROJECT`, `subscriptions`.");
    return done(&t);
}

char *w_builtin_whoami(const struct cq_person *person, const char *platform, const char *user_id) {
    struct text t = {0};
    if (!person) {
        add(&t,
            "You are not a known user (%s user %s), so you have no roles. Ask an admin to "
            "add your id to people in the chatops config.",
            platform ? platform : "?", user_id ? user_id : "?");
        return done(&t);
    }
    add(&t, "You are %s, GitLab login %s, roles: ", person->name ? person->name : "?",
        person->gitlab_login ? person->gitlab_login : "(none)");
    size_t n = 0;
    for (char **r = person->roles; r && *r; r++)
        add(&t, "%s%s", n++ ? ", " : "", *r);
    if (n == 0) add(&t, "(none)");
    add(&t, ".");
    return done(&t);
}

static void consider(const char *cand, size_t clen, const char *word, char *best, size_t bsize,
                     size_t *best_d) {
    char c[128];
    if (clen >= sizeof(c)) return;
    memcpy(c, cand, clen);
    c[clen] = '\0';
    size_t d = cq_levenshtein(word, c);
    if (d < *best_d) {
        *best_d = d;
        snprintf(best, bsize, "%s", c);
    }
}

char *w_builtin_unknown(const struct cq_config *cfg, const char *word) {
    static const char *const builtin[] = CQ_BUILTIN_NAMES;
    struct text t = {0};
    char best[128] = "", shown[64];
    size_t best_d = (size_t)-1;

    for (size_t i = 0; builtin[i]; i++)
        consider(builtin[i], strlen(builtin[i]), word, best, sizeof(best), &best_d);
    for (size_t i = 0; cfg && i < cfg->n_commands; i++) {
        const char *n = cfg->commands[i].name;
        consider(n, strlen(n), word, best, sizeof(best), &best_d);       /* "flag get" */
        consider(n, strcspn(n, " "), word, best, sizeof(best), &best_d); /* "flag" */
    }
    size_t wl = strlen(word), limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
    cq_utf8_copy(shown, sizeof(shown), word, wl, NULL); /* cut on a character, with "…" */
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    add(&t, "unknown command `%s`", shown);
    if (best[0] && best_d <= limit)
        add(&t, "; did you mean `%s`?", best);
    else
        add(&t, ".");
    add(&t, " Try `help`.");
    return done(&t);
}
