/* Unit tests for worker/job.c's job lifetime (issue 12: one state enum instead of flags):
 * the transition table allows exactly the documented moves, a usual life goes through it,
 * ABANDONED is sticky (a later step does not revive the job). (A forbidden move asserts, so
 * it is checked through the table.) Pure: no Redis, Kafka or network. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "service_int.h"

TEST(transition_table) {
    /* The picture in service_int.h, row by row: from -> the states it may move to. */
    static const char *const expect[JS_N] = {
        [JS_QUEUED] = "QRA",  [JS_RUNNING] = "RFCA", [JS_FINAL_QUEUED] = "FCA",
        [JS_COMPLETE] = "CA", [JS_ABANDONED] = "A",
    };
    static const char letter[JS_N] = {'Q', 'R', 'F', 'C', 'A'};
    for (int from = 0; from < JS_N; from++)
        for (int to = 0; to < JS_N; to++) {
            bool want = strchr(expect[from], letter[to]) != NULL;
            if (w_job_transition_ok((enum job_state)from, (enum job_state)to) != want)
                printf("  %s -> %s: expected %s\n", w_job_state_name((enum job_state)from),
                       w_job_state_name((enum job_state)to), want ? "allowed" : "refused");
            CHECK(w_job_transition_ok((enum job_state)from, (enum job_state)to) == want);
        }
    CHECK(!w_job_transition_ok(JS_N, JS_QUEUED));
    CHECK(!w_job_transition_ok(JS_QUEUED, JS_N));
    CHECK_STR(w_job_state_name(JS_FINAL_QUEUED), "final_queued");
    CHECK_STR(w_job_state_name(JS_N), "?");
}

TEST(lifetimes) {
    struct w_worker w = {0};
    struct job j = {0};
    j.w = &w;
    CHECK(j.state == JS_QUEUED); /* a zeroed job waits its turn */
    CHECK(!w_job_gone(&j));
    /* The usual life: start, hand the final over, every report ok. */
    CHECK(w_job_set_state(&j, JS_RUNNING));
    CHECK(w_job_set_state(&j, JS_FINAL_QUEUED));
    CHECK(w_job_set_state(&j, JS_FINAL_QUEUED)); /* idempotent */
    CHECK(w_job_set_state(&j, JS_COMPLETE));
    CHECK(j.state == JS_COMPLETE && !w_job_gone(&j));
    /* Torn down afterwards: abandoned, and it stays so. */
    CHECK(w_job_set_state(&j, JS_ABANDONED));
    CHECK(w_job_gone(&j));
    CHECK(!w_job_set_state(&j, JS_FINAL_QUEUED));
    CHECK(!w_job_set_state(&j, JS_RUNNING));
    CHECK(w_job_set_state(&j, JS_ABANDONED));
    CHECK(j.state == JS_ABANDONED);
    /* A torn-down worker makes every job gone, whatever its state. */
    j.state = JS_RUNNING;
    w.torn_down = true;
    CHECK(w_job_gone(&j));
}

int main(void) {
    printf("worker job: the lifetime's states and transitions\n");
    RUN(transition_table);
    RUN(lifetimes);
    return cqtest_done();
}
