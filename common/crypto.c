/* crypto: the OpenSSL 3 calls behind crypto.h. Ingress uses these to verify
 * Slack/Feishu signatures and decrypt Feishu bodies before anything is parsed;
 * every service uses cq_uuid4 for request ids. No cryptography is written
 * here, only the framing each platform documents (see PROTOCOLS in docs/). */
#include "crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define AES_BLOCK 16

/* HMAC() and EVP_MAC reject a NULL pointer with a zero length in some builds; an empty
 * key or message is legal (Feishu custom bots sign ""), so point at this instead. */
static const uint8_t empty_bytes[1] = {0};

enum cq_rc cq_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                          uint8_t out[CQ_SHA256_LEN]) {
    unsigned int outlen = 0;
    if (keylen > INT_MAX) return CQ_EINVAL;
    if (!key || keylen == 0) key = empty_bytes;
    if (!msg || msglen == 0) msg = empty_bytes;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) || outlen != CQ_SHA256_LEN)
        return CQ_ECRYPTO;
    return CQ_OK;
}

enum cq_rc cq_sha256(const void *msg, size_t msglen, uint8_t out[CQ_SHA256_LEN]) {
    unsigned int outlen = 0;
    if (!msg || msglen == 0) msg = empty_bytes;
    if (!EVP_Digest(msg, msglen, out, &outlen, EVP_sha256(), NULL) || outlen != CQ_SHA256_LEN)
        return CQ_ECRYPTO;
    return CQ_OK;
}

