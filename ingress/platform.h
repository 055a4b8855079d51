/* platform: the ingress's one table of routes. Each row is a platform's route (a chat
 * platform, or the GitLab hook): its name, the config key of its path, the media type it
 * posts, the headers its verifier reads, the function that verifies and normalises a body
 * into an outcome (slack.c, feishu.c, dingtalk.c, ...), and how a queued request is
 * answered. server.c routes, counts and answers through this table only; adding a platform
 * is a file with its handler and a row here (docs/CONTRIBUTING.md). */
#ifndef CQ_INGRESS_PLATFORM_H
#define CQ_INGRESS_PLATFORM_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "ingress.h"

/* How a request handed to Kafka is answered once the delivery report decided. */
enum ing_answer_style {
    ING_ANSWER_EVENT,      /* 200 {} when queued, else 503 so the platform re-sends */
    ING_ANSWER_SLACK_TEXT, /* always 200 {"response_type":"ephemeral","text":...} (Slack and
                              Mattermost slash commands show that text to the user) */
    ING_ANSWER_DISCORD     /* 200 {"type":5} (deferred) when queued, else 200 {"type":4,...}
                              with the ephemeral reason: Discord shows nothing for a 5xx */
};

/* One header a route's verifier reads: its name and where it goes in struct ing_headers. */
struct ing_header_slot {
    const char *name;
    size_t off; /* offsetof(struct ing_headers, ...) */
};

typedef void (*ing_handler)(const struct cq_config *cfg, const struct ing_headers *h,
                            const char *body, size_t len, time_t now, struct ing_verdict *out);

struct ing_route {
    const char *platform;                  /* "slack", "feishu", ..., "gitlab" */
    const char *label;                     /* metric label route="...", e.g. "slack_commands" */
    size_t path_off;                       /* offsetof(struct cq_config, ingress.<route>_path) */
    const char *media;                     /* accepted Content-Type (parameters ignored) */
    const struct ing_header_slot *headers; /* ends with {NULL, 0} */
    ing_handler handle;
    enum ing_answer_style answer;
};

/* Room for the counters server.c keeps per route. */
#define ING_MAX_ROUTES 24

/* The table and its length (<= ING_MAX_ROUTES). */
extern const struct ing_route ing_routes[];
extern const size_t ing_n_routes;

/* The index of the route whose configured path is url, or -1. */
int ing_route_find(const struct cq_config *cfg, const char *url);
/* The configured path of route i (borrowed from cfg). */
const char *ing_route_path(const struct cq_config *cfg, size_t i);

/* The answer for a handed-over request's outcome in the route's style (malloc'd; NULL when
 * out of memory), with its status and content type. */
char *ing_route_answer(const struct ing_route *rt, enum ing_outcome out, const char *cmdline,
                       const char *req_id, const char *why, int *status, const char **ctype);

#endif
