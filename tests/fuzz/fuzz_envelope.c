/* fuzz_envelope: libFuzzer target for the envelope decoders (cq_request_decode and
 * cq_result_decode); the whole input is the Kafka message value, decoded as both kinds.
 * Contract: a decoded envelope re-encodes, the encoding decodes to equal fields and encodes
 * to the same bytes again (nothing a decoder accepts is unreadable downstream); a failure
 * has a one-line reason and leaves the struct zeroed; a bound under the length is ETOOBIG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqtest_samples.h"
#include "envelope.h"
#include "fuzz_common.h"

static bool request_empty(const struct cq_request *r) {
    static const struct cq_request zero;
    return memcmp(r, &zero, sizeof(zero)) == 0;
}

static bool result_empty(const struct cq_result *r) {
    static const struct cq_result zero;
    return memcmp(r, &zero, sizeof(zero)) == 0;
}

static void check_request(const char *in, size_t len) {
    struct cq_err err = {0};
    struct cq_request rq, rq2;
    memset(&rq, 0, sizeof(rq)); /* memset, not = {0}: request_empty compares padding too */
    memset(&rq2, 0, sizeof(rq2));
    enum cq_rc rc = cq_request_decode(in, len, 0, &rq, &err);
    if (getenv("CQ_FUZZ_VERBOSE")) fprintf(stderr, "  request: %s\n", rc ? err.msg : "ok");
    if (rc != CQ_OK) {
        FZ_ASSERT(err.msg[0] != '\0' && fz_one_line(err.msg));
        FZ_ASSERT(request_empty(&rq));
        return;
    }
    char *again = cq_request_encode(&rq, &err);
    FZ_ASSERT(again != NULL);
    FZ_ASSERT(cq_request_decode(again, strlen(again), 0, &rq2, &err) == CQ_OK);
    FZ_ASSERT(cqt_request_equal(&rq, &rq2));
    char *third = cq_request_encode(&rq2, &err);
    FZ_ASSERT(third != NULL && strcmp(again, third) == 0);
    free(third);
    free(again);
    cq_request_clear(&rq2);
    cq_request_clear(&rq);
    if (len > 1) { /* the same message under a bound one byte too small */
        cq_err_clear(&err);
        FZ_ASSERT(cq_request_decode(in, len, len - 1, &rq, &err) == CQ_ETOOBIG);
        FZ_ASSERT(request_empty(&rq));
    }
}

static void check_result(const char *in, size_t len) {
    struct cq_err err = {0};
    struct cq_result rs, rs2;
    memset(&rs, 0, sizeof(rs));
    memset(&rs2, 0, sizeof(rs2));
    enum cq_rc rc = cq_result_decode(in, len, 0, &rs, &err);
    if (getenv("CQ_FUZZ_VERBOSE")) fprintf(stderr, "  result: %s\n", rc ? err.msg : "ok");
    if (rc != CQ_OK) {
        FZ_ASSERT(err.msg[0] != '\0' && fz_one_line(err.msg));
        FZ_ASSERT(result_empty(&rs));
        return;
    }
    char *again = cq_result_encode(&rs, &err);
    FZ_ASSERT(again != NULL);
    FZ_ASSERT(cq_result_decode(again, strlen(again), 0, &rs2, &err) == CQ_OK);
    FZ_ASSERT(cqt_result_equal(&rs, &rs2));
    char *third = cq_result_encode(&rs2, &err);
    FZ_ASSERT(third != NULL && strcmp(again, third) == 0);
    free(third);
    free(again);
    cq_result_clear(&rs2);
    cq_result_clear(&rs);
    if (len > 1) {
        cq_err_clear(&err);
        FZ_ASSERT(cq_result_decode(in, len, len - 1, &rs, &err) == CQ_ETOOBIG);
        FZ_ASSERT(result_empty(&rs));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Not NUL-terminated on purpose: Kafka values are not, and decode takes a length. */
    char *in = malloc(size ? size : 1);
    if (!in) abort();
    if (size) memcpy(in, data, size);
    check_request(in, size);
    check_result(in, size);
    free(in);
    return 0;
}
