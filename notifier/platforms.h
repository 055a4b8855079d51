/* platforms: the notifier's platform table. A result's "platform" picks a row; a row holds
 * what the notifier needs to deliver to that platform: its route choice (which endpoint:
 * the request's own webhook while it lives, else the platform's API), its request builder
 * (formatter + URL + headers), its answer classifier and its 429 hint. Slack and Feishu keep
 * their own code paths in route.c/service.c (their rows have no hooks); a new platform is one
 * row here and one notifier/<platform>_send.c. */
#ifndef CQ_NTF_PLATFORMS_H
#define CQ_NTF_PLATFORMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify.h"
#include "envelope.h"
#include "errors.h"
#include "httpc.h"

struct job;

/* One platform request (built by a row's build hook, sent by route.c). */
struct ntf_plat_req {
    const char *method; /* "POST" (default) or "PATCH" */
    char url[2048];
    char hdr[3][1024]; /* header lines; empty ones are skipped */
    char *body;        /* new string, route.c frees it */
};

struct ntf_platform {
    const char *name;
    int id;                       /* enum platform */
    void (*route)(struct job *j); /* sets j->route and j->pace_key, then ntf_job_pace (or
                                     dead-letters / waits itself) */
    enum cq_rc (*build)(struct job *j, struct ntf_plat_req *out, struct cq_err *err);
    enum ntf_outcome (*classify)(const struct job *j, const struct ntf_attempt_answer *a, char *why,
                                 size_t why_len);
    /* 429: ms to wait, from the answer (NULL: the Retry-After header) */
    int64_t (*retry_hint_ms)(const struct cq_http_response *resp);
    bool (*needs_token)(const struct job *j); /* the send waits for a token first */
    void (*token_get)(struct job *j);         /* sets j->used_token, then ntf_job_send */
    void (*token_drop)(struct job *j);        /* the token j used was refused */
};

/* The row of a platform name, or NULL (unsupported). */
const struct ntf_platform *ntf_platform_find(const char *name);

/* A result as Markdown: "**<command>**: <status word>\n\n<text>[\n\n[Open pipeline #N](url)]",
 * cut to at most max_bytes bytes (max_chars code points when max_chars > 0) on a character
 * boundary, with a visible "… (cut: N more bytes)" note. New string or NULL (ENOMEM). */
char *ntf_plat_markdown(const struct cq_result *r, size_t max_bytes, size_t max_chars);

/* true when reply.expires_at is set and has passed (or cannot be read); false when it is in
 * the future or absent (absent: the webhook's own answer decides). */
bool ntf_plat_expired(const struct cq_result *r);

/* the senders (one file each) */
extern const struct ntf_platform ntf_mattermost_platform, ntf_discord_platform, ntf_webex_platform,
    ntf_dingtalk_platform;

/* What every platform's HTTP answer shares: 2xx delivered; no answer, 408, 429, 5xx retry;
 * any other status permanent ("http_<status>: <platform message>"). */
enum ntf_outcome ntf_plat_http_class(const struct ntf_attempt_answer *a, char *why, size_t why_len);

/* cJSON object -> new unformatted string, the object deleted; NULL with err on ENOMEM. */
struct cJSON;
char *ntf_plat_json(struct cJSON *o, struct cq_err *err);
#endif
