/* test_worker_gitlab: the GitLab client's out-of-memory path when a call is started: a
 * strdup that fails (the linker routes this file's build of strdup through
 * __wrap_strdup, see tests/CMakeLists.txt) must leave nothing half-built behind: no
 * callback, no call in flight, and no uninitialised timer handed to libuv. */
#include <string.h>

#include "cqtest.h"
#include "gitlab.h"
#include "httpc.h"
#include "loop.h"

static const char *fail_strdup_of; /* the next strdup of this string returns NULL */
static int strdup_failed;

char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s) {
    if (fail_strdup_of && s && strcmp(s, fail_strdup_of) == 0) {
        fail_strdup_of = NULL;
        strdup_failed++;
        return NULL;
    }
    return __real_strdup(s);
}

static void on_reply(void *opaque, const struct w_gitlab_reply *r) {
    (void)r;
    (*(int *)opaque)++;
}

TEST(start_out_of_memory) {
    struct cq_err err = {0};
    struct cq_loop *loop = cq_loop_new(&err);
    struct cq_httpc *h = loop ? cq_httpc_new(loop, 4, &err) : NULL;
    struct w_gitlab *g =
        h ? w_gitlab_new(loop, h, "http://127.0.0.1:9", "tok", 1, 10, 1000, &err) : NULL;
    CHECK(g != NULL);
    if (!g) goto out;
    int called = 0;
    /* The method's copy is the allocation after the call itself and its timer memory. */
    fail_strdup_of = "GET";
    CHECK(w_gitlab_pipeline(g, "7", 1, on_reply, &called, &err) == CQ_ENOMEM);
    CHECK(strdup_failed == 1);
    CHECK(w_gitlab_inflight(g) == 0);
    fail_strdup_of = "POST";
    CHECK(w_gitlab_cancel(g, "7", 1, on_reply, &called, &err) == CQ_ENOMEM);
    CHECK(strdup_failed == 2);
    CHECK(w_gitlab_inflight(g) == 0);
    for (int i = 0; i < 3; i++) /* handles closed by the failed starts finish closing here */
        uv_run(cq_loop_uv(loop), UV_RUN_NOWAIT);
    CHECK(called == 0);
out:
    fail_strdup_of = NULL;
    w_gitlab_free(g);
    cq_httpc_free(h);
    cq_loop_free(loop);
}

int main(void) {
    RUN(start_out_of_memory);
    return cqtest_done();
}
