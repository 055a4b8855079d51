/* test_metrics: the Prometheus text the registry renders (exact bytes for a
 * small registry), grouping of interleaved series, histogram bucket edges,
 * lock-free updates from 4 threads, label escaping and reset. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "metrics.h"

TEST(exact_text) {
    static const double b3[] = {0.005, 0.1, 1};
    cq_metrics_reset();
    struct cq_counter *plain = cq_counter_get("cq_requests_total", "Requests received.", NULL);
    struct cq_gauge *g = cq_gauge_get("cq_inflight", "Pipelines in flight.", "");
    /* Created after the gauge, rendered with its family. */
    struct cq_counter *lab =
        cq_counter_get("cq_requests_total", "ignored", "route=\"/slack\",outcome=\"ok\"");
    struct cq_histogram *h =
        cq_histogram_get("cq_latency_seconds", "Handling latency.", "route=\"/slack\"", b3, 3);
    CHECK(plain && g && lab && h);
    cq_counter_inc(plain);
    cq_counter_add(plain, 2);
    cq_counter_inc(lab);
    cq_gauge_set(g, 5);
    cq_gauge_add(g, -7);
    /* Binary-exact values so the sum's text is exact: 2^-8, 2^-4, 0.5, 2. */
    cq_histogram_observe(h, 0.00390625);
    cq_histogram_observe(h, 0.0625);
    cq_histogram_observe(h, 0.5);
    cq_histogram_observe(h, 2);
    size_t len = 0;
    char *text = cq_metrics_render(&len);
    const char *want = "# HELP cq_requests_total Requests received.\n"
                       "# TYPE cq_requests_total counter\n"
                       "cq_requests_total 3\n"
                       "cq_requests_total{route=\"/slack\",outcome=\"ok\"} 1\n"
                       "# HELP cq_inflight Pipelines in flight.\n"
                       "# TYPE cq_inflight gauge\n"
                       "cq_inflight -2\n"
                       "# HELP cq_latency_seconds Handling latency.\n"
                       "# TYPE cq_latency_seconds histogram\n"
                       "cq_latency_seconds_bucket{route=\"/slack\",le=\"0.005\"} 1\n"
                       "cq_latency_seconds_bucket{route=\"/slack\",le=\"0.1\"} 2\n"
                       "cq_latency_seconds_bucket{route=\"/slack\",le=\"1\"} 3\n"
                       "cq_latency_seconds_bucket{route=\"/slack\",le=\"+Inf\"} 4\n"
                       "cq_latency_seconds_sum{route=\"/slack\"} 2.56640625\n"
                       "cq_latency_seconds_count{route=\"/slack\"} 4\n";
    CHECK_STR(text, want);
    CHECK(text && len == strlen(text));
    free(text);
    CHECK(cq_counter_value(plain) == 3);
    CHECK(cq_gauge_value(g) == -2);
}

TEST(same_pair_same_pointer) {
    cq_metrics_reset();
    struct cq_counter *a = cq_counter_get("cq_x_total", "X.", "k=\"1\"");
    struct cq_counter *b = cq_counter_get("cq_x_total", "X.", "k=\"1\"");
    struct cq_counter *c = cq_counter_get("cq_x_total", "X.", "k=\"2\"");
    struct cq_counter *d = cq_counter_get("cq_x_total", "X.", NULL);
    struct cq_counter *e = cq_counter_get("cq_x_total", "X.", "");
    CHECK(a && a == b);
    CHECK(c && c != a);
    CHECK(d && d == e && d != a);
    /* One name, one type: asking for it as a gauge is refused. */
    CHECK(cq_gauge_get("cq_x_total", "X.", NULL) == NULL);
    CHECK(cq_histogram_get("cq_x_total", "X.", NULL, NULL, 0) == NULL);
    CHECK(cq_counter_get(NULL, "X.", NULL) == NULL);
    /* NULL is a no-op everywhere. */
    cq_counter_inc(NULL);
    cq_counter_add(NULL, 5);
    cq_gauge_set(NULL, 1);
    cq_gauge_add(NULL, 1);
    cq_histogram_observe(NULL, 1.0);
    CHECK(cq_counter_value(NULL) == 0);
    CHECK(cq_gauge_value(NULL) == 0);
    cq_metric_inc("cq_x_total", "X.", "k=\"2\"");
    cq_metric_inc("cq_x_total", "X.", "k=\"2\"");
    CHECK(cq_counter_value(c) == 2);
}

