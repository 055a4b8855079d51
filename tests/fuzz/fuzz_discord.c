/* fuzz_discord: libFuzzer target for ing_discord_interaction. Byte 0 & 3: 0 signed with the
 * test key (the JSON, PING and option-flattening paths), 1 one hex digit of the signature
 * wrong (must be 401), 2 signed but stale (401), 3 no signature (401); the rest is the body.
 * A command's text must stay within the text limit or be refused, never truncated. */
#include "crypto.h"
#include "fuzz_platforms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_platforms();
    if (size < 1) return 0;
    unsigned mode = data[0] & 3u;
    size_t n = size - 1;
    char *body = fz_dup(data + 1, n);
    char sig[129];
    if (cq_ed25519_sign_hex(FZ_DC_SEED, FZ_T0_STR, body, n, sig) != CQ_OK) abort();
    if (mode == 1) sig[7] = sig[7] == '0' ? '1' : '0';
    struct ing_headers h = {.discord_ts = FZ_T0_STR, .discord_sig = mode == 3 ? NULL : sig};
    struct ing_verdict v;
    ing_discord_interaction(cfg, &h, body, n, (time_t)FZ_T0 + (mode == 2 ? 301 : 0), &v);
    fz_check_verdict(&v, "discord");
    if (mode != 0)
        FZ_ASSERT(v.kind == ING_REJECT && v.status == 401);
    else
        FZ_ASSERT(v.kind != ING_REJECT || v.status != 401);
    if (v.kind == ING_REQUEST) FZ_ASSERT(v.req.reply.response_url && v.req.reply.app_id);
    ing_verdict_clear(&v);
    free(body);
    return 0;
}
