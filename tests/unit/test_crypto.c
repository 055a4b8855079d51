/* test_crypto: the platform signature/encryption vectors from PROTOCOLS.md
 * (copied here byte for byte), plus the properties of the primitives under
 * them: base64 padding, AES round trip and rejection, constant-time compare,
 * UUIDv4 shape. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cqtest.h"
#include "crypto.h"

/* Slack's documented example request. */
static const char SLACK_SECRET[] = "8f742231b10e8888abcd99yyyzzz85a5";
static const char SLACK_TS[] = "1531420618";
static const char SLACK_BODY[] =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
static const char SLACK_SIG[] =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

TEST(slack_vector) {
    char sig[68];
    cq_slack_signature(SLACK_SECRET, SLACK_TS, SLACK_BODY, strlen(SLACK_BODY), sig);
    CHECK_STR(sig, SLACK_SIG);
    CHECK(strlen(sig) == 67);
}

TEST(slack_vector_matches_manual_hmac) {
    /* The streamed HMAC must equal a one-shot HMAC of the concatenated base string. */
    char base[1024], hex[65], want[68];
    uint8_t mac[CQ_SHA256_LEN];
    int n = snprintf(base, sizeof(base), "v0:%s:%s", SLACK_TS, SLACK_BODY);
    CHECK(n > 0 && (size_t)n < sizeof(base));
    CHECK(cq_hmac_sha256(SLACK_SECRET, strlen(SLACK_SECRET), base, (size_t)n, mac) == CQ_OK);
    cq_hex(mac, sizeof(mac), hex);
    snprintf(want, sizeof(want), "v0=%s", hex);
    CHECK_STR(want, SLACK_SIG);
}

TEST(slack_flipped_byte_changes_signature) {
    char body[sizeof(SLACK_BODY)], sig[68];
    size_t len = strlen(SLACK_BODY);
    for (size_t pos = 0; pos < len; pos += len / 7) {
        memcpy(body, SLACK_BODY, sizeof(body));
        body[pos] ^= 0x01;
        cq_slack_signature(SLACK_SECRET, SLACK_TS, body, len, sig);
        CHECK(strlen(sig) == 67);
        CHECK(strcmp(sig, SLACK_SIG) != 0);
    }
    /* Wrong timestamp or secret also changes it. */
    cq_slack_signature(SLACK_SECRET, "1531420619", SLACK_BODY, len, sig);
    CHECK(strcmp(sig, SLACK_SIG) != 0);
    cq_slack_signature("8f742231b10e8888abcd99yyyzzz85a6", SLACK_TS, SLACK_BODY, len, sig);
    CHECK(strcmp(sig, SLACK_SIG) != 0);
    /* Truncated body (one byte short). */
    cq_slack_signature(SLACK_SECRET, SLACK_TS, SLACK_BODY, len - 1, sig);
    CHECK(strcmp(sig, SLACK_SIG) != 0);
}

/* The keyed HMAC is kept between calls: switching secrets back and forth must give each
 * secret's own signature every time, also from several threads at once. */
TEST(slack_signature_secret_switch) {
    char sig[68], other[68];
    size_t len = strlen(SLACK_BODY);
    cq_slack_signature("another-secret", SLACK_TS, SLACK_BODY, len, other);
    CHECK(strlen(other) == 67 && strcmp(other, SLACK_SIG) != 0);
    for (int i = 0; i < 6; i++) {
        cq_slack_signature(i % 2 ? "another-secret" : SLACK_SECRET, SLACK_TS, SLACK_BODY, len, sig);
        CHECK(strcmp(sig, i % 2 ? other : SLACK_SIG) == 0);
    }
    cq_slack_signature("", SLACK_TS, SLACK_BODY, len, sig); /* empty key is legal */
    CHECK(strlen(sig) == 67 && strcmp(sig, SLACK_SIG) != 0 && strcmp(sig, other) != 0);
    cq_slack_signature(SLACK_SECRET, SLACK_TS, SLACK_BODY, len, sig);
    CHECK(strcmp(sig, SLACK_SIG) == 0);
}

