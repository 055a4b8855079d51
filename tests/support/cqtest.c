/* cqtest: harness counters and fixture look-ups (see cqtest.h). */
#include "cqtest.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

int cqtest_failures;
int cqtest_checks;

int cqtest_done(void) {
    printf("%d passed, %d failed\n", cqtest_checks - cqtest_failures, cqtest_failures);
    return cqtest_failures ? 1 : 0;
}

void cqtest_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FATAL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void read_stack_file(const char *rel, char *out, size_t outsz) {
    const char *dir = getenv("CQ_STACK_DIR");
    char path[1024];
    if (!dir) cqtest_fatal("CQ_STACK_DIR is not set: run this test through ctest");
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "r");
    if (!f)
        cqtest_fatal("%s missing: the fixture did not start (see fixture.*.start output)", path);
    if (!fgets(out, (int)outsz, f)) {
        fclose(f);
        cqtest_fatal("%s is empty", path);
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
}

const char *cqtest_kafka_bootstrap(void) {
    static char buf[256];
    if (!buf[0]) read_stack_file("kafka/bootstrap", buf, sizeof(buf));
    return buf;
}

int cqtest_redis_port(void) {
    char buf[64];
    read_stack_file("redis/port", buf, sizeof(buf));
    return atoi(buf);
}

const char *cqtest_unique(const char *prefix) {
    static char slots[8][128];
    static int next, seq;
    char *s = slots[next++ % 8];
    snprintf(s, sizeof(slots[0]), "%s.%d.%ld.%d", prefix, (int)getpid(), (long)time(NULL), seq++);
    return s;
}