void cq_hex(const uint8_t *in, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

char *cq_base64_encode(const void *in, size_t len) {
    char *out = NULL;
    size_t outcap;
    if (len > (size_t)INT_MAX / 4 * 3 - 3) return NULL;
    outcap = 4 * ((len + 2) / 3) + 1;
    out = malloc(outcap);
    if (!out) return NULL;
    if (len == 0) {
        out[0] = '\0';
        return out;
    }
    /* EVP_EncodeBlock writes no newlines and NUL-terminates. */
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static bool is_b64_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

uint8_t *cq_base64_decode(const char *in, size_t inlen, size_t *outlen) {
    uint8_t *out = NULL;
    size_t pad = 0;
    int n;

    if (outlen) *outlen = 0;
    if (!in || inlen % 4 != 0 || inlen > (size_t)INT_MAX) return NULL;
    /* EVP_DecodeBlock tolerates surrounding whitespace and reports the padding bytes as
     * zeros, so validate the alphabet and padding ourselves and trim afterwards. */
    if (inlen >= 1 && in[inlen - 1] == '=') {
        pad++;
        if (in[inlen - 2] == '=') pad++;
    }
    for (size_t i = 0; i < inlen - pad; i++)
        if (!is_b64_char((unsigned char)in[i])) return NULL;

    out = malloc(inlen / 4 * 3 + 1);
    if (!out) return NULL;
    if (inlen == 0) {
        out[0] = '\0';
        return out;
    }
    n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
    if (n < 0 || (size_t)n < pad) {
        free(out);
        return NULL;
    }
    n -= (int)pad;
    out[n] = '\0';
    if (outlen) *outlen = (size_t)n;
    return out;
}

uint8_t *cq_aes256cbc_decrypt(const uint8_t key[32], const uint8_t *data, size_t len,
                              size_t *outlen) {
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *plain = NULL;
    int n1 = 0, n2 = 0;
    size_t clen;

    if (outlen) *outlen = 0;
    /* IV plus at least one block, whole blocks only. */
    if (!key || !data || len < 2 * AES_BLOCK || len % AES_BLOCK != 0 || len > (size_t)INT_MAX)
        return NULL;
    clen = len - AES_BLOCK;
    plain = malloc(clen + AES_BLOCK + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (!plain || !ctx) goto out;
    if (!EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, data)) goto out;
    if (!EVP_DecryptUpdate(ctx, plain, &n1, data + AES_BLOCK, (int)clen)) goto out;
    /* Fails on bad PKCS#7 padding (wrong key or corrupted data). */
    if (!EVP_DecryptFinal_ex(ctx, plain + n1, &n2)) goto out;
    EVP_CIPHER_CTX_free(ctx);
    plain[n1 + n2] = '\0';
    if (outlen) *outlen = (size_t)(n1 + n2);
    return plain;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (plain) OPENSSL_cleanse(plain, clen + AES_BLOCK + 1);
    free(plain);
    return NULL;
}

uint8_t *cq_aes256cbc_encrypt(const uint8_t key[32], const uint8_t *plain, size_t len,
                              size_t *outlen) {
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *out = NULL;
    int n1 = 0, n2 = 0;

    if (outlen) *outlen = 0;
    if (!key || (!plain && len > 0) || len > (size_t)INT_MAX - 2 * AES_BLOCK) return NULL;
    if (!plain) plain = empty_bytes;
    out = malloc(AES_BLOCK + len + AES_BLOCK);
    ctx = EVP_CIPHER_CTX_new();
    if (!out || !ctx) goto out;
    if (RAND_bytes(out, AES_BLOCK) != 1) goto out;
    if (!EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, out)) goto out;
    if (!EVP_EncryptUpdate(ctx, out + AES_BLOCK, &n1, plain, (int)len)) goto out;
    if (!EVP_EncryptFinal_ex(ctx, out + AES_BLOCK + n1, &n2)) goto out;
    EVP_CIPHER_CTX_free(ctx);
    if (outlen) *outlen = (size_t)(AES_BLOCK + n1 + n2);
    return out;
out:
    EVP_CIPHER_CTX_free(ctx);
    free(out);
    return NULL;
}

bool cq_ct_equal(const void *a, size_t alen, const void *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int diff = 0;
    if (n > 0) {
        if (!a || !b) return false;
        diff = CRYPTO_memcmp(a, b, n);
    }
    return (diff == 0) & (alen == blen);
}

enum cq_rc cq_random_bytes(void *buf, size_t len) {
    if (len == 0) return CQ_OK;
    if (!buf || len > (size_t)INT_MAX) return CQ_EINVAL;
    return RAND_bytes(buf, (int)len) == 1 ? CQ_OK : CQ_ECRYPTO;
}

/* Request ids come from a small per-thread pool of RAND_bytes output: one RAND_bytes call per
 * 32 ids instead of one each (the DRBG call and its locking were a visible share of the
 * ingress's time per request). A forked child starts with an empty pool so parent and child
 * never hand out the same ids. */
#define UUID_POOL 512
static _Thread_local uint8_t uuid_pool[UUID_POOL];
static _Thread_local size_t uuid_left;
static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;

static void uuid_after_fork(void) {
    uuid_left = 0;
}
static void uuid_init(void) {
    pthread_atfork(NULL, NULL, uuid_after_fork);
}

enum cq_rc cq_uuid4(char out[CQ_UUID_LEN + 1]) {
    static const char digits[] = "0123456789abcdef";
    uint8_t b[16];
    pthread_once(&uuid_once, uuid_init);
    if (uuid_left < sizeof(b)) {
        if (cq_random_bytes(uuid_pool, sizeof(uuid_pool)) != CQ_OK) {
            out[0] = '\0';
            return CQ_ECRYPTO;
        }
        uuid_left = sizeof(uuid_pool);
    }
    uuid_left -= sizeof(b);
    memcpy(b, uuid_pool + uuid_left, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10xx (RFC 4122) */
    char *o = out;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = digits[b[i] >> 4];
        *o++ = digits[b[i] & 0x0f];
    }
    *o = '\0';
    return CQ_OK;
}

/* The HMAC keyed with the signing secret, kept between calls: fetching the algorithm and
 * setting the key (two SHA-256 blocks) cost as much as hashing the body. A call takes a keyed
 * context from the spares (a copy of the template, EVP_MAC_CTX_dup, when there is none) and
 * gives it back re-initialised with the same key (EVP_MAC_init with a NULL key: no copy, about
 * 2 allocations instead of the dup's 11); the lock guards only the list. Another secret
 * replaces the template and drops the spares. */
#define SLACK_MAC_SPARES 8 /* one per thread checking signatures at once is enough */
static struct {
    pthread_mutex_t mu;
    EVP_MAC_CTX *tmpl;
    char *secret; /* the secret tmpl is keyed with (the caller's config holds it too) */
    EVP_MAC_CTX *spare[SLACK_MAC_SPARES];
    size_t nspare;
} slack_mac = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, {NULL}, 0};

