/* strutil: the two string helpers every service needs: printf into a new string, and the
 * edit distance behind every "did you mean" (config keys, unknown commands). */
#ifndef CQ_STRUTIL_H
#define CQ_STRUTIL_H

#include <stddef.h>

/* printf into a new string. Returns it (caller frees), or NULL on ENOMEM / bad format. */
char *cq_strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Levenshtein distance between two NUL-terminated strings; (size_t)-1 on ENOMEM. */
size_t cq_levenshtein(const char *a, const char *b);

#endif
