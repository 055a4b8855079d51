/* config_platforms: the cross-section rules of the platforms issue 18 added (DingTalk,
 * Mattermost, Discord, Webex): what an enabled platform must have, and the shape of the
 * Discord public key. Called from cq_cfg_cross_check; errors as "file:line:col: key: reason". */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"
#include "yamltree.h"

static enum cq_rc need(struct ctx *c, const struct cq_ynode *root, const char *section,
                       const char *key) {
    const struct cq_ynode *sec = root ? cq_ynode_get(root, section) : NULL;
    c->plen = (size_t)snprintf(c->path, sizeof(c->path), "%s.%s", section, key);
    return cq_cfg_fail(c, sec, "required when %s.enabled is true", section);
}

enum cq_rc cq_cfg_check_platforms(struct ctx *c, struct cq_config *cfg,
                                  const struct cq_ynode *root) {
    if (cfg->dingtalk.enabled && !cfg->dingtalk.app_secret.ref)
        return need(c, root, "dingtalk", "app_secret");
    if (cfg->mattermost.enabled && cfg->mattermost.n_tokens == 0)
        return need(c, root, "mattermost", "tokens");
    if (cfg->webex.enabled && !cfg->webex.webhook_secret.ref)
        return need(c, root, "webex", "webhook_secret");
    if (cfg->discord.enabled && !cfg->discord.public_key)
        return need(c, root, "discord", "public_key");
    if (cfg->discord.enabled && !cfg->discord.application_id)
        return need(c, root, "discord", "application_id");
    const char *pk = cfg->discord.public_key;
    if (pk) {
        bool ok = strlen(pk) == 64;
        for (const char *p = pk; ok && *p; p++)
            ok = isxdigit((unsigned char)*p) != 0;
        if (!ok) {
            const struct cq_ynode *sec = root ? cq_ynode_get(root, "discord") : NULL;
            c->plen = (size_t)snprintf(c->path, sizeof(c->path), "discord.public_key");
            return cq_cfg_fail(c, sec ? cq_ynode_get(sec, "public_key") : NULL,
                               "must be the Ed25519 public key as 64 hex digits");
        }
    }
    c->plen = 0;
    c->path[0] = '\0';
    return CQ_OK;
}
