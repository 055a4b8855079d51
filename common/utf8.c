/* utf8: strict validation, counting, safe cuts and repair (see utf8.h). */
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ELLIPSIS_LEN (sizeof(CQ_UTF8_ELLIPSIS) - 1)
#define REPL_LEN (sizeof(CQ_UTF8_REPLACEMENT) - 1)

/* Length of the strict UTF-8 sequence at s[0..len) (len > 0), or 0 when s[0] does not start
 * one (an invalid byte). */
static size_t seq_len(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len <= n) return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n + 1;
}

bool cq_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (len - i >= 8) { /* ASCII, most of every envelope field, 8 bytes at a time */
            uint64_t v;
            memcpy(&v, u + i, sizeof(v));
            if (!(v & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = seq_len(u + i, len - i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

size_t cq_utf8_len(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t chars = 0;
    for (size_t i = 0; i < len; chars++) {
        size_t n = seq_len(u + i, len - i);
        i += n ? n : 1;
    }
    return chars;
}

size_t cq_utf8_prefix(const char *s, size_t len, size_t max) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = seq_len(u + i, len - i);
        if (n == 0) n = 1;
        if (i + n > max) break;
        i += n;
    }
    return i;
}

/* Writes s made valid into dst (may be NULL: measure only), at most cap bytes; returns the
 * bytes it takes (or took) and the input bytes consumed in *used. */
static size_t render(char *dst, size_t cap, const unsigned char *s, size_t len, size_t *used) {
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = seq_len(s + i, len - i);
        size_t out = n ? n : REPL_LEN;
        if (o + out > cap) break;
        if (dst) memcpy(dst + o, n ? (const char *)s + i : CQ_UTF8_REPLACEMENT, out);
        o += out;
        i += n ? n : 1;
    }
    if (used) *used = i;
    return o;
}

size_t cq_utf8_copy(char *dst, size_t dst_size, const char *s, size_t len, bool *cut) {
    const unsigned char *u = (const unsigned char *)s;
    size_t cap, used = 0, o;
    if (cut) *cut = false;
    if (dst_size == 0) return 0;
    cap = dst_size - 1;
    o = render(dst, cap, u, len, &used);
    if (used < len) {
        if (cut) *cut = true;
        if (cap >= ELLIPSIS_LEN) {
            /* room for the ellipsis: cut again, shorter */
            o = render(dst, cap - ELLIPSIS_LEN, u, len, NULL);
            memcpy(dst + o, CQ_UTF8_ELLIPSIS, ELLIPSIS_LEN);
            o += ELLIPSIS_LEN;
        }
    }
    dst[o] = '\0';
    return o;
}

/* Bytes of the longest valid prefix of s[0..len). */
static size_t valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        size_t n = seq_len(s + i, len - i);
        if (n == 0) break;
        i += n;
    }
    return i;
}

size_t cq_utf8_mark_cut(char *buf, size_t size) {
    if (size == 0) return 0;
    size_t len = strnlen(buf, size - 1);
    bool room = size - 1 >= ELLIPSIS_LEN;
    size_t max = room ? size - 1 - ELLIPSIS_LEN : 0;
    /* a character the cut split is incomplete, so invalid: the valid prefix stops before */
    size_t keep = valid_prefix((const unsigned char *)buf, len < max ? len : max);
    if (room) memcpy(buf + keep, CQ_UTF8_ELLIPSIS, ELLIPSIS_LEN);
    keep += room ? ELLIPSIS_LEN : 0;
    buf[keep] = '\0';
    return keep;
}

char *cq_utf8_clean(const char *s, size_t len, size_t max) {
    size_t need = render(NULL, (size_t)-1, (const unsigned char *)s, len, NULL);
    size_t size = (max > 0 && need > max ? max : need) + 1;
    char *out = malloc(size);
    if (!out) return NULL;
    cq_utf8_copy(out, size, s, len, NULL);
    return out;
}

char *cq_utf8_tail(const char *s, size_t len, size_t max) {
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0;
    bool cut = false;
    if (max > 0 && len > max) {
        cut = true;
        start = len - (max > ELLIPSIS_LEN ? max - ELLIPSIS_LEN : 0);
        /* begin on a character: skip continuation bytes a cut left in front (at most 3,
         * more can only be invalid bytes, which are repaired below) */
        for (int k = 0; k < 3 && start < len && (u[start] & 0xc0) == 0x80; k++)
            start++;
    }
    size_t need = render(NULL, (size_t)-1, u + start, len - start, NULL);
    char *out = malloc((cut ? ELLIPSIS_LEN : 0) + need + 1);
    if (!out) return NULL;
    size_t o = 0;
    if (cut) {
        memcpy(out, CQ_UTF8_ELLIPSIS, ELLIPSIS_LEN);
        o = ELLIPSIS_LEN;
    }
    o += render(out + o, need, u + start, len - start, NULL);
    out[o] = '\0';
    /* repairs may have grown it past max: keep the end within max */
    if (max > 0 && o > max) {
        char *again =
            cq_utf8_tail(out + (cut ? ELLIPSIS_LEN : 0), o - (cut ? ELLIPSIS_LEN : 0), max);
        free(out);
        return again;
    }
    return out;
}
