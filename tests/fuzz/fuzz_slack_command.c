/* fuzz_slack_command: libFuzzer target for ing_slack_command (POST /slack/commands). The first
 * byte picks how the rest is delivered, so most inputs get past the v0 signature into the form
 * parser and the envelope, while some probe the verification itself:
 *   mode 0: signed correctly for the body at a fresh timestamp -> never a 401
 *   mode 1: signed correctly, the clock skewed by (byte 2 - 128) * 5 s -> 401 "stale timestamp"
 *           exactly when the skew is over limits.replay_window_s (300 s)
 *   mode 2: the raw bytes with a wrong (or, bit 2 set, no) signature -> never produced; only
 *           ssl_check (unsigned by design) may be answered
 *   mode 3: "TIMESTAMP\nBODY", signed with that hostile X-Slack-Request-Timestamp -> produced
 *           only for a plain decimal within the window */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_main();
    if (size < 1) return 0;
    unsigned mode = data[0] & 3u;
    bool no_sig = (data[0] & 4u) != 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    long long skew = 0;
    char ts[40] = FZ_T0_STR, sig[68];

    if (mode == 1) {
        if (n < 1) return 0;
        skew = ((long long)p[0] - 128) * 5;
        p++;
        n--;
    } else if (mode == 3) {
        const uint8_t *nl = memchr(p, '\n', n);
        if (!nl || (size_t)(nl - p) >= sizeof(ts)) return 0;
        size_t tl = (size_t)(nl - p);
        memcpy(ts, p, tl);
        ts[tl] = '\0'; /* a NUL inside ends the header value, as in HTTP parsing */
        n -= tl + 1;
        p = nl + 1;
    }
    char *body = fz_dup(p, n);
    cq_slack_signature(FZ_SLACK_SECRET, ts, body, n, sig);
    if (mode == 2) sig[3] = sig[3] == '0' ? '1' : '0'; /* one hex digit off */

    struct ing_headers h = {.slack_ts = ts, .slack_sig = mode == 2 && no_sig ? NULL : sig};
    struct ing_verdict v;
    ing_slack_command(cfg, &h, body, n, (time_t)(FZ_T0 + skew), &v);
    fz_check_verdict(&v, "slack");

    switch (mode) {
    case 0:
        FZ_ASSERT(v.kind != ING_REJECT || v.status != 401);
        break;
    case 1:
        if (skew > 300 || skew < -300)
            FZ_ASSERT(v.kind == ING_REJECT && v.status == 401 &&
                      strcmp(v.reason, "stale timestamp") == 0);
        else
            FZ_ASSERT(v.kind != ING_REJECT || v.status != 401);
        break;
    case 2:
        /* Security property: nothing wrongly signed or unsigned is ever produced. */
        FZ_ASSERT(v.kind == ING_REPLY || (v.kind == ING_REJECT && v.status == 401));
        if (v.kind == ING_REPLY) FZ_ASSERT(h.slack_sig == NULL);
        break;
    default:
        if (v.kind == ING_REQUEST) {
            char *end = NULL;
            long long t = strtoll(ts, &end, 10);
            FZ_ASSERT(ts[0] && *end == '\0' && t >= 0 && t - FZ_T0 <= 300 && FZ_T0 - t <= 300);
        }
        break;
    }
    ing_verdict_clear(&v);
    free(body);
    return 0;
}
