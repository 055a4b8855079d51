/* cqtest: the tiny test harness every C test uses, plus access to the
 * shared Kafka broker and Redis that ctest's fixtures started. */
#ifndef CQTEST_H
#define CQTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int cqtest_failures;
extern int cqtest_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        cqtest_checks++;                                                                           \
        if (!(cond)) {                                                                             \
            cqtest_failures++;                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        cqtest_checks++;                                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            cqtest_failures++;                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s == %s\n  got:  %s\n  want: %s\n", __FILE__, __LINE__,  \
                    #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                               \
        }                                                                                          \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        cqtest_checks++;                                                                           \
        if (h_ == NULL || strstr(h_, n_) == NULL) {                                                \
            cqtest_failures++;                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s contains \"%s\"\n  got: %s\n", __FILE__, __LINE__,     \
                    #hay, n_, h_ ? h_ : "(null)");                                                 \
        }                                                                                          \
    } while (0)

/* One test per function; RUN prints its name and result. */
#define TEST(name) static void test_##name(void)
#define RUN(name)                                                                                  \
    do {                                                                                           \
        int before_ = cqtest_failures;                                                             \
        test_##name();                                                                             \
        printf("%s %s\n", cqtest_failures == before_ ? "ok  " : "FAIL", #name);                    \
        fflush(stdout);                                                                            \
    } while (0)

/* Prints "N passed, N failed" and returns the process exit code. */
int cqtest_done(void);

/* Fatal: print why and exit 1 (used when the environment is missing, e.g. no broker). */
void cqtest_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Bootstrap servers of the fixture broker ("127.0.0.1:PORT"); exits with the
 * reason when the fixture did not start. Returns a static buffer. */
const char *cqtest_kafka_bootstrap(void);

/* Port of the fixture redis-server; exits with the reason when missing. */
int cqtest_redis_port(void);

/* A fresh unique name (topic, group) with the given prefix. Static buffer rotates 8 slots. */
const char *cqtest_unique(const char *prefix);

#endif
