/* buttons: the choice buttons a result may carry (issue 16: "buttons": {"kind", "request_id"}),
 * rendered for Slack (a Block Kit actions block: action_id "chatops_<name>", value = the
 * request id, which the ingress turns back into a request) and Feishu (card buttons whose value
 * is {"chatops": name, "request_id": id}, sent back as card.action.trigger). Pure. */
#ifndef CQ_NOTIFIER_BUTTONS_H
#define CQ_NOTIFIER_BUTTONS_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "envelope.h"

/* Appends the actions block for r's buttons to blocks (nothing when r has none). 0, or -1
 * when out of memory. */
int ntf_slack_choice_buttons(cJSON *blocks, const struct cq_result *r);
/* Appends an "action" element with r's buttons to a card's elements. 0 or -1. */
int ntf_feishu_choice_buttons(cJSON *elements, const struct cq_result *r);

/* Routing (buttons_route.c): a Feishu card with buttons keeps its message_id once delivered,
 * and the outcome that replaces the buttons ("done") PATCHes that card in place
 * (notifier/feishu_update.c's mechanism; a refused PATCH posts a new message). */
struct job;
bool ntf_buttons_shown(const struct job *j);
bool ntf_buttons_resolved(const struct job *j);

#endif
