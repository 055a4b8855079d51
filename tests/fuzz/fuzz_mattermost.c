/* fuzz_mattermost: libFuzzer target for ing_mattermost_command (form POST). Byte 0 & 1: 0 the
 * body as is (a token must be in it to pass), 1 the body with "&token=<the right token>"
 * appended so the form and envelope paths are reached; the rest is the body. Without the
 * right token nothing but a 401 (or 500 on memory) may come out. */
#include "fuzz_platforms.h"

static bool has(const char *s, size_t n, const char *w) {
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++)
        if (memcmp(s + i, w, wl) == 0) return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_platforms();
    if (size < 1) return 0;
    bool add = data[0] & 1u;
    size_t n = size - 1;
    static const char tok[] = "&token=" FZ_MM_TOKEN;
    char *body = malloc(n + sizeof(tok));
    if (!body) abort();
    memcpy(body, data + 1, n);
    if (add) memcpy(body + n, tok, sizeof(tok) - 1), n += sizeof(tok) - 1;
    body[n] = '\0';
    struct ing_headers h = {0};
    struct ing_verdict v;
    ing_mattermost_command(cfg, &h, body, n, (time_t)FZ_T0, &v);
    fz_check_verdict(&v, "mattermost");
    if (!add && !has(body, n, FZ_MM_TOKEN))
        FZ_ASSERT(v.kind == ING_REJECT && (v.status == 401 || v.status == 500));
    ing_verdict_clear(&v);
    free(body);
    return 0;
}
