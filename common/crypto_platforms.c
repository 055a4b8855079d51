/* crypto_platforms: the signatures of the platforms issue 18 added, all through OpenSSL:
 * DingTalk's HMAC-SHA256 sign, Webex's HMAC-SHA1 hex and Discord's Ed25519 (EVP raw keys,
 * one-shot EVP_DigestVerify). The signing halves serve chatopsctl send and the tests. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

char *cq_dingtalk_sign(const char *secret, const char *ts) {
    size_t n = strlen(ts) + 1 + strlen(secret);
    char *msg = malloc(n + 1);
    if (!msg) return NULL;
    snprintf(msg, n + 1, "%s\n%s", ts, secret);
    char *sig = cq_hmac_sha256_base64(secret, strlen(secret), msg, n);
    free(msg);
    return sig;
}

enum cq_rc cq_hmac_sha1_hex(const char *key, const void *body, size_t len, char out[41]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!HMAC(EVP_sha1(), key, (int)strlen(key), body, len, md, &mdlen) || mdlen != 20)
        return CQ_ENOMEM;
    cq_hex(md, mdlen, out);
    return CQ_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Exactly n bytes from 2n hex digits; false otherwise. */
static bool unhex(const char *s, uint8_t *out, size_t n) {
    if (!s || strlen(s) != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* ts + body in one buffer: Ed25519 signs the whole message in one pass. */
static uint8_t *join(const char *ts, const void *body, size_t len, size_t *n) {
    size_t tl = strlen(ts);
    uint8_t *m = malloc(tl + len + 1);
    if (!m) return NULL;
    memcpy(m, ts, tl);
    if (len) memcpy(m + tl, body, len);
    *n = tl + len;
    return m;
}

bool cq_ed25519_verify_hex(const char *pub_hex, const char *ts, const void *body, size_t len,
                           const char *sig_hex) {
    uint8_t pub[32], sig[64];
    size_t n = 0;
    bool ok = false;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *ctx = NULL;
    uint8_t *msg = NULL;
    if (!ts || !unhex(pub_hex, pub, sizeof(pub)) || !unhex(sig_hex, sig, sizeof(sig))) goto out;
    if (!(msg = join(ts, body, len, &n))) goto out;
    key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
    ctx = EVP_MD_CTX_new();
    if (!key || !ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1) goto out;
    ok = EVP_DigestVerify(ctx, sig, sizeof(sig), msg, n) == 1;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    free(msg);
    return ok;
}

enum cq_rc cq_ed25519_sign_hex(const char *seed_hex, const char *ts, const void *body, size_t len,
                               char out[129]) {
    uint8_t seed[32], sig[64];
    size_t n = 0, siglen = sizeof(sig);
    enum cq_rc rc = CQ_EINVAL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *ctx = NULL;
    uint8_t *msg = NULL;
    out[0] = '\0';
    if (!ts || !unhex(seed_hex, seed, sizeof(seed))) goto out;
    rc = CQ_ENOMEM;
    if (!(msg = join(ts, body, len, &n))) goto out;
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    ctx = EVP_MD_CTX_new();
    if (!key || !ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, msg, n) != 1 || siglen != sizeof(sig))
        goto out;
    cq_hex(sig, sizeof(sig), out);
    rc = CQ_OK;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    free(msg);
    return rc;
}

enum cq_rc cq_ed25519_public_hex(const char *seed_hex, char out[65]) {
    uint8_t seed[32], pub[32];
    size_t n = sizeof(pub);
    enum cq_rc rc = CQ_EINVAL;
    out[0] = '\0';
    if (!unhex(seed_hex, seed, sizeof(seed))) return rc;
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    if (key && EVP_PKEY_get_raw_public_key(key, pub, &n) == 1 && n == sizeof(pub)) {
        cq_hex(pub, sizeof(pub), out);
        rc = CQ_OK;
    }
    EVP_PKEY_free(key);
    return rc;
}
