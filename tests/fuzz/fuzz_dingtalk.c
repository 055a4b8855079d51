/* fuzz_dingtalk: libFuzzer target for ing_dingtalk_event (the robot callback). Byte 0 & 3:
 * 0 signed with the right secret and clock, 1 signed with a wrong sign (must be 401), 2 signed
 * but more than the window off (must be 401), 3 no headers (401); the rest is the body. */
#include "crypto.h"
#include "fuzz_platforms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_platforms();
    if (size < 1) return 0;
    unsigned mode = data[0] & 3u;
    size_t n = size - 1;
    char *body = fz_dup(data + 1, n);
    const char *ts = "1700000000123";
    char *sign = cq_dingtalk_sign(FZ_DT_SECRET, ts);
    if (!sign) abort();
    if (mode == 1) sign[0] = sign[0] == 'A' ? 'B' : 'A';
    struct ing_headers h = {.dingtalk_ts = mode == 3 ? NULL : ts, .dingtalk_sign = sign};
    time_t now = (time_t)FZ_T0 + (mode == 2 ? 3700 : 1);
    struct ing_verdict v;
    ing_dingtalk_event(cfg, &h, body, n, now, &v);
    fz_check_verdict(&v, "dingtalk");
    if (mode != 0)
        FZ_ASSERT(v.kind == ING_REJECT && v.status == 401);
    else
        FZ_ASSERT(v.kind != ING_REJECT || v.status != 401);
    ing_verdict_clear(&v);
    free(sign);
    free(body);
    return 0;
}
