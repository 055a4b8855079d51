/* utf8: the one place that measures, validates, cuts and repairs UTF-8 text. Every envelope
 * field must be strict UTF-8 (common/envelope.c refuses anything else), so text that is cut at
 * a byte budget (replies, labels, error snippets, log tails) or that comes from outside (API
 * bodies, GitLab job logs) goes through here before it reaches an envelope.
 *
 * Strict means: no overlong forms, no surrogates, nothing above U+10FFFF. An invalid byte is
 * one unit: it counts as one character and is replaced by U+FFFD (3 bytes) when repaired. */
#ifndef CQ_UTF8_H
#define CQ_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#define CQ_UTF8_ELLIPSIS "\xe2\x80\xa6"    /* "…", appended (or prepended for tails) when cut */
#define CQ_UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* True when s[0..len) is strict UTF-8. */
bool cq_utf8_valid(const char *s, size_t len);

/* Number of characters in s[0..len); each invalid byte counts as one. */
size_t cq_utf8_len(const char *s, size_t len);

/* Largest n <= max such that s[0..n) ends on a character boundary (never inside a valid
 * sequence). Bytes are not repaired: use it only on text known to be valid. */
size_t cq_utf8_prefix(const char *s, size_t len, size_t max);

/* s[0..len) made valid (invalid bytes -> U+FFFD) into dst of dst_size bytes (NUL included):
 * when it does not fit, it is cut on a character boundary and "…" is appended, all within
 * dst_size - 1 bytes. Returns the bytes written (NUL excluded); *cut (optional) says whether
 * anything was dropped. dst_size 0 writes nothing. */
size_t cq_utf8_copy(char *dst, size_t dst_size, const char *s, size_t len, bool *cut);

/* For text already cut to fit buf (size bytes) by a byte count (snprintf into a fixed
 * buffer): backs its end off to a character boundary, leaving room for "…", and appends it.
 * Call it only when the text was cut. Returns the new length. */
size_t cq_utf8_mark_cut(char *buf, size_t size);

/* A new string: s[0..len) made valid and, when max > 0 and it is longer, cut to at most max
 * bytes with "…" appended (as cq_utf8_copy). Caller frees; NULL on ENOMEM. */
char *cq_utf8_clean(const char *s, size_t len, size_t max);

/* A new string: the end of s[0..len) in at most max bytes (max 0: all), starting on a
 * character boundary, made valid, with "…" in front when the start was dropped. Caller
 * frees; NULL on ENOMEM. */
char *cq_utf8_tail(const char *s, size_t len, size_t max);

#endif
