/* fuzz_slack_event: libFuzzer target for ing_slack_event (POST /slack/events, the Events API).
 * The first byte picks the delivery: bits 0-1 == 3 signs with one hex digit wrong (must be a
 * 401), otherwise the body is signed correctly so the JSON and app_mention paths are reached;
 * bits 2-4 pick an X-Slack-Retry-Num header value (absent, or hostile numbers), which must end
 * up clamped to 0..CQ_ENV_MAX_RETRY_NUM in the envelope. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "fuzz_common.h"

static const char *const retry_nums[] = {
    NULL, "1", "2", "-5", "1000", "1001", "99999999999999999999", " 7"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_main();
    if (size < 1) return 0;
    bool bad_sig = (data[0] & 3u) == 3u;
    const char *retry = retry_nums[(data[0] >> 2) & 7u];
    size_t n = size - 1;
    char *body = fz_dup(data + 1, n);
    char sig[68];
    cq_slack_signature(FZ_SLACK_SECRET, FZ_T0_STR, body, n, sig);
    if (bad_sig) sig[3] = sig[3] == '0' ? '1' : '0';

    struct ing_headers h = {.slack_ts = FZ_T0_STR, .slack_sig = sig, .slack_retry_num = retry};
    struct ing_verdict v;
    ing_slack_event(cfg, &h, body, n, (time_t)FZ_T0, &v);
    fz_check_verdict(&v, "slack");
    if (bad_sig)
        FZ_ASSERT(v.kind == ING_REJECT && v.status == 401);
    else
        FZ_ASSERT(v.kind != ING_REJECT || v.status != 401);
    if (v.kind == ING_REQUEST) {
        long want = retry ? strtol(retry, NULL, 10) : 0;
        want = want < 0 ? 0 : want > CQ_ENV_MAX_RETRY_NUM ? CQ_ENV_MAX_RETRY_NUM : want;
        FZ_ASSERT(v.req.retry_num == (int)want);
    }
    ing_verdict_clear(&v);
    free(body);
    return 0;
}
