/* subscriptions: per-channel GitLab event subscriptions kept in Redis (issue 15): the chat
 * built-ins subscribe / unsubscribe / subscriptions write and list them; the event router
 * (events.c) reads them with one script. Keys (redis.prefix first):
 *   ev:chats                  set of "<platform>|<chat id>" that have any
 *   ev:chat:<platform>|<chat> hash: subscription name (its project pattern) -> JSON
 *                             {"projects":[...],"kinds":[...],"statuses":[...],"refs":[...],
 *                              "environments":[...],"by":"<user>"} */
#ifndef CQ_WORKER_SUBSCRIPTIONS_H
#define CQ_WORKER_SUBSCRIPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "events.h"

/* "slack|C1" into its platform and chat id; false when it is not of that form. */
bool w_subs_split_chat(const char *member, char *platform, size_t plen, char *chat, size_t clen);
/* Whether a stored subscription (its JSON) matches the event; false when unreadable. */
bool w_subs_json_matches(const char *json, const struct w_ev_facts *f);

/* The words after `subscribe`: PROJECT [KIND|STATUS|ref=GLOB|env=GLOB ...] into the stored
 * JSON (new string, caller frees). NULL with a one-line reason in why (for the user). */
char *w_subs_parse(const char *const *words, size_t n, const char *by, char *why, size_t whylen);

#endif
