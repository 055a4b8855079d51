/* cqtest_samples: see cqtest_samples.h. */
#include "cqtest_samples.h"

#include <string.h>

void cqt_fill_request(struct cq_request *r) {
    memset(r, 0, sizeof(*r));
    r->id = "0b7c8e52-3c1a-4a7e-9d3b-6d1f0c2a9e41";
    r->received_at = "2024-05-01T12:00:00.123Z";
    r->platform = "slack";
    r->tenant = "T0001";
    r->channel_id = "C2147483705";
    r->channel_name = "ops";
    r->user_id = "U2147483697";
    r->user_name = "alice";
    r->command = "deploy";
    r->text = "web production";
    r->reply.response_url = "https://hooks.slack.com/commands/T1/397/96rG";
    r->reply.message_id = "om_123";
    r->reply.chat_id = "oc_456";
    r->reply.thread_ts = "1531420618.000100";
    r->dedupe_key = "slack:398738663015.47445629121.803a0bc8";
    r->retry_num = 2;
}

void cqt_fill_result(struct cq_result *r) {
    memset(r, 0, sizeof(*r));
    r->request_id = "0b7c8e52-3c1a-4a7e-9d3b-6d1f0c2a9e41";
    r->step = "final";
    r->status = "failed";
    r->platform = "slack";
    r->reply.response_url = "https://hooks.slack.com/commands/T1/397/96rG";
    r->reply.chat_id = "C2147483705";
    r->reply.thread_ts = "1531420618.000100";
    r->reply.message_id = "om_1";
    r->text = "pipeline #42 failed\njob `test`: exit 1";
    r->command = "deploy web production";
    r->user_name = "alice";
    r->response_type = "in_channel";
    r->seq = 3;
    r->pipeline.id = 9007199254740991LL;
    r->pipeline.web_url = "https://gitlab.example.com/g/p/-/pipelines/42";
    r->pipeline.status = "failed";
    r->produced_at = "2024-05-01T12:00:05.456Z";
}

static bool same_str(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

bool cqt_request_equal(const struct cq_request *a, const struct cq_request *b) {
    return same_str(a->id, b->id) && same_str(a->received_at, b->received_at) &&
           same_str(a->platform, b->platform) && same_str(a->tenant, b->tenant) &&
           same_str(a->channel_id, b->channel_id) && same_str(a->channel_name, b->channel_name) &&
           same_str(a->user_id, b->user_id) && same_str(a->user_name, b->user_name) &&
           same_str(a->command, b->command) && same_str(a->text, b->text) &&
           same_str(a->reply.response_url, b->reply.response_url) &&
           same_str(a->reply.message_id, b->reply.message_id) &&
           same_str(a->reply.chat_id, b->reply.chat_id) &&
           same_str(a->reply.thread_ts, b->reply.thread_ts) &&
           same_str(a->dedupe_key, b->dedupe_key) && a->retry_num == b->retry_num;
}

bool cqt_result_equal(const struct cq_result *a, const struct cq_result *b) {
    return same_str(a->request_id, b->request_id) && same_str(a->step, b->step) &&
           same_str(a->status, b->status) && same_str(a->platform, b->platform) &&
           same_str(a->reply.response_url, b->reply.response_url) &&
           same_str(a->reply.message_id, b->reply.message_id) &&
           same_str(a->reply.chat_id, b->reply.chat_id) &&
           same_str(a->reply.thread_ts, b->reply.thread_ts) && same_str(a->text, b->text) &&
           same_str(a->command, b->command) && same_str(a->user_name, b->user_name) &&
           same_str(a->response_type, b->response_type) && a->seq == b->seq &&
           a->pipeline.id == b->pipeline.id && same_str(a->pipeline.web_url, b->pipeline.web_url) &&
           same_str(a->pipeline.status, b->pipeline.status) &&
           same_str(a->produced_at, b->produced_at);
}
