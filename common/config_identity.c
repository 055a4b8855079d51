/* config_identity: the checks of the identity: section (issue 17) that the key table cannot
 * express: resolvers are known, listed once, in a workable order, and each has the base URL
 * and tokens it needs (checked by reference, so `config check` works where the secrets are
 * not). Called at the end of cq_cfg_cross_check; errors are file:line:col: key: reason. */
#include <stdio.h>
#include <string.h>

#include "config_int.h"

static const char *const RESOLVERS[] = {"static", "gitlab_email", "roles_from_gitlab", NULL};

static const struct cq_ynode *at(const struct cq_ynode *n, const char *key) {
    const struct cq_ynode *v = cq_ynode_get(n, key);
    return v ? v : n;
}

static const struct cq_ynode *item(const struct cq_ynode *seq, size_t i) {
    return seq && seq->kind == CQ_YNODE_SEQ && i < seq->n ? seq->items[i] : seq;
}

static enum cq_rc fail_at(struct ctx *c, const struct cq_ynode *n, const char *path,
                          const char *reason) {
    c->plen = (size_t)snprintf(c->path, sizeof(c->path), "%s", path);
    if (c->plen >= sizeof(c->path)) c->plen = sizeof(c->path) - 1;
    return cq_cfg_fail(c, n, "%s", reason);
}

static int position(char **list, const char *name) {
    for (int i = 0; list && list[i]; i++)
        if (strcmp(list[i], name) == 0) return i;
    return -1;
}

enum cq_rc cq_cfg_identity_check(struct ctx *c, struct cq_config *cfg,
                                 const struct cq_ynode *root) {
    const struct cq_ynode *sec = at(root, "identity"), *rn = cq_ynode_get(sec, "resolvers");
    char **r = cfg->identity.resolvers;
    char hint[96], path[64];

    for (size_t i = 0; r && r[i]; i++) {
        snprintf(path, sizeof(path), "identity.resolvers[%zu]", i);
        if (cq_cfg_choice_index(RESOLVERS, r[i]) < 0) {
            struct sugg sg = {.word = r[i]};
            for (size_t k = 0; RESOLVERS[k]; k++)
                cq_cfg_sugg_add(&sg, RESOLVERS[k]);
            c->plen = (size_t)snprintf(c->path, sizeof(c->path), "%s", path);
            return cq_cfg_fail(c, item(rn, i),
                               "unknown resolver '%s' (static, gitlab_email, roles_from_gitlab)%s",
                               r[i], cq_cfg_sugg_hint(&sg, hint));
        }
        if (position(r, r[i]) != (int)i) return fail_at(c, item(rn, i), path, "listed twice");
    }
    int st = position(r, "static"), ge = position(r, "gitlab_email"),
        rg = position(r, "roles_from_gitlab");
    if (r && st != 0 && st >= 0)
        return fail_at(c, item(rn, (size_t)st), "identity.resolvers",
                       "static must come first: the people: section always wins when it names "
                       "the user");
    if (rg >= 0 && (ge < 0 || ge > rg))
        return fail_at(c, item(rn, (size_t)rg), "identity.resolvers",
                       "roles_from_gitlab needs gitlab_email before it (it reads the GitLab user "
                       "that gitlab_email found)");
    if (rg >= 0 && cfg->identity.n_role_rules == 0)
        return fail_at(c, item(rn, (size_t)rg), "identity.roles_from_gitlab",
                       "resolver roles_from_gitlab is listed but no rule says which group gives "
                       "which role ({group: ops/sre, min_access: maintainer, role: sre})");
    if (rg < 0 && cfg->identity.n_role_rules > 0)
        return fail_at(c, at(sec, "roles_from_gitlab"), "identity.roles_from_gitlab",
                       "rules are given but identity.resolvers does not list roles_from_gitlab");
    if (ge < 0) return CQ_OK;
    if (!cfg->gitlab.base_url || !cfg->gitlab.base_url[0])
        return fail_at(c, item(rn, (size_t)ge), "identity.resolvers",
                       "gitlab_email needs gitlab.base_url");
    if (!cfg->identity.gitlab_token.ref && !cfg->gitlab.api_token.ref)
        return fail_at(c, item(rn, (size_t)ge), "identity.gitlab_token",
                       "gitlab_email needs an admin token to search users by e-mail "
                       "(identity.gitlab_token, else gitlab.api_token)");
    if (cfg->slack.enabled && !cfg->slack.bot_token.ref)
        return fail_at(c, item(rn, (size_t)ge), "slack.bot_token",
                       "gitlab_email needs the Slack bot token (users.info with the "
                       "users:read and users:read.email scopes)");
    if (cfg->feishu.enabled && (!cfg->feishu.app_id || !cfg->feishu.app_secret.ref))
        return fail_at(c, item(rn, (size_t)ge), "feishu.app_secret",
                       "gitlab_email needs feishu.app_id and feishu.app_secret (contact user "
                       "lookup with the contact:user.email:readonly permission)");
    return CQ_OK;
}
