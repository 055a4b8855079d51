/* test_envelope_stack: the request envelope printed from stack nodes (envelope_stack.c) is byte
 * for byte what the cJSON tree of env_encode_fields printed, escapes and UTF-8 included, and
 * fails with the same code and message; the fallback to the tree (too many fields) and a group
 * whose fields are not adjacent in the table keep that too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cqtest.h"
#include "cqtest_samples.h"
#include "envelope.h"
#include "envelope_int.h"

/* The reference: the tree the encoder built before (v, the fields, retry_num). */
static char *tree_encode(const char *kind, const void *msg, const struct field *fields, size_t n,
                         long long v, const char *trail_key, long long trail, struct cq_err *err) {
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    if (!root || !env_add_number(root, "v", v)) goto out;
    if (env_encode_fields(kind, msg, fields, n, root, err) != CQ_OK) goto out;
    if (trail_key && !env_add_number(root, trail_key, trail)) goto out;
    out = env_print_or_fail(root, kind, err);
out:
    cJSON_Delete(root);
    return out;
}

/* cq_request_encode (its table is private to envelope.c): what it writes decodes back to the
 * same request; the engine's text against the tree's is checked below on a table of the same
 * kinds of rows. */
static void decodes_back(const struct cq_request *r, const char *what) {
    struct cq_err e1 = {0}, e2 = {0};
    char *stack = cq_request_encode(r, &e1);
    struct cq_request back;
    memset(&back, 0, sizeof(back));
    CHECK(stack != NULL);
    if (!stack) {
        printf("  %s: %s\n", what, e1.msg);
        return;
    }
    CHECK(cq_request_decode(stack, strlen(stack), 0, &back, &e2) == CQ_OK);
    CHECK(cqt_request_equal(r, &back));
    cq_request_clear(&back);
    free(stack);
}

TEST(request_decodes_back) {
    struct cq_request r;
    cqt_fill_request(&r);
    decodes_back(&r, "full sample");
    r.text = "quote \" backslash \\ tab \t newline \n bell \x07 del \x7f caf\xc3\xa9 \xe2\x9c\x93";
    decodes_back(&r, "escapes");
    r.channel_name = NULL; /* a group with one field left */
    r.user_name = NULL;
    r.reply.response_url = NULL;
    decodes_back(&r, "sparse groups");
}

/* A table that exercises what the request table has: top-level and grouped fields, a group
 * whose rows are apart, required-but-empty, an enum. */
struct msg {
    char *a, *b, *c, *d, *e, *f;
};
static const char *const words[] = {"one", "two", NULL};
#define M(x) offsetof(struct msg, x)
static const struct field table[] = {
    {NULL, "a", M(a), 4096, F_REQUIRED | F_NONEMPTY, NULL},
    {"g", "b", M(b), 8192, 0, NULL},
    {NULL, "c", M(c), 8192, F_REQUIRED, NULL},
    {"h", "d", M(d), 64, 0, words},
    {"g", "e", M(e), 64, 0, NULL}, /* g again, after h and c */
    {"h", "f", M(f), 64, 0, NULL},
};

static void compare(const struct msg *m, long long retry, const char *what) {
    struct cq_err e1 = {0}, e2 = {0};
    const struct env_int v = {"v", 1}, t = {"retry_num", retry};
    char *s = env_encode_stack("msg", m, table, NFIELDS(table), &v, 1, &t, 1, &e1);
    char *ref = tree_encode("msg", m, table, NFIELDS(table), 1, "retry_num", retry, &e2);
    if (ref) {
        CHECK(s != NULL);
        if (s && strcmp(s, ref) != 0) {
            CHECK(!"stack and tree texts differ");
            printf("  %s:\n  stack %.300s\n  tree  %.300s\n", what, s, ref);
        }
    } else {
        CHECK(s == NULL);
        CHECK(e1.code == e2.code);
        CHECK_STR(e1.msg, e2.msg);
    }
    free(s);
    free(ref);
}

TEST(same_text_as_tree) {
    struct msg m = {"x", NULL, "", NULL, NULL, NULL};
    compare(&m, 0, "minimal");
    m = (struct msg){"a\"b\\c", "\x01\x1f\b\f\n\r\t", "caf\xc3\xa9 \xf0\x9f\x9a\x80", "two",
                     "e",       "</script>"};
    compare(&m, 7, "all fields, escapes");
    m.b = NULL; /* g is opened by e, after h */
    compare(&m, 123456789012LL, "late group");
}

TEST(same_errors_as_tree) {
    struct msg m = {NULL, NULL, "", NULL, NULL, NULL};
    compare(&m, 0, "missing required");
    m.a = "";
    compare(&m, 0, "empty nonempty");
    m.a = "ok";
    m.d = "three";
    compare(&m, 0, "not an allowed word");
    m.d = NULL;
    m.e = "bad \xc3\x28 utf-8";
    compare(&m, 0, "invalid UTF-8");
    char *longv = malloc(100);
    memset(longv, 'y', 99);
    longv[99] = '\0';
    m.e = longv;
    compare(&m, 0, "over its max");
    free(longv);
}

TEST(large_text_past_the_stack_buffer) {
    /* env_print_or_fail prints into 4 KiB first; a larger message is printed by cJSON into
     * its own buffer */
    char *big = malloc(6001);
    for (int i = 0; i < 6000; i++)
        big[i] = i % 50 == 0 ? '"' : 'a' + i % 26;
    big[6000] = '\0';
    struct msg m = {"x", big, big, NULL, NULL, NULL};
    compare(&m, 0, "6000-byte values");
    free(big);
}

/* More fields than the stack holds: the tree path, same text. */
struct wide {
    char *s[40];
};
TEST(many_fields_fall_back_to_the_tree) {
    static char keys[40][8];
    struct field wide_table[40];
    struct wide w;
    for (int i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        wide_table[i] = (struct field){i % 2 ? "grp" : NULL,
                                       keys[i],
                                       offsetof(struct wide, s) + (size_t)i * sizeof(char *),
                                       64,
                                       0,
                                       NULL};
        w.s[i] = keys[i];
    }
    struct cq_err e1 = {0}, e2 = {0};
    const struct env_int v = {"v", 1};
    char *s = env_encode_stack("wide", &w, wide_table, 40, &v, 1, NULL, 0, &e1);
    char *ref = tree_encode("wide", &w, wide_table, 40, 1, NULL, 0, &e2);
    CHECK(s != NULL && ref != NULL);
    if (s && ref) CHECK_STR(s, ref);
    free(s);
    free(ref);
}

int main(void) {
    printf("envelope_stack: stack-node printing equals the cJSON tree, text and errors\n");
    RUN(request_decodes_back);
    RUN(same_text_as_tree);
    RUN(same_errors_as_tree);
    RUN(large_text_past_the_stack_buffer);
    RUN(many_fields_fall_back_to_the_tree);
    return cqtest_done();
}
