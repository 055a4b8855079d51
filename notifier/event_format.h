/* event_format: the look of a GitLab event notification (a result carrying "event", issue
 * 15) shared by the Slack and Feishu formatters: the emoji and label follow the event's
 * status ("Failed", "Fixed", "Running"...) rather than the command-result words, and the
 * message links to the event's page. Pure. */
#ifndef CQ_NOTIFIER_EVENT_FORMAT_H
#define CQ_NOTIFIER_EVENT_FORMAT_H

#include <stdbool.h>

#include "envelope.h"

struct ntf_event_look {
    const char *emoji; /* Slack :shortcode: */
    const char *icon;  /* Unicode, for Feishu */
    const char *label;
    const char *color; /* Feishu card header template */
};

/* False when r is not an event notification. */
bool ntf_event_look(const struct cq_result *r, struct ntf_event_look *out);

/* Block Kit: a section of "fields" (Project, Ref, Environment, Author; escaped), or NULL when
 * r carries none of them (or out of memory). Caller owns it. */
struct cJSON;
struct cJSON *ntf_event_slack_fields(const struct cq_result *r);
/* Feishu card: a "div" element with the same fields as plain text, or NULL. Caller owns it. */
struct cJSON *ntf_event_feishu_fields(const struct cq_result *r);

/* The link button's label for an event ("Open in GitLab"). */
#define NTF_EVENT_LINK_LABEL "Open in GitLab"

#endif
