/* slack_format: turns a result (chatops.results) into a Slack Block Kit message body for
 * response_url, chat.postMessage or chat.update. Status, command and who ran it, a pipeline
 * link button, and the text (log tails included) split into section blocks within Slack's
 * limits; whatever does not fit is cut, and a note in the message says so. Pure functions. */
#ifndef CQ_SLACK_FORMAT_H
#define CQ_SLACK_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"
#include "errors.h"

/* Slack's documented limits (characters = Unicode code points). */
#define NTF_SLACK_SECTION_CHARS 3000
#define NTF_SLACK_MAX_BLOCKS 50
#define NTF_SLACK_MESSAGE_CHARS 40000

struct ntf_slack_limits {
    int section_chars; /* per section text; 0 = NTF_SLACK_SECTION_CHARS */
    int max_blocks;    /* 0 = NTF_SLACK_MAX_BLOCKS */
    int message_chars; /* sum of all texts; 0 = NTF_SLACK_MESSAGE_CHARS */
};

enum ntf_slack_target {
    NTF_SLACK_RESPONSE_URL, /* {response_type, replace_original, text, blocks} */
    NTF_SLACK_POST_MESSAGE, /* {channel, text, blocks[, thread_ts]} */
    NTF_SLACK_UPDATE,       /* {channel, ts, text, blocks} */
};

struct ntf_slack_msg_opts {
    enum ntf_slack_target target;
    bool replace_original;                 /* response_url only */
    const char *channel;                   /* post/update: required (borrowed) */
    const char *ts;                        /* update: required (borrowed) */
    const char *thread_ts;                 /* post: optional (borrowed) */
    const struct ntf_slack_limits *limits; /* NULL = Slack's limits */
};

/* Returns a new JSON body (caller frees) or NULL with err (CQ_EINVAL missing channel/ts,
 * CQ_ENOMEM). When text had to be cut, *cut_chars (if not NULL) gets the number of
 * characters left out (0 otherwise). */
char *ntf_slack_format(const struct cq_result *r, const struct ntf_slack_msg_opts *o,
                       size_t *cut_chars, struct cq_err *err);

/* Escapes &, <, > for Slack mrkdwn. Returns a new string; caller frees. NULL on ENOMEM. */
char *ntf_slack_escape(const char *s);

/* Splits s into chunks of at most max_chars code points, preferring line breaks, never
 * inside a UTF-8 sequence or an &entity;, and closing/re-opening a ``` code fence that
 * crosses a chunk boundary. Returns a new NULL-terminated array of new strings (free with
 * ntf_slack_chunks_free); *n gets the count. NULL on ENOMEM or max_chars < 16. */
char **ntf_slack_split(const char *s, size_t max_chars, size_t *n);
void ntf_slack_chunks_free(char **chunks);

/* The pipeline link's button label, "Open pipeline #<id>" ("Open pipeline" without an id);
 * the Feishu card uses it too. */
void ntf_pipeline_label(char *buf, size_t n, long long id);

#endif
