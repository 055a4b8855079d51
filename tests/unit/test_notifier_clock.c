/* Unit tests for notifier/clock.c: RFC 3339 parsing used for the produced -> accepted
 * latency (UTC, offsets, fractions, and rejection of junk). */
#include "clock.h"
#include "cqtest.h"
#include "envelope.h"

TEST(rfc3339_ms) {
    CHECK(ntf_rfc3339_ms("1970-01-01T00:00:00Z") == 0);
    CHECK(ntf_rfc3339_ms("1970-01-01T00:00:01.5Z") == 1500);
    CHECK(ntf_rfc3339_ms("2015-10-21T07:28:00.123Z") == 1445412480123LL);
    CHECK(ntf_rfc3339_ms("2015-10-21T09:28:00.123+02:00") == 1445412480123LL);
    CHECK(ntf_rfc3339_ms("2015-10-21T02:28:00-05:00") == 1445412480000LL);
    CHECK(ntf_rfc3339_ms("2000-02-29T00:00:00Z") == 951782400000LL); /* leap day */
    CHECK(ntf_rfc3339_ms("2015-10-21T07:28:00.123456Z") == 1445412480123LL);
    CHECK(ntf_rfc3339_ms("2015-10-21T07:28:00") == -1); /* no zone */
    CHECK(ntf_rfc3339_ms("2015-10-21T07:28:00.Z") == -1);
    CHECK(ntf_rfc3339_ms("2015-13-21T07:28:00Z") == -1);
    CHECK(ntf_rfc3339_ms("yesterday") == -1);
    CHECK(ntf_rfc3339_ms("2015-10-21T07:28:00Zjunk") == -1);
    CHECK(ntf_rfc3339_ms(NULL) == -1);
    char now[32];
    cq_now_rfc3339(now);
    long long ms = ntf_rfc3339_ms(now);
    CHECK(ms > 1700000000000LL); /* the envelope's own clock parses */
}

int main(void) {
    printf("notifier clock: RFC 3339 timestamps for delivery latency\n");
    RUN(rfc3339_ms);
    return cqtest_done();
}
