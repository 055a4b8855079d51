/* test_utf8: common/utf8 (strict validation, counting, cuts that never split a character,
 * repair with U+FFFD), and cq_err_set, which formats through it. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "envelope.h"
#include "errors.h"
#include "utf8.h"

#define EURO "\xe2\x82\xac"
#define ELL "\xe2\x80\xa6"
#define REPL "\xef\xbf\xbd"

TEST(valid_strict) {
    CHECK(cq_utf8_valid("", 0));
    CHECK(cq_utf8_valid("abc", 3));
    CHECK(cq_utf8_valid(EURO, 3));
    CHECK(cq_utf8_valid("\xf0\x9f\x98\x80", 4));  /* U+1F600 */
    CHECK(!cq_utf8_valid("\xff", 1));             /* never in UTF-8 */
    CHECK(!cq_utf8_valid("\xe2\x82", 2));         /* truncated */
    CHECK(!cq_utf8_valid("\x82\xac", 2));         /* starts inside a character */
    CHECK(!cq_utf8_valid("\xc0\xaf", 2));         /* overlong "/" */
    CHECK(!cq_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    CHECK(!cq_utf8_valid("\xed\xa0\x80", 3));     /* surrogate U+D800 */
    CHECK(!cq_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
}

TEST(len_counts_characters) {
    CHECK(cq_utf8_len("", 0) == 0);
    CHECK(cq_utf8_len("a" EURO "b", 5) == 3);
    CHECK(cq_utf8_len("\xff\xfe", 2) == 2); /* each invalid byte is one */
    CHECK(cq_utf8_len("\x82\xac"
                      "a",
                      3) == 3);       /* stray continuation bytes count too */
    CHECK(cq_utf8_len(EURO, 2) == 2); /* truncated sequence: two invalid bytes */
}

TEST(prefix_never_splits) {
    const char *s = "a" EURO EURO; /* 7 bytes */
    CHECK(cq_utf8_prefix(s, 7, 100) == 7);
    CHECK(cq_utf8_prefix(s, 7, 7) == 7);
    CHECK(cq_utf8_prefix(s, 7, 6) == 4);
    CHECK(cq_utf8_prefix(s, 7, 4) == 4);
    CHECK(cq_utf8_prefix(s, 7, 3) == 1);
    CHECK(cq_utf8_prefix(s, 7, 0) == 0);
}

TEST(copy_fits_repairs_and_cuts) {
    char buf[16];
    bool cut = true;
    CHECK(cq_utf8_copy(buf, sizeof(buf), "hello", 5, &cut) == 5);
    CHECK_STR(buf, "hello");
    CHECK(!cut);
    /* invalid bytes become U+FFFD */
    CHECK(cq_utf8_copy(buf, sizeof(buf),
                       "a\xff"
                       "b",
                       3, &cut) == 5);
    CHECK_STR(buf, "a" REPL "b");
    CHECK(!cut);
    /* 5 euros = 15 bytes fit in 16; 6 do not: cut on a character, then "…" */
    const char *six = EURO EURO EURO EURO EURO EURO;
    CHECK(cq_utf8_copy(buf, sizeof(buf), six, 15, &cut) == 15);
    CHECK(!cut);
    size_t n = cq_utf8_copy(buf, sizeof(buf), six, 18, &cut);
    CHECK(cut);
    CHECK_STR(buf, EURO EURO EURO EURO ELL);
    CHECK(n == 15 && cq_utf8_valid(buf, n));
    /* every budget gives valid text no longer than the budget */
    const char *mixed = "x" EURO "\xff\xf0\x9f\x98\x80"
                        "yz\xe2\x82";
    for (size_t size = 1; size <= 24; size++) {
        char b[24];
        n = cq_utf8_copy(b, size, mixed, strlen(mixed), NULL);
        CHECK(n <= size - 1);
        CHECK(strlen(b) == n);
        CHECK(cq_utf8_valid(b, n));
    }
    CHECK(cq_utf8_copy(buf, 0, "abc", 3, NULL) == 0);
    /* buffers too small for the ellipsis are cut without it */
    CHECK(cq_utf8_copy(buf, 3, "abcdef", 6, &cut) == 2);
    CHECK_STR(buf, "ab");
    CHECK(cut);
}

TEST(clean_and_tail) {
    char *s = cq_utf8_clean("ok\xff", 3, 0);
    CHECK_STR(s, "ok" REPL);
    free(s);
    s = cq_utf8_clean("abcdefgh", 8, 6);
    CHECK_STR(s, "abc" ELL);
    free(s);
    s = cq_utf8_clean(EURO EURO EURO, 9, 8); /* 8 bytes: one euro + "…" (6), never a split */
    CHECK_STR(s, EURO ELL);
    free(s);
    s = cq_utf8_tail("abcdefgh", 8, 0);
    CHECK_STR(s, "abcdefgh");
    free(s);
    s = cq_utf8_tail("abcdefgh", 8, 6);
    CHECK_STR(s, ELL "fgh");
    free(s);
    /* the cut falls inside a euro: the tail starts after it */
    s = cq_utf8_tail("a" EURO EURO, 7, 7 - 1);
    CHECK_STR(s, ELL EURO);
    free(s);
    /* repairs that grow the text past the bound keep its end */
    s = cq_utf8_tail("\xff\xff\xff\xff", 4, 4);
    CHECK(s && strlen(s) <= 4 && cq_utf8_valid(s, strlen(s)));
    free(s);
    for (size_t max = 1; max < 12; max++) {
        s = cq_utf8_tail("z" EURO "\xff" EURO "\x82 end", 14, max);
        CHECK(s && strlen(s) <= (max < 3 ? 3 : max) && cq_utf8_valid(s, strlen(s)));
        free(s);
    }
}

TEST(mark_cut_after_snprintf) {
    /* what snprintf(buf, 8, "ab%s", "€€") leaves: the second "€" split */
    char buf[8] = "ab" EURO "\xe2\x82";
    CHECK(cq_utf8_mark_cut(buf, sizeof(buf)) == 5);
    CHECK_STR(buf, "ab" ELL); /* "ab€" would leave no room for "…" */
    memcpy(buf, "abcdefg", 8);
    CHECK(cq_utf8_mark_cut(buf, sizeof(buf)) == 7);
    CHECK_STR(buf, "abcd" ELL);
    char tiny[3] = "ab";
    CHECK(cq_utf8_mark_cut(tiny, sizeof(tiny)) == 0); /* no room for "…": nothing kept */
    CHECK(cq_utf8_mark_cut(tiny, 0) == 0);
}

/* A message longer than struct cq_err's msg is cut on a character with "…", and invalid
 * bytes in an argument are repaired: every message fits a result envelope. */
TEST(err_set_messages_are_encodable) {
    struct cq_err err = {0};
    char arg[400] = "";
    for (int i = 0; i < 120; i++)
        strcat(arg, EURO);
    cq_err_set(&err, CQ_EINVAL, "x: %s", arg);
    size_t n = strlen(err.msg);
    CHECK(n < sizeof(err.msg));
    CHECK(cq_utf8_valid(err.msg, n));
    CHECK(n >= 3 && strcmp(err.msg + n - 3, ELL) == 0);
    for (int shift = 0; shift < 3; shift++) {
        char fmt[8] = "%s";
        char pre[4] = "";
        memset(pre, 'p', (size_t)shift);
        cq_err_set(&err, CQ_EINVAL, "%s%s\xff", pre, arg);
        (void)fmt;
        CHECK(cq_utf8_valid(err.msg, strlen(err.msg)));
    }
    cq_err_set(&err, CQ_EPARSE, "bad byte \xff here");
    CHECK_STR(err.msg, "bad byte " REPL " here");
    CHECK(err.code == CQ_EPARSE);
}

/* The envelope encoder's refusal of invalid text is its own error, not "out of memory". */
TEST(encode_failure_is_eencode) {
    struct cq_result r = {0};
    struct cq_err err = {0};
    r.request_id = "r1";
    r.step = "final";
    r.status = "ok";
    r.platform = "slack";
    r.text = "cut "
             "\xe2\x82";
    char *s = cq_result_encode(&r, &err);
    CHECK(s == NULL);
    CHECK(err.code == CQ_EENCODE);
    CHECK_CONTAINS(err.msg, "'text' is not valid UTF-8");
    free(s);
    CHECK_STR(cq_rc_str(CQ_EENCODE), "message cannot be encoded");
}

int main(void) {
    RUN(valid_strict);
    RUN(len_counts_characters);
    RUN(prefix_never_splits);
    RUN(copy_fits_repairs_and_cuts);
    RUN(clean_and_tail);
    RUN(mark_cut_after_snprintf);
    RUN(err_set_messages_are_encodable);
    RUN(encode_failure_is_eencode);
    return cqtest_done();
}
