/* strutil: the two string helpers every service needs: printf into a new string, and the
 * edit distance behind every "did you mean" (config keys, unknown commands). */
#ifndef CQ_STRUTIL_H
#define CQ_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* printf into a new string. Returns it (caller frees), or NULL on ENOMEM / bad format. */
char *cq_strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Levenshtein distance between two NUL-terminated strings; (size_t)-1 on ENOMEM. */
size_t cq_levenshtein(const char *a, const char *b);

/* True when the JSON text escapes a NUL (\u0000) anywhere. cJSON decodes it into a C string
 * that silently ends there ("deploy\u0000 production" would run "deploy"), so input from
 * outside that holds one is refused before parsing, like a raw NUL. */
bool cq_json_has_nul_escape(const char *json, size_t len);

#endif
