/* crypto: every primitive the platforms need, all through OpenSSL: HMAC-SHA256,
 * SHA-256, AES-256-CBC decrypt (Feishu), base64, hex, constant-time compare,
 * random bytes and UUIDv4 request ids. No hand-written cryptography. */
#ifndef CQ_CRYPTO_H
#define CQ_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define CQ_SHA256_LEN 32
#define CQ_UUID_LEN 36 /* without the NUL */

/* out receives 32 bytes. */
enum cq_rc cq_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                          uint8_t out[CQ_SHA256_LEN]);
enum cq_rc cq_sha256(const void *msg, size_t msglen, uint8_t out[CQ_SHA256_LEN]);

/* Lower-case hex of len bytes into out (needs 2*len+1). */
void cq_hex(const uint8_t *in, size_t len, char *out);

/* Standard base64 with padding. Returns a new NUL-terminated string; caller frees. NULL on ENOMEM.
 */
char *cq_base64_encode(const void *in, size_t len);
/* Decodes standard base64 (padding required). Returns a new buffer (NUL-terminated for
 * convenience, *outlen excludes it); caller frees. NULL on malformed input. */
uint8_t *cq_base64_decode(const char *in, size_t inlen, size_t *outlen);

/* AES-256-CBC with PKCS#7: iv = first 16 bytes of data, ciphertext the rest.
 * Returns new plaintext (NUL-terminated; *outlen excludes it); caller frees. NULL on error. */
uint8_t *cq_aes256cbc_decrypt(const uint8_t key[32], const uint8_t *data, size_t len,
                              size_t *outlen);
/* The inverse (random IV prepended), for tests and fakes. Caller frees. */
uint8_t *cq_aes256cbc_encrypt(const uint8_t key[32], const uint8_t *plain, size_t len,
                              size_t *outlen);

/* Constant-time equality of two byte strings (length mismatch returns false, still constant
 * in the shorter length). */
bool cq_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Cryptographically random bytes (RAND_bytes). */
enum cq_rc cq_random_bytes(void *buf, size_t len);

/* RFC 4122 version 4 UUID, lower-case, into out (CQ_UUID_LEN + 1 bytes). */
enum cq_rc cq_uuid4(char out[CQ_UUID_LEN + 1]);

/* Platform helpers built on the above. */
/* Slack v0: "v0=" + hex(HMAC(secret, "v0:" ts ":" body)); out needs 68 bytes. */
void cq_slack_signature(const char *secret, const char *ts, const void *body, size_t bodylen,
                        char out[68]);
/* Feishu event signature: hex(SHA-256(ts + nonce + encrypt_key + body)); out needs 65 bytes. */
void cq_feishu_signature(const char *ts, const char *nonce, const char *encrypt_key,
                         const void *body, size_t bodylen, char out[65]);
/* Feishu AES body: key = SHA-256(encrypt_key); base64 decode then AES-256-CBC decrypt.
 * Returns new plaintext; caller frees. NULL on error. */
char *cq_feishu_decrypt(const char *encrypt_key, const char *b64, size_t *outlen);
/* base64(HMAC-SHA256(key, msg)) for Feishu custom bots (key = ts "\n" secret, msg = "")
 * and DingTalk (key = secret, msg = ts "\n" secret). Caller frees. */
char *cq_hmac_sha256_base64(const void *key, size_t keylen, const void *msg, size_t msglen);

/* ---- issue 18: DingTalk, Discord, Webex (crypto_platforms.c) ---- */
/* DingTalk callback sign: base64(HMAC-SHA256(key = secret, msg = ts "\n" secret)). Caller
 * frees; NULL when out of memory. */
char *cq_dingtalk_sign(const char *secret, const char *ts);
/* Webex X-Spark-Signature: lower-case hex(HMAC-SHA1(key, body)); out needs 41 bytes. */
enum cq_rc cq_hmac_sha1_hex(const char *key, const void *body, size_t len, char out[41]);
/* Discord: true when sig_hex (128 hex digits) is the Ed25519 signature of ts + body under
 * the public key pub_hex (64 hex digits). False on any malformed input. */
bool cq_ed25519_verify_hex(const char *pub_hex, const char *ts, const void *body, size_t len,
                           const char *sig_hex);
/* The signing side, for chatopsctl and tests: seed_hex is the 32-byte private key (64 hex
 * digits); out receives 128 hex digits + NUL. CQ_EINVAL on a bad key. */
enum cq_rc cq_ed25519_sign_hex(const char *seed_hex, const char *ts, const void *body, size_t len,
                               char out[129]);
/* The public key (64 hex digits + NUL) of seed_hex. */
enum cq_rc cq_ed25519_public_hex(const char *seed_hex, char out[65]);

#endif
