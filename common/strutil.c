/* strutil: cq_strprintf and cq_levenshtein (see strutil.h). */
#include "strutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cq_strprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

size_t cq_levenshtein(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = malloc((lb + 1) * sizeof(*row));
    if (!row) return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

bool cq_json_has_nul_escape(const char *json, size_t len) {
    for (size_t i = 0; json && i < len; i++) {
        if (json[i] != '\\') continue;
        size_t run = 0;
        while (i < len && json[i] == '\\') {
            run++;
            i++;
        }
        /* an odd run ends in an escaping backslash; json[i] is what it escapes */
        if (run % 2 == 1 && len - i >= 5 && memcmp(json + i, "u0000", 5) == 0) return true;
        if (i < len) i--; /* json[i] is looked at again by the loop */
    }
    return false;
}