/* A context is given back reset to its key and reused: a signature must not depend on what
 * the context hashed before (another body, a longer one, one cut short). */
TEST(slack_signature_reused_context) {
    char sig[68], first_b[68], b[sizeof(SLACK_BODY)];
    size_t len = strlen(SLACK_BODY);
    memcpy(b, SLACK_BODY, sizeof(b));
    b[3] ^= 0x01;
    cq_slack_signature(SLACK_SECRET, SLACK_TS, b, len, first_b);
    for (int i = 0; i < 10; i++) {
        cq_slack_signature(SLACK_SECRET, SLACK_TS, SLACK_BODY, (size_t)i * 7 % len, sig);
        cq_slack_signature(SLACK_SECRET, SLACK_TS, SLACK_BODY, len, sig);
        CHECK_STR(sig, SLACK_SIG);
        cq_slack_signature(SLACK_SECRET, SLACK_TS, b, len, sig);
        CHECK_STR(sig, first_b);
    }
}

static void *sign_many(void *arg) {
    const char *secret = arg;
    char sig[68];
    long bad = 0;
    for (int i = 0; i < 300; i++) {
        cq_slack_signature(secret, SLACK_TS, SLACK_BODY, strlen(SLACK_BODY), sig);
        bad += (strcmp(sig, SLACK_SIG) == 0) != (strcmp(secret, SLACK_SECRET) == 0);
    }
    return (void *)bad;
}

TEST(slack_signature_threads) {
    pthread_t t[4];
    const char *secrets[4] = {SLACK_SECRET, "other-1", SLACK_SECRET, "other-2"};
    long bad = 0;
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, sign_many, (void *)secrets[i]) == 0);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    CHECK(bad == 0);
}