static size_t count_occurrences(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

TEST(grouping_interleaved) {
    cq_metrics_reset();
    static const char *routes[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "route=\"%s\"", routes[i]);
        cq_counter_inc(cq_counter_get("cq_in_total", "In.", labels));
        cq_gauge_set(cq_gauge_get("cq_level", "Level.", labels), i);
        cq_histogram_observe(cq_histogram_get("cq_lat_seconds", "Lat.", labels, NULL, 0), 0.02);
    }
    char *text = cq_metrics_render(NULL);
    CHECK(text != NULL);
    if (!text) return;
    CHECK(count_occurrences(text, "# HELP cq_in_total ") == 1);
    CHECK(count_occurrences(text, "# TYPE cq_in_total counter\n") == 1);
    CHECK(count_occurrences(text, "# TYPE cq_level gauge\n") == 1);
    CHECK(count_occurrences(text, "# TYPE cq_lat_seconds histogram\n") == 1);
    /* Each family's series are contiguous and in creation order, right after its TYPE. */
    CHECK_CONTAINS(text, "# TYPE cq_in_total counter\ncq_in_total{route=\"a\"} 1\n"
                         "cq_in_total{route=\"b\"} 1\ncq_in_total{route=\"c\"} 1\n# HELP");
    CHECK_CONTAINS(text, "# TYPE cq_level gauge\ncq_level{route=\"a\"} 0\n"
                         "cq_level{route=\"b\"} 1\ncq_level{route=\"c\"} 2\n# HELP");
    /* Default buckets: 0.0005 .. 10 plus +Inf; 0.02 lands in le=0.025 and above. */
    CHECK_CONTAINS(text, "cq_lat_seconds_bucket{route=\"a\",le=\"0.0005\"} 0\n");
    CHECK_CONTAINS(text, "cq_lat_seconds_bucket{route=\"a\",le=\"0.01\"} 0\n");
    CHECK_CONTAINS(text, "cq_lat_seconds_bucket{route=\"a\",le=\"0.025\"} 1\n");
    CHECK_CONTAINS(text, "cq_lat_seconds_bucket{route=\"c\",le=\"10\"} 1\n");
    CHECK_CONTAINS(text, "cq_lat_seconds_bucket{route=\"c\",le=\"+Inf\"} 1\n");
    CHECK_CONTAINS(text, "cq_lat_seconds_sum{route=\"b\"} 0.02\n");
    CHECK(count_occurrences(text, "cq_lat_seconds_bucket{route=\"a\",") == 15);
    /* Every line ends with a newline, none is empty. */
    CHECK(text[strlen(text) - 1] == '\n');
    CHECK(strstr(text, "\n\n") == NULL);
    free(text);
}

TEST(histogram_edges) {
    cq_metrics_reset();
    /* Unsorted with a duplicate and +Inf: normalised to 1, 2. */
    static const double b[] = {2, 1, 2, INFINITY};
    struct cq_histogram *h = cq_histogram_get("cq_h_seconds", "H.", NULL, b, 4);
    cq_histogram_observe(h, 1.0); /* le is inclusive */
    cq_histogram_observe(h, 1.5);
    cq_histogram_observe(h, NAN); /* NaN is dropped */
    cq_histogram_observe(h, 100);
    char *text = cq_metrics_render(NULL);
    CHECK_STR(text, "# HELP cq_h_seconds H.\n# TYPE cq_h_seconds histogram\n"
                    "cq_h_seconds_bucket{le=\"1\"} 1\n"
                    "cq_h_seconds_bucket{le=\"2\"} 2\n"
                    "cq_h_seconds_bucket{le=\"+Inf\"} 3\n"
                    "cq_h_seconds_sum 102.5\n"
                    "cq_h_seconds_count 3\n");
    free(text);
}

#define THREADS 4
#define PER_THREAD 100000

