/* cqtest_samples: sample envelopes and platform events shared by the unit tests, and
 * field-by-field envelope comparison. */
#ifndef CQTEST_SAMPLES_H
#define CQTEST_SAMPLES_H

#include <stdbool.h>

#include "envelope.h"

/* A request / result with every field set (static strings; do not clear). */
void cqt_fill_request(struct cq_request *r);
void cqt_fill_result(struct cq_result *r);

/* Every field equal (strings by content, NULL only equal to NULL). */
bool cqt_request_equal(const struct cq_request *a, const struct cq_request *b);
bool cqt_result_equal(const struct cq_result *a, const struct cq_result *b);

/* A real-shaped Feishu im.message.receive_v1 event (schema 2.0) from a group chat whose
 * text "@_user_1 deploy web production @_user_2" mentions the bot (open_id ou_bot) and
 * another user; TOKEN is its verification token (a string literal). */
#define CQT_FEISHU_MESSAGE(TOKEN)                                                                  \
    "{\"schema\":\"2.0\",\"header\":{\"event_id\":\"5e3702a84e847582be8db7fb73283c02\","           \
    "\"event_type\":\"im.message.receive_v1\",\"create_time\":\"1608725989000\",\"token\":"        \
    "\"" TOKEN "\",\"app_id\":\"cli_a1\",\"tenant_key\":\"2ca1d211f64f6438\"},\"event\":{"         \
    "\"sender\":{\"sender_id\":{\"union_id\":\"on_8ed6\",\"user_id\":\"e33ggbyz\","                \
    "\"open_id\":\"ou_84aad35d\"},\"sender_type\":\"user\","                                       \
    "\"tenant_key\":\"2ca1d211f64f6438\"},"                                                        \
    "\"message\":{\"message_id\":\"om_5ce6d572455d361153b7cb51da133945\",\"root_id\":\"\","        \
    "\"parent_id\":\"\",\"create_time\":\"1609073151345\",\"chat_id\":"                            \
    "\"oc_5ce6d572455d361153b7xx51da133945\",\"chat_type\":\"group\","                             \
    "\"message_type\":\"text\","                                                                   \
    "\"content\":\"{\\\"text\\\":\\\"@_user_1 deploy web production @_user_2\\\"}\","              \
    "\"mentions\":[{\"key\":\"@_user_1\",\"id\":{\"union_id\":\"on_b\",\"user_id\":\"\","          \
    "\"open_id\":\"ou_bot\"},\"name\":\"ChatOps\",\"tenant_key\":\"2ca1\"},{\"key\":"              \
    "\"@_user_2\",\"id\":{\"open_id\":\"ou_other\"},\"name\":\"Tom\"}]}}}"

#endif
