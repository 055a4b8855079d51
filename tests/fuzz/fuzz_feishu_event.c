/* fuzz_feishu_event: libFuzzer target for ing_feishu_event (POST /feishu/events), plain and
 * encrypted. The first byte picks the mode, the rest is the body or its plaintext:
 *   mode 0: plain JSON to the config without encrypt_key (token check, message parsing)
 *   mode 1: the rest is the plaintext: encrypted here with the test key as Feishu does
 *           ({"encrypt": base64(IV + AES-256-CBC)}) and signed, so the decrypted JSON path is
 *           reached -> never a 401 "bad signature"
 *   mode 2: as mode 1 but the signature is wrong -> never produced (url_verification, being
 *           unsigned by design, may still be answered)
 *   mode 3: the rest is the outer body as-is, signed, to the encrypted config (base64, AES
 *           and padding errors) */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "fuzz_common.h"

/* Feishu's encrypted body. A fixed IV (not cq_aes256cbc_encrypt's random one) keeps a
 * crashing input reproducible byte for byte. Caller frees. */
static char *feishu_encrypt(const uint8_t *plain, size_t len) {
    static const uint8_t iv[16] = "fz-fixed-iv-0123";
    uint8_t key[32];
    uint8_t *ct = malloc(16 + len + 16);
    int n1 = 0, n2 = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ct || !ctx || len > (size_t)1 << 30) abort();
    cq_sha256(FZ_FS_KEY, strlen(FZ_FS_KEY), key);
    memcpy(ct, iv, 16);
    if (!EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv) ||
        !EVP_EncryptUpdate(ctx, ct + 16, &n1, plain, (int)len) ||
        !EVP_EncryptFinal_ex(ctx, ct + 16 + n1, &n2))
        abort();
    EVP_CIPHER_CTX_free(ctx);
    char *b64 = cq_base64_encode(ct, 16 + (size_t)n1 + (size_t)n2);
    size_t outlen = b64 ? strlen(b64) + 16 : 0;
    char *out = b64 ? malloc(outlen) : NULL;
    if (!out) abort();
    snprintf(out, outlen, "{\"encrypt\":\"%s\"}", b64);
    free(ct);
    free(b64);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned mode = data[0] & 3u;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct ing_headers h = {0};
    struct ing_verdict v;
    char *body;

    if (mode == 0) {
        body = fz_dup(p, n);
        ing_feishu_event(fz_config_main(), &h, body, n, 0, &v);
        fz_check_verdict(&v, "feishu");
        ing_verdict_clear(&v);
        free(body);
        return 0;
    }
    body = mode == 3 ? fz_dup(p, n) : feishu_encrypt(p, n);
    size_t blen = mode == 3 ? n : strlen(body);
    char sig[65];
    cq_feishu_signature(FZ_T0_STR, "nonce1", FZ_FS_KEY, body, blen, sig);
    if (mode == 2) sig[0] = sig[0] == '0' ? '1' : '0';
    h.lark_ts = FZ_T0_STR;
    h.lark_nonce = "nonce1";
    h.lark_sig = sig;
    ing_feishu_event(fz_config_encrypted(), &h, body, blen, 0, &v);
    fz_check_verdict(&v, "feishu");
    if (mode == 2) {
        FZ_ASSERT(v.kind != ING_REQUEST && v.kind != ING_PIPELINE);
        /* only url_verification (a challenge reply) or a rejection */
        FZ_ASSERT(v.kind == ING_REJECT ||
                  (v.kind == ING_REPLY && v.body && strncmp(v.body, "{\"challenge\":", 13) == 0));
    } else {
        FZ_ASSERT(v.kind != ING_REJECT || strcmp(v.reason, "bad signature") != 0);
        FZ_ASSERT(v.kind != ING_REJECT || strcmp(v.reason, "missing signature headers") != 0);
    }
    if (mode == 1) /* our own encryption always decrypts */
        FZ_ASSERT(v.kind != ING_REJECT || strcmp(v.reason, "cannot decrypt body") != 0);
    ing_verdict_clear(&v);
    free(body);
    return 0;
}
