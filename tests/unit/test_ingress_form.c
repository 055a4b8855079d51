/* test_ingress_form: the form parser finds '&' and '=' with memchr and names by their first
 * byte, the UTF-8 check takes ASCII 8 bytes at a time; an escape, a '+', a NUL or a non-ASCII
 * byte at every position of a long value (before, inside and after an 8-byte block, and in the
 * last short tail) is still seen, checked against a byte-at-a-time reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "ingress.h"
#include "utf8.h"

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The reference: one byte at a time; false where the decoder must refuse. */
static bool ref_decode(const char *s, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (len - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) return false;
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (c == 0) return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

static void check_value(const char *value, size_t vlen, const char *what, size_t pos) {
    char body[128], want[128];
    memcpy(body, "k=", 2);
    memcpy(body + 2, value, vlen);
    memcpy(body + 2 + vlen, "&z=1", 4);
    size_t len = 2 + vlen + 4;
    struct ing_form f;
    enum cq_rc rc = ing_form_parse(body, len, 8, &f);
    bool ok = ref_decode(value, vlen, want);
    if (ok != (rc == CQ_OK)) {
        CHECK(!"decoder and reference disagree on refusing");
        printf("  %s at %zu: rc %d\n", what, pos, (int)rc);
    } else if (ok) {
        const char *got = ing_form_get(&f, "k");
        CHECK(got != NULL && strcmp(got, want) == 0);
        CHECK(ing_form_get(&f, "z") && strcmp(ing_form_get(&f, "z"), "1") == 0);
        if (!got || strcmp(got, want) != 0) printf("  %s at %zu: got '%s'\n", what, pos, got);
    }
    ing_form_clear(&f);
}

TEST(every_position_of_a_long_value) {
    static const struct {
        const char *ins, *what;
    } cases[] = {{"+", "plus"},           {"%41", "escape"},
                 {"%2b", "escaped plus"}, {"%00", "escaped NUL"},
                 {"%4", "cut escape"},    {"%zz", "bad escape"},
                 {"\0", "raw NUL"},       {"%e2%9c%93", "UTF-8 escapes"}};
    char plain[40], value[64];
    for (size_t i = 0; i < sizeof(plain); i++)
        plain[i] = (char)('a' + i % 26);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t il = cases[c].ins[0] ? strlen(cases[c].ins) : 1;
        for (size_t pos = 0; pos <= sizeof(plain); pos++) {
            memcpy(value, plain, pos);
            memcpy(value + pos, cases[c].ins, il);
            memcpy(value + pos + il, plain + pos, sizeof(plain) - pos);
            check_value(value, sizeof(plain) + il, cases[c].what, pos);
        }
    }
    /* lengths 0..40 of plain bytes: every tail after the 8-byte blocks */
    for (size_t n = 0; n <= sizeof(plain); n++)
        check_value(plain, n, "plain", n);
}

TEST(form_get_first_byte_and_whole_name) {
    struct ing_form f;
    const char *b = "team_id=T1&team_domain=ex&text=hi&t=short&user_id=U1&u=x";
    CHECK(ing_form_parse(b, strlen(b), 16, &f) == CQ_OK);
    CHECK_STR(ing_form_get(&f, "text"), "hi");
    CHECK_STR(ing_form_get(&f, "t"), "short");
    CHECK_STR(ing_form_get(&f, "team_domain"), "ex");
    CHECK_STR(ing_form_get(&f, "u"), "x");
    CHECK(ing_form_get(&f, "te") == NULL);
    CHECK(ing_form_get(&f, "") == NULL);
    ing_form_clear(&f);
}

TEST(utf8_every_position) {
    char s[48];
    static const struct {
        const char *seq;
        bool valid;
    } cases[] = {{"\xc3\xa9", true},      {"\xe2\x9c\x93", true}, {"\xf0\x9f\x9a\x80", true},
                 {"\xff", false},         {"\xc3", false},        {"\xe2\x9c", false},
                 {"\xed\xa0\x80", false}, {"\xc0\xaf", false},    {"\x80", false}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t sl = strlen(cases[c].seq);
        for (size_t pos = 0; pos + sl <= 40; pos++) {
            memset(s, 'x', 40);
            memcpy(s + pos, cases[c].seq, sl);
            if (cq_utf8_valid(s, 40) != cases[c].valid) {
                CHECK(!"cq_utf8_valid wrong");
                printf("  case %zu at %zu\n", c, pos);
            }
            /* cut right after the sequence: a truncated one at the very end stays invalid */
            CHECK(cq_utf8_valid(s, pos + sl) == cases[c].valid);
        }
    }
    memset(s, 'x', sizeof(s));
    for (size_t n = 0; n <= sizeof(s); n++)
        CHECK(cq_utf8_valid(s, n));
    CHECK(cq_utf8_valid("a\0b", 3)); /* NUL is ASCII here; callers refuse it themselves */
}

int main(void) {
    printf("ingress_form: form decoding and UTF-8 checks at every position\n");
    RUN(every_position_of_a_long_value);
    RUN(form_get_first_byte_and_whole_name);
    RUN(utf8_every_position);
    return cqtest_done();
}
