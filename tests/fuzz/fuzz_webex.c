/* fuzz_webex: libFuzzer target for ing_webex_event. Byte 0 & 1: 0 signed (HMAC-SHA1, the
 * JSON paths), 1 a signature digit wrong (must be 401); the rest is the body. A request must
 * carry text_source "webex" and its message id. */
#include "crypto.h"
#include "fuzz_platforms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_platforms();
    if (size < 1) return 0;
    bool bad = data[0] & 1u;
    size_t n = size - 1;
    char *body = fz_dup(data + 1, n);
    char sig[41];
    if (cq_hmac_sha1_hex(FZ_WX_SECRET, body, n, sig) != CQ_OK) abort();
    if (bad) sig[0] = sig[0] == '0' ? '1' : '0';
    struct ing_headers h = {.webex_sig = sig};
    struct ing_verdict v;
    ing_webex_event(cfg, &h, body, n, (time_t)FZ_T0, &v);
    fz_check_verdict(&v, "webex");
    if (bad)
        FZ_ASSERT(v.kind == ING_REJECT && v.status == 401);
    else
        FZ_ASSERT(v.kind != ING_REJECT || v.status != 401);
    if (v.kind == ING_REQUEST)
        FZ_ASSERT(v.req.text_source && v.req.reply.message_id && v.req.reply.thread_ts);
    ing_verdict_clear(&v);
    free(body);
    return 0;
}
