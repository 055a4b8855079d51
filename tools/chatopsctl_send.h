/* chatopsctl_send: what chatopsctl_send.c (Slack, Feishu, the follower) and
 * chatopsctl_send_more.c (DingTalk, Mattermost, Discord, Webex) share: who sends where, and
 * the request built for the ingress. */
#ifndef CQ_CHATOPSCTL_SEND_H
#define CQ_CHATOPSCTL_SEND_H

#include <stddef.h>

#include "config.h"

struct target {
    const char *platform;
    const char *user_id, *user_name;
    const char *channel_id, *channel_name;
};

struct outgoing {
    char *url;
    char *body;
    size_t body_len;
    char *headers[6]; /* NULL-terminated */
    char *match;      /* Slack: response_url path; Feishu: message_id; the others: what a
                         reply of ours carries (path part or id) */
};

/* Builds the platform's request for the ingress at `ingress` (base URL), signed exactly as
 * the platform signs it; replies are to go to `sink` (the fake's base URL). 0 or 1 (the
 * reason printed on stderr). text: "deploy web production" (a leading "/ops" is dropped). */
int cq_ctl_build_more(const struct cq_config *cfg, const char *text, const struct target *t,
                      const char *ingress, const char *sink, struct outgoing *g);
/* True for dingtalk, mattermost, discord and webex. */
bool cq_ctl_more_platform(const char *platform);
/* The default sink of those (the fake's base URL, from the config), or NULL. Caller frees. */
char *cq_ctl_more_sink(const struct cq_config *cfg, const char *platform);
/* Prints a reply of theirs found in a sink log entry; true when it is a final one. */
bool cq_ctl_more_show(const char *body);

#endif