static EVP_MAC_CTX *slack_mac_new(const char *secret) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    char digest_name[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC_free(mac); /* ctx keeps its own reference */
    if (!ctx) return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, (const unsigned char *)(*secret ? secret : (const char *)empty_bytes),
                      strlen(secret), params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static EVP_MAC_CTX *slack_mac_keyed(const char *secret) {
    EVP_MAC_CTX *ctx = NULL;
    pthread_mutex_lock(&slack_mac.mu);
    if (!slack_mac.secret || strcmp(slack_mac.secret, secret) != 0) {
        EVP_MAC_CTX *t = slack_mac_new(secret);
        char *copy = t ? strdup(secret) : NULL;
        if (copy) {
            EVP_MAC_CTX_free(slack_mac.tmpl);
            while (slack_mac.nspare > 0)
                EVP_MAC_CTX_free(slack_mac.spare[--slack_mac.nspare]);
            if (slack_mac.secret) OPENSSL_cleanse(slack_mac.secret, strlen(slack_mac.secret));
            free(slack_mac.secret);
            slack_mac.tmpl = t;
            slack_mac.secret = copy;
        } else {
            EVP_MAC_CTX_free(t);
        }
    }
    if (slack_mac.secret && strcmp(slack_mac.secret, secret) == 0)
        ctx = slack_mac.nspare > 0 ? slack_mac.spare[--slack_mac.nspare]
                                   : EVP_MAC_CTX_dup(slack_mac.tmpl);
    pthread_mutex_unlock(&slack_mac.mu);
    return ctx;
}

/* Gives ctx (keyed with secret, used) back as a spare, reset to its key; frees it when it
 * cannot be reset, the secret changed meanwhile or the spares are full. */
static void slack_mac_release(EVP_MAC_CTX *ctx, const char *secret) {
    if (!ctx) return;
    if (EVP_MAC_init(ctx, NULL, 0, NULL)) {
        pthread_mutex_lock(&slack_mac.mu);
        if (slack_mac.nspare < SLACK_MAC_SPARES && slack_mac.secret &&
            strcmp(slack_mac.secret, secret) == 0) {
            slack_mac.spare[slack_mac.nspare++] = ctx;
            ctx = NULL;
        }
        pthread_mutex_unlock(&slack_mac.mu);
    }
    EVP_MAC_CTX_free(ctx);
}

void cq_slack_signature(const char *secret, const char *ts, const void *body, size_t bodylen,
                        char out[68]) {
    EVP_MAC_CTX *ctx = NULL;
    uint8_t digest[CQ_SHA256_LEN];
    size_t dlen = 0;

    /* On any failure out is "" which never matches a real signature. */
    out[0] = '\0';
    if (!secret || !ts || (!body && bodylen > 0)) return;
    if (!body) body = empty_bytes;
    /* Streamed so the (up to max-body sized) base string is never copied. */
    ctx = slack_mac_keyed(secret);
    if (!ctx) goto out;
    if (!EVP_MAC_update(ctx, (const unsigned char *)"v0:", 3) ||
        !EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)":", 1) || !EVP_MAC_update(ctx, body, bodylen))
        goto out;
    if (!EVP_MAC_final(ctx, digest, &dlen, sizeof(digest)) || dlen != CQ_SHA256_LEN) goto out;
    memcpy(out, "v0=", 3);
    cq_hex(digest, CQ_SHA256_LEN, out + 3);
out:
    slack_mac_release(ctx, secret);
}

void cq_feishu_signature(const char *ts, const char *nonce, const char *encrypt_key,
                         const void *body, size_t bodylen, char out[65]) {
    EVP_MD_CTX *ctx = NULL;
    uint8_t digest[CQ_SHA256_LEN];
    unsigned int dlen = 0;

    out[0] = '\0';
    if (!ts || !nonce || !encrypt_key || (!body && bodylen > 0)) return;
    if (!body) body = empty_bytes;
    ctx = EVP_MD_CTX_new();
    if (!ctx) return;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, ts, strlen(ts)) &&
        EVP_DigestUpdate(ctx, nonce, strlen(nonce)) &&
        EVP_DigestUpdate(ctx, encrypt_key, strlen(encrypt_key)) &&
        EVP_DigestUpdate(ctx, body, bodylen) && EVP_DigestFinal_ex(ctx, digest, &dlen) &&
        dlen == CQ_SHA256_LEN)
        cq_hex(digest, CQ_SHA256_LEN, out);
    EVP_MD_CTX_free(ctx);
}

char *cq_feishu_decrypt(const char *encrypt_key, const char *b64, size_t *outlen) {
    uint8_t key[CQ_SHA256_LEN];
    uint8_t *data = NULL, *plain = NULL;
    size_t dlen = 0;

    if (outlen) *outlen = 0;
    if (!encrypt_key || !b64) return NULL;
    if (cq_sha256(encrypt_key, strlen(encrypt_key), key) != CQ_OK) goto out;
    data = cq_base64_decode(b64, strlen(b64), &dlen);
    if (!data) goto out;
    plain = cq_aes256cbc_decrypt(key, data, dlen, outlen);
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(data);
    return (char *)plain;
}

char *cq_hmac_sha256_base64(const void *key, size_t keylen, const void *msg, size_t msglen) {
    uint8_t mac[CQ_SHA256_LEN];
    if (cq_hmac_sha256(key, keylen, msg, msglen, mac) != CQ_OK) return NULL;
    return cq_base64_encode(mac, sizeof(mac));
}
