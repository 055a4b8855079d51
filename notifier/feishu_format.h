/* feishu_format: turns a result (chatops.results) into a Feishu/Lark message body for
 * /im/v1/messages (send to a chat) or /im/v1/messages/{id}/reply: a text message, or an
 * interactive card when the result carries a pipeline link. "content" is a JSON *string*
 * as the API wants; "uuid" (request id + step + seq) lets Feishu drop a duplicate send. */
#ifndef CQ_FEISHU_FORMAT_H
#define CQ_FEISHU_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"
#include "errors.h"

#define NTF_FEISHU_UUID_MAX 50           /* Feishu's limit on uuid */
#define NTF_FEISHU_TEXT_BYTES 100000     /* text message body text (API limit 150 KB) */
#define NTF_FEISHU_CARD_TEXT_BYTES 25000 /* card markdown (API limit 30 KB per card) */

/* Writes the dedupe uuid for (request_id, step, seq) into out: "<request_id>-<a|p|f>-<seq>"
 * when it fits in 50 chars, else "h-" + the first 48 hex chars of SHA-256 of that string
 * (stable across notifier copies). CQ_EINVAL when request_id or step is missing. */
enum cq_rc ntf_feishu_uuid(const struct cq_result *r, char out[NTF_FEISHU_UUID_MAX + 1]);

/* Message content (the JSON string that goes into "content") and its msg_type ("text" or
 * "interactive", static). max_text 0 = the defaults above; longer text is cut at a UTF-8
 * boundary with a note. Returns a new string (caller frees) or NULL with err. */
char *ntf_feishu_content(const struct cq_result *r, size_t max_text, const char **msg_type,
                         size_t *cut_bytes, struct cq_err *err);

/* Whole request body. reply: {"msg_type","content","uuid"} for .../reply; otherwise
 * {"receive_id": chat_id, "msg_type","content","uuid"} for send (chat_id from the result's
 * reply route; CQ_EINVAL when absent). Returns a new string or NULL with err. */
char *ntf_feishu_body(const struct cq_result *r, bool reply, size_t max_text, struct cq_err *err);

#endif