static void *hammer(void *arg) {
    (void)arg;
    /* Each thread looks the series up itself, racing on creation too. */
    struct cq_counter *c = cq_counter_get("cq_race_total", "Race.", "t=\"all\"");
    struct cq_gauge *g = cq_gauge_get("cq_race_level", "Race.", NULL);
    struct cq_histogram *h = cq_histogram_get("cq_race_seconds", "Race.", NULL, NULL, 0);
    for (int i = 0; i < PER_THREAD; i++) {
        cq_counter_inc(c);
        cq_gauge_add(g, (i & 1) ? -1 : 2);
        cq_histogram_observe(h, 0.25);
        if (i % 100 == 0) cq_metric_inc("cq_race_lookups_total", "Race.", NULL);
    }
    return NULL;
}

TEST(concurrent_updates) {
    cq_metrics_reset();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(cq_counter_value(cq_counter_get("cq_race_total", "Race.", "t=\"all\"")) ==
          (uint64_t)THREADS * PER_THREAD);
    CHECK(cq_gauge_value(cq_gauge_get("cq_race_level", "Race.", NULL)) ==
          (int64_t)THREADS * PER_THREAD / 2);
    CHECK(cq_counter_value(cq_counter_get("cq_race_lookups_total", "Race.", NULL)) ==
          (uint64_t)THREADS * PER_THREAD / 100);
    char *text = cq_metrics_render(NULL);
    char want[128];
    snprintf(want, sizeof(want), "cq_race_seconds_count %d\n", THREADS * PER_THREAD);
    CHECK_CONTAINS(text, want);
    /* 0.25 * 400000 is exact in binary, so the CAS-accumulated sum is too. */
    snprintf(want, sizeof(want), "cq_race_seconds_sum %d\n", THREADS * PER_THREAD / 4);
    CHECK_CONTAINS(text, want);
    CHECK(count_occurrences(text, "# TYPE cq_race_total counter") == 1);
    CHECK(count_occurrences(text, "cq_race_total{") == 1);
    free(text);
}

TEST(escape_and_help) {
    char out[64];
    size_t n = cq_metrics_escape("a\"b\\c\nd", out, sizeof(out));
    CHECK_STR(out, "a\\\"b\\\\c\\nd");
    CHECK(n == strlen(out));
    /* Truncation never leaves half an escape. */
    n = cq_metrics_escape("ab\"", out, 4);
    CHECK_STR(out, "ab");
    CHECK(n == 4);
    CHECK(cq_metrics_escape("xyz", NULL, 0) == 3);
    cq_metrics_reset();
    char labels[96];
    char val[64];
    cq_metrics_escape("deploy \"web\"", val, sizeof(val));
    snprintf(labels, sizeof(labels), "command=\"%s\"", val);
    cq_metric_inc("cq_cmd_total", "Line one\nback\\slash", labels);
    char *text = cq_metrics_render(NULL);
    CHECK_STR(text, "# HELP cq_cmd_total Line one\\nback\\\\slash\n"
                    "# TYPE cq_cmd_total counter\n"
                    "cq_cmd_total{command=\"deploy \\\"web\\\"\"} 1\n");
    free(text);
}

TEST(reset) {
    cq_metrics_reset();
    cq_counter_add(cq_counter_get("cq_r_total", "R.", NULL), 41);
    char *text = cq_metrics_render(NULL);
    CHECK_CONTAINS(text, "cq_r_total 41\n");
    free(text);
    cq_metrics_reset();
    size_t len = 99;
    text = cq_metrics_render(&len);
    CHECK_STR(text, "");
    CHECK(len == 0);
    free(text);
    /* Fresh series start at zero, and the name may now take another type. */
    CHECK(cq_counter_value(cq_counter_get("cq_r_total", "R.", NULL)) == 0);
    cq_metrics_reset();
    CHECK(cq_gauge_get("cq_r_total", "R.", NULL) != NULL);
    cq_metrics_reset();
}

int main(void) {
    printf("metrics: Prometheus text (exact), grouping, histograms, 4-thread atomics, reset\n");
    RUN(exact_text);
    RUN(same_pair_same_pointer);
    RUN(grouping_interleaved);
    RUN(histogram_edges);
    RUN(concurrent_updates);
    RUN(escape_and_help);
    RUN(reset);
    return cqtest_done();
}
