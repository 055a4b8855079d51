/* config_events: the cross-checks of the GitLab event keys (issue 15): every subscription
 * names configured channels, known event kinds and known statuses, and names are unique.
 * Errors are "file:line:col: subscriptions[i].key: reason" like every config error. */
#include <stdio.h>
#include <string.h>

#include "config_int.h"
#include "envelope.h"

/* Statuses a subscription may name: GitLab's pipeline/job/deployment statuses and the two
 * transitions the router derives (worker/events.c). */
static const char *const STATUSES[] = {"created",   "waiting_for_resource",
                                       "preparing", "pending",
                                       "running",   "success",
                                       "failed",    "canceled",
                                       "skipped",   "manual",
                                       "scheduled", "blocked",
                                       "fixed",     "broken",
                                       NULL};

static const struct cq_ynode *item_key(const struct cq_ynode *list, size_t i, const char *key) {
    const struct cq_ynode *it =
        list && list->kind == CQ_YNODE_SEQ && i < list->n ? list->items[i] : list;
    const struct cq_ynode *v = cq_ynode_get(it, key);
    return v ? v : it;
}

static bool in(const char *const *l, const char *s) {
    for (size_t i = 0; l[i]; i++)
        if (strcmp(l[i], s) == 0) return true;
    return false;
}

static bool channel_known(const struct cq_config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_channels; i++)
        if (cfg->channels[i].name && strcmp(cfg->channels[i].name, name) == 0) return true;
    return false;
}

enum cq_rc cq_cfg_events_check(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root) {
    const struct cq_ynode *subs = cq_ynode_get(root, "subscriptions");
    for (size_t i = 0; i < cfg->n_subscriptions; i++) {
        const struct cq_subscription *s = &cfg->subscriptions[i];
        c->plen = (size_t)snprintf(c->path, sizeof(c->path), "subscriptions[%zu]", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->subscriptions[j].name, s->name) == 0)
                return cq_cfg_fail(c, item_key(subs, i, "name"), "name '%s' is used twice",
                                   s->name);
        for (size_t k = 0; s->channels && s->channels[k]; k++)
            if (!channel_known(cfg, s->channels[k])) {
                char buf[64];
                cq_cfg_push_key(c, "channels");
                return cq_cfg_fail(
                    c, item_key(subs, i, "channels"),
                    "'%s' is not a channel in channels:", cq_cfg_shown(s->channels[k], buf));
            }
        for (size_t k = 0; s->kinds && s->kinds[k]; k++)
            if (!in(cq_event_kinds, s->kinds[k])) {
                char buf[64];
                cq_cfg_push_key(c, "kinds");
                return cq_cfg_fail(c, item_key(subs, i, "kinds"),
                                   "'%s' is not an event kind (push, tag_push, merge_request, "
                                   "pipeline, job, deployment, release, issue, note)",
                                   cq_cfg_shown(s->kinds[k], buf));
            }
        for (size_t k = 0; s->statuses && s->statuses[k]; k++)
            if (!in(STATUSES, s->statuses[k])) {
                char buf[64];
                cq_cfg_push_key(c, "statuses");
                return cq_cfg_fail(c, item_key(subs, i, "statuses"),
                                   "'%s' is not a status (GitLab's, or fixed / broken)",
                                   cq_cfg_shown(s->statuses[k], buf));
            }
    }
    c->plen = 0;
    c->path[0] = '\0';
    return CQ_OK;
}