TEST(sha256_known) {
    uint8_t d[CQ_SHA256_LEN];
    char hex[65];
    CHECK(cq_sha256("abc", 3, d) == CQ_OK);
    cq_hex(d, sizeof(d), hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(cq_sha256("", 0, d) == CQ_OK);
    cq_hex(d, sizeof(d), hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(hmac_rfc4231_case2) {
    /* RFC 4231 test case 2: key "Jefe". */
    uint8_t d[CQ_SHA256_LEN];
    char hex[65];
    const char *msg = "what do ya want for nothing?";
    CHECK(cq_hmac_sha256("Jefe", 4, msg, strlen(msg), d) == CQ_OK);
    cq_hex(d, sizeof(d), hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(feishu_signature) {
    const char *ts = "1600000000", *nonce = "a1b2c3", *key = "test key";
    const char *body = "{\"encrypt\":\"P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=\"}";
    char sig[65], manual[512], want[65];
    uint8_t d[CQ_SHA256_LEN];
    int n = snprintf(manual, sizeof(manual), "%s%s%s%s", ts, nonce, key, body);
    CHECK(cq_sha256(manual, (size_t)n, d) == CQ_OK);
    cq_hex(d, sizeof(d), want);
    cq_feishu_signature(ts, nonce, key, body, strlen(body), sig);
    CHECK_STR(sig, want);
    CHECK(strlen(sig) == 64);
    /* Plain hash, not an HMAC: "a" "b" "c" "" concatenates to sha256("abc"). */
    cq_feishu_signature("a", "b", "c", "", 0, sig);
    CHECK_STR(sig, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* A different nonce changes it. */
    cq_feishu_signature(ts, "a1b2c4", key, body, strlen(body), sig);
    CHECK(strcmp(sig, want) != 0);
}

TEST(feishu_decrypt_vector) {
    size_t len = 0;
    char *plain =
        cq_feishu_decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=", &len);
    CHECK_STR(plain, "hello world");
    CHECK(len == 11);
    free(plain);
    /* Wrong key: padding check fails (or, rarely, garbage) - never "hello world". */
    plain = cq_feishu_decrypt("test kez", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=", &len);
    CHECK(plain == NULL || strcmp(plain, "hello world") != 0);
    free(plain);
    /* Bad base64. */
    CHECK(cq_feishu_decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk", &len) ==
          NULL);
    CHECK(cq_feishu_decrypt("test key", "!!!!", &len) == NULL);
    /* Valid base64 but too short for IV + one block. */
    CHECK(cq_feishu_decrypt("test key", "P37w+VZImNgPEO1RBhJ6Rg==", &len) == NULL);
    CHECK(len == 0);
}

TEST(aes_round_trip) {
    uint8_t key[32];
    CHECK(cq_random_bytes(key, sizeof(key)) == CQ_OK);
    for (size_t n = 0; n <= 48; n++) {
        uint8_t plain[48];
        size_t clen = 0, plen = 0;
        for (size_t i = 0; i < n; i++)
            plain[i] = (uint8_t)(i * 7 + n);
        uint8_t *ct = cq_aes256cbc_encrypt(key, plain, n, &clen);
        CHECK(ct != NULL);
        if (!ct) continue;
        CHECK(clen == 16 + (n / 16 + 1) * 16);
        uint8_t *back = cq_aes256cbc_decrypt(key, ct, clen, &plen);
        CHECK(back != NULL && plen == n && memcmp(back, plain, n) == 0);
        if (back) CHECK(back[plen] == '\0');
        free(back);
        free(ct);
    }
    /* Random IV: the same plaintext encrypts differently each time. */
    size_t l1 = 0, l2 = 0;
    uint8_t *a = cq_aes256cbc_encrypt(key, (const uint8_t *)"same", 4, &l1);
    uint8_t *b = cq_aes256cbc_encrypt(key, (const uint8_t *)"same", 4, &l2);
    CHECK(a && b && l1 == l2 && memcmp(a, b, l1) != 0);
    free(a);
    free(b);
}

TEST(aes_feishu_compatible) {
    /* What our encrypt produces, base64'd, is what cq_feishu_decrypt reads. */
    uint8_t key[CQ_SHA256_LEN];
    size_t clen = 0, plen = 0;
    const char *msg = "{\"challenge\":\"abc\"}";
    CHECK(cq_sha256("my encrypt key", 14, key) == CQ_OK);
    uint8_t *ct = cq_aes256cbc_encrypt(key, (const uint8_t *)msg, strlen(msg), &clen);
    char *b64 = ct ? cq_base64_encode(ct, clen) : NULL;
    char *plain = b64 ? cq_feishu_decrypt("my encrypt key", b64, &plen) : NULL;
    CHECK_STR(plain, msg);
    CHECK(plen == strlen(msg));
    free(plain);
    free(b64);
    free(ct);
}

TEST(aes_rejects_bad_input) {
    uint8_t key[32] = {0}, other[32] = {1};
    size_t clen = 0, plen = 123;
    uint8_t *ct = cq_aes256cbc_encrypt(key, (const uint8_t *)"hello world", 11, &clen);
    CHECK(ct != NULL && clen == 32);
    if (!ct) return;
    /* Short input: no IV, IV only, not whole blocks. */
    CHECK(cq_aes256cbc_decrypt(key, ct, 0, &plen) == NULL);
    CHECK(plen == 0);
    CHECK(cq_aes256cbc_decrypt(key, ct, 15, &plen) == NULL);
    CHECK(cq_aes256cbc_decrypt(key, ct, 16, &plen) == NULL);
    CHECK(cq_aes256cbc_decrypt(key, ct, 31, &plen) == NULL);
    /* Bad padding: in a one-block message the IV xors into the plaintext, so flipping
     * the last IV byte turns the padding byte 0x05 into 0xfa, which is not PKCS#7. */
    uint8_t bad[32];
    memcpy(bad, ct, 32);
    bad[15] ^= 0xff;
    CHECK(cq_aes256cbc_decrypt(key, bad, 32, &plen) == NULL);
    /* Wrong key: padding almost surely invalid; never the plaintext. */
    uint8_t *w = cq_aes256cbc_decrypt(other, ct, 32, &plen);
    CHECK(w == NULL || memcmp(w, "hello world", 11) != 0);
    free(w);
    free(ct);
}

TEST(platform_bot_signs) {
    /* Feishu custom bot: key = ts "\n" secret, msg = "". */
    const char *fkey = "1599360473\ntest-secret";
    char *s = cq_hmac_sha256_base64(fkey, strlen(fkey), "", 0);
    CHECK_STR(s, "wSds2BzzFIIGf/WrhUO+NI1q/9j+FRJd3JNHKAq0NZY=");
    free(s);
    /* DingTalk: key = secret, msg = ts "\n" secret. */
    const char *dsecret = "this is a secret", *dmsg = "1577262236757\nthis is a secret";
    s = cq_hmac_sha256_base64(dsecret, strlen(dsecret), dmsg, strlen(dmsg));
    CHECK_STR(s, "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=");
    free(s);
    /* Off-by-one timestamp differs. */
    dmsg = "1577262236758\nthis is a secret";
    s = cq_hmac_sha256_base64(dsecret, strlen(dsecret), dmsg, strlen(dmsg));
    CHECK(s && strcmp(s, "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=") != 0);
    free(s);
}

TEST(ct_equal) {
    CHECK(cq_ct_equal("abc", 3, "abc", 3));
    CHECK(!cq_ct_equal("abc", 3, "abd", 3));
    CHECK(!cq_ct_equal("abc", 3, "ab", 2));
    CHECK(!cq_ct_equal("ab", 2, "abc", 3));
    CHECK(cq_ct_equal("", 0, "", 0));
    CHECK(cq_ct_equal(NULL, 0, NULL, 0));
    CHECK(!cq_ct_equal("a", 1, "", 0));
    CHECK(!cq_ct_equal("xbc", 3, "abc", 3));
    CHECK(cq_ct_equal("a\0b", 3, "a\0b", 3));
    CHECK(!cq_ct_equal("a\0b", 3, "a\0c", 3));
    CHECK(cq_ct_equal(SLACK_SIG, strlen(SLACK_SIG), SLACK_SIG, strlen(SLACK_SIG)));
}

static bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

TEST(uuid4) {
    enum { N = 1000 };
    static char ids[N][CQ_UUID_LEN + 1];
    for (int i = 0; i < N; i++) {
        char *u = ids[i];
        CHECK(cq_uuid4(u) == CQ_OK);
        CHECK(strlen(u) == CQ_UUID_LEN);
        bool shape = true;
        for (int j = 0; j < CQ_UUID_LEN; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                shape &= u[j] == '-';
            else
                shape &= is_hex(u[j]);
        }
        CHECK(shape);
        CHECK(u[14] == '4');
        CHECK(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
    }
    int dups = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            dups += strcmp(ids[i], ids[j]) == 0;
    CHECK(dups == 0);
}

/* Ids come from a per-thread pool of random bytes: a forked child must not hand out the
 * ids its parent hands out next. */
TEST(uuid4_after_fork) {
    enum { K = 8 };
    char mine[K][CQ_UUID_LEN + 1], theirs[K][CQ_UUID_LEN + 1];
    int fds[2];
    CHECK(cq_uuid4(mine[0]) == CQ_OK); /* the pool is filled before the fork */
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        char u[K][CQ_UUID_LEN + 1];
        for (int i = 0; i < K; i++)
            cq_uuid4(u[i]);
        ssize_t w = write(fds[1], u, sizeof(u));
        _exit(w == (ssize_t)sizeof(u) ? 0 : 1);
    }
    CHECK(pid > 0);
    for (int i = 0; i < K; i++)
        CHECK(cq_uuid4(mine[i]) == CQ_OK);
    size_t got = 0;
    while (got < sizeof(theirs)) {
        ssize_t r = read(fds[0], (char *)theirs + got, sizeof(theirs) - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(fds[0]);
    close(fds[1]);
    CHECK(got == sizeof(theirs) && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int same = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            same += strcmp(mine[i], theirs[j]) == 0;
    CHECK(same == 0);
}

TEST(base64_known) {
    /* RFC 4648 section 10 vectors. */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = cq_base64_encode(plain[i], strlen(plain[i]));
        CHECK_STR(e, enc[i]);
        free(e);
        size_t n = 99;
        uint8_t *d = cq_base64_decode(enc[i], strlen(enc[i]), &n);
        CHECK(d != NULL && n == strlen(plain[i]) && memcmp(d, plain[i], n) == 0);
        if (d) CHECK(d[n] == '\0');
        free(d);
    }
}

TEST(base64_round_trip_0_to_40) {
    for (size_t len = 0; len <= 40; len++) {
        uint8_t in[40];
        CHECK(cq_random_bytes(in, len) == CQ_OK);
        char *e = cq_base64_encode(in, len);
        CHECK(e != NULL);
        if (!e) continue;
        CHECK(strlen(e) == 4 * ((len + 2) / 3));
        size_t n = 0;
        uint8_t *d = cq_base64_decode(e, strlen(e), &n);
        CHECK(d != NULL && n == len && memcmp(d, in, len) == 0);
        free(d);
        free(e);
    }
}

TEST(base64_rejects_malformed) {
    size_t n = 7;
    CHECK(cq_base64_decode("Zg", 2, &n) == NULL); /* padding required */
    CHECK(n == 0);
    CHECK(cq_base64_decode("Zg=", 3, &n) == NULL);
    CHECK(cq_base64_decode("Z===", 4, &n) == NULL);
    CHECK(cq_base64_decode("====", 4, &n) == NULL);
    CHECK(cq_base64_decode("Zg=a", 4, &n) == NULL);
    CHECK(cq_base64_decode("Z=g=", 4, &n) == NULL);
    CHECK(cq_base64_decode("Zm9v!mFy", 8, &n) == NULL);
    CHECK(cq_base64_decode("Zm9v Zm8", 8, &n) == NULL);
    CHECK(cq_base64_decode(" Zm9", 4, &n) == NULL);
    CHECK(cq_base64_decode("Zm\n9", 4, &n) == NULL);
    CHECK(cq_base64_decode("Zg==Zg==", 8, &n) == NULL); /* padding in the middle */
    CHECK(cq_base64_decode("Zm9v\0mFy", 8, &n) == NULL);
    CHECK(cq_base64_decode("Zm9v-_Fy", 8, &n) == NULL); /* url-safe alphabet is not accepted */
    /* Length is honoured: a valid prefix of a longer buffer decodes. */
    uint8_t *d = cq_base64_decode("Zm9vYmFyJUNK", 8, &n);
    CHECK(d != NULL && n == 6 && memcmp(d, "foobar", 6) == 0);
    free(d);
}

int main(void) {
    printf("crypto: Slack/Feishu/DingTalk vectors, AES-256-CBC, base64, ct compare, uuid4\n");
    RUN(slack_vector);
    RUN(slack_vector_matches_manual_hmac);
    RUN(slack_flipped_byte_changes_signature);
    RUN(sha256_known);
    RUN(hmac_rfc4231_case2);
    RUN(feishu_signature);
    RUN(feishu_decrypt_vector);
    RUN(aes_round_trip);
    RUN(aes_feishu_compatible);
    RUN(aes_rejects_bad_input);
    RUN(platform_bot_signs);
    RUN(ct_equal);
    RUN(uuid4);
    RUN(uuid4_after_fork);
    RUN(slack_signature_secret_switch);
    RUN(slack_signature_reused_context);
    RUN(slack_signature_threads);
    RUN(base64_known);
    RUN(base64_round_trip_0_to_40);
    RUN(base64_rejects_malformed);
    return cqtest_done();
}
