/* answers: what the ingress answers once Kafka has (or has not) confirmed a handed-over request,
 * as the user or the platform reads it. server.c counts, logs and sends; this file only words.
 * A Slack slash command always gets 200 with an ephemeral message (Slack shows any other status
 * as a generic "dispatch_failed" and drops the text); events and hooks get {} or a 503 so the
 * platform re-sends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "utf8.h"

/* The command line as the answers quote it: at most CMD_QUOTE bytes, cut at a character
 * boundary (the text is valid UTF-8) with "..." when cut, so the rest of an answer (the
 * request id) always fits and the reply stays valid UTF-8. */
#define CMD_QUOTE 200
static void quote_cmd(const char *cmd, char out[CMD_QUOTE + 4]) {
    size_t n = strlen(cmd);
    if (n <= CMD_QUOTE) {
        memcpy(out, cmd, n + 1);
        return;
    }
    n = cq_utf8_prefix(cmd, n, CMD_QUOTE); /* never splits a character */
    memcpy(out, cmd, n);
    memcpy(out + n, "...", 4);
}

static char *slack_text(const char *text) {
    return ing_slack_ephemeral(text); /* one allocation, no cJSON tree */
}

char *ing_answer_text(enum ing_outcome out, bool slack_command, const char *cmdline,
                      const char *req_id, const char *why, int *status, const char **ctype) {
    char text[1024], cmd[CMD_QUOTE + 4];
    quote_cmd(cmdline ? cmdline : "", cmd);
    if (out == ING_QUEUED) {
        *status = 200;
        *ctype = "application/json";
        if (!slack_command) return strdup("{}");
        snprintf(text, sizeof(text), "queued: %s \xC2\xB7 req %.8s", cmd, req_id);
        return slack_text(text);
    }
    if (slack_command) {
        if (out == ING_UNKNOWN)
            /* It may be in the log: the worker may run it. Saying "not run" would invite a
             * manual retry, which gets a new trigger id and so a second run. */
            snprintf(text, sizeof(text),
                     "%s: outcome unknown. The queue did not confirm it in time (%s), but it "
                     "may have been queued and may still run. Do not simply retry: wait a "
                     "minute for its reply, or check with `pipelines`. Request id %s.",
                     cmd, why, req_id);
        else
            snprintf(text, sizeof(text),
                     "%s was NOT run: the queue did not confirm it (%s). Please retry.", cmd, why);
        *status = 200;
        *ctype = "application/json";
        return slack_text(text);
    }
    if (out == ING_UNKNOWN)
        /* 5xx: the platform re-sends with the same event id (Feishu event_id, Slack event_id,
         * GitLab hook key), which the worker deduplicates, so a re-send of a message that did
         * land does not run twice, and one that did not is not lost */
        snprintf(text, sizeof(text),
                 "outcome unknown: %s; a re-send with the same event id is deduplicated\n", why);
    else
        snprintf(text, sizeof(text), "not queued: %s; retry later\n", why); /* 5xx: re-sent */
    *status = 503;
    *ctype = "text/plain; charset=utf-8";
    return strdup(text);
}
