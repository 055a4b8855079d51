/* records.h: the worker's record encoders that do not need a job (records.c), shared by the
 * request path and the pipeline tracker, so each record has one encoder in the worker. */
#ifndef CQ_WORKER_RECORDS_H
#define CQ_WORKER_RECORDS_H

#include <stdbool.h>

#include "envelope.h"

/* Encodes r; one that cannot be encoded becomes a short result naming the request
 * ("failed" when a final, or always_failed), so the user is still answered. NULL only when
 * out of memory. Caller frees. */
char *w_result_encode(struct cq_result *r, bool always_failed);

/* Encodes an audit record; logs and returns NULL when it cannot. Caller frees. */
char *w_audit_encode(const struct cq_audit *a);

/* The "outcome" audit record of a tracked pipeline's request q. Caller frees. */
char *w_audit_outcome_json(const struct cq_request *q, const char *command, const char *status,
                           const char *text, long long pipeline_id, const char *pipeline_status,
                           const char *owner);

#endif
