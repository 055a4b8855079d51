/* config_lookup: finding things in a loaded config by what a request names: a command by
 * its name, a person by a platform user id, a channel by a platform channel id. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "config_int.h"

const struct cq_command *cq_config_command(const struct cq_config *cfg, const char *name) {
    for (size_t i = 0; cfg && name && i < cfg->n_commands; i++)
        if (strcmp(cfg->commands[i].name, name) == 0) return &cfg->commands[i];
    return NULL;
}

const struct cq_person *cq_config_person(const struct cq_config *cfg, const char *platform,
                                         const char *user_id) {
    if (!cfg || !platform || !user_id) return NULL;
    for (size_t i = 0; i < cfg->n_people; i++)
        if (cq_cfg_in_list(cq_person_ids(&cfg->people[i], platform), user_id))
            return &cfg->people[i];
    return NULL;
}

char **cq_person_ids(const struct cq_person *p, const char *platform) {
    static const struct {
        const char *platform;
        size_t off;
    } lists[] = {
        {"slack", offsetof(struct cq_person, slack_ids)},
        {"feishu", offsetof(struct cq_person, feishu_ids)},
        {"dingtalk", offsetof(struct cq_person, dingtalk_ids)},
        {"mattermost", offsetof(struct cq_person, mattermost_ids)},
        {"discord", offsetof(struct cq_person, discord_ids)},
        {"webex", offsetof(struct cq_person, webex_ids)},
    };
    for (size_t i = 0; p && platform && i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(lists[i].platform, platform) == 0)
            return *(char **const *)((const char *)p + lists[i].off);
    return NULL;
}

const struct cq_channel *cq_config_channel(const struct cq_config *cfg, const char *platform,
                                           const char *channel_id) {
    for (size_t i = 0; cfg && platform && channel_id && i < cfg->n_channels; i++)
        if (strcmp(cfg->channels[i].platform, platform) == 0 &&
            strcmp(cfg->channels[i].id, channel_id) == 0)
            return &cfg->channels[i];
    return NULL;
}
