/* Unit tests for common/strutil.c: printf into a new string, the edit distance, and the
 * escaped-NUL check the ingress runs before parsing JSON from outside. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "strutil.h"

static bool has(const char *json) {
    return cq_json_has_nul_escape(json, strlen(json));
}

TEST(nul_escape) {
    CHECK(has("{\"text\":\"deploy\\u0000 production\"}"));
    CHECK(has("\\u0000"));
    CHECK(has("{\"a\":\"x\\\\\\u0000\"}"));    /* \\ then \u0000 */
    CHECK(!has("{\"a\":\"x\\\\u0000\"}"));     /* an escaped backslash, then the text u0000 */
    CHECK(has("{\"a\":\"\\u0001\\u00000\"}")); /* \u0000 then the digit 0 */
    CHECK(!has("{\"a\":\"\\u00a0 \\n \\\\ u0000\"}"));
    CHECK(!has("{\"a\":\"\\u000\"}"));
    CHECK(!has("\\"));
    CHECK(!has(""));
    CHECK(!cq_json_has_nul_escape(NULL, 3));
    /* the length bounds the scan: a NUL escape past it is not seen */
    CHECK(!cq_json_has_nul_escape("ab\\u0000", 4));
}

TEST(strprintf_and_distance) {
    char *s = cq_strprintf("%s-%d", "a", 7);
    CHECK(s && strcmp(s, "a-7") == 0);
    free(s);
    CHECK(cq_levenshtein("kitten", "sitting") == 3);
    CHECK(cq_levenshtein("", "abc") == 3);
    CHECK(cq_levenshtein("same", "same") == 0);
}

int main(void) {
    RUN(nul_escape);
    RUN(strprintf_and_distance);
    return cqtest_done();
}
