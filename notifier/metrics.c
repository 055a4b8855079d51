/* metrics: every metric the notifier exports, named and described in one table; the rest
 * of the notifier counts through the small ntf_metric_* functions below (declared in
 * notifier_int.h) and never spells a metric name itself. Exported on the admin listener. */
#include "notifier_int.h"

enum {
    M_DELIVERIES,
    M_ATTEMPTS,
    M_INFLIGHT,
    M_LATENCY,
    M_CLAIMS_LOST,
    M_DLQ,
    M_TOKEN_FETCHES,
    M_TOKEN_AGE,
    M_QUEUE,
    M_POST,
};

static const struct {
    const char *name, *help;
} metric[] = {
    [M_DELIVERIES] = {"chatops_notifier_deliveries_total", "Results by platform and final outcome"},
    [M_ATTEMPTS] = {"chatops_notifier_attempts_total",
                    "Delivery attempts by platform, route and outcome"},
    [M_INFLIGHT] = {"chatops_notifier_inflight", "Results accepted and not yet settled"},
    [M_LATENCY] = {"chatops_notifier_delivery_latency_seconds",
                   "From result produced to platform accepted"},
    [M_CLAIMS_LOST] = {"chatops_notifier_claims_lost_total",
                       "Once-claims found taken or expired while a result was held"},
    [M_DLQ] = {"chatops_notifier_dlq_total", "Results sent to the dead-letter topic"},
    [M_TOKEN_FETCHES] = {"chatops_notifier_feishu_token_fetches_total",
                         "tenant_access_token requests"},
    [M_TOKEN_AGE] = {"chatops_notifier_feishu_token_age_seconds",
                     "Age of the tenant_access_token in use"},
    [M_QUEUE] = {"chatops_notifier_queue_seconds",
                 "From result produced (produced_at, else the Kafka timestamp) to consumed here"},
    [M_POST] = {"chatops_notifier_post_seconds",
                "From result consumed here to platform accepted (claim, waits, retries, posts)"},
};

void ntf_metric_delivery(const char *platform, const char *outcome) {
    char labels[96];
    snprintf(labels, sizeof labels, "platform=\"%s\",outcome=\"%s\"", platform, outcome);
    cq_metric_inc(metric[M_DELIVERIES].name, metric[M_DELIVERIES].help, labels);
}

void ntf_metric_attempt(const char *platform, const char *route, const char *outcome) {
    char labels[128];
    snprintf(labels, sizeof labels, "platform=\"%s\",route=\"%s\",outcome=\"%s\"", platform, route,
             outcome);
    cq_metric_inc(metric[M_ATTEMPTS].name, metric[M_ATTEMPTS].help, labels);
}

void ntf_metric_inflight(int n) {
    cq_gauge_set(cq_gauge_get(metric[M_INFLIGHT].name, metric[M_INFLIGHT].help, NULL), n);
}

void ntf_metric_latency(const char *platform, double seconds) {
    char labels[48];
    snprintf(labels, sizeof labels, "platform=\"%s\"", platform);
    cq_histogram_observe(
        cq_histogram_get(metric[M_LATENCY].name, metric[M_LATENCY].help, labels, NULL, 0), seconds);
}

/* Per-hop buckets: finer than the default between 1 and 50 ms, where a hop's p50 and p99 sit */
static const double hop_buckets[] = {0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05,
                                     0.1,   0.25,  0.5,   1,    2.5,   5,    10,   30};

static void platform_histogram(int m, const char *platform, double seconds) {
    char labels[48];
    snprintf(labels, sizeof labels, "platform=\"%s\"", platform);
    cq_histogram_observe(cq_histogram_get(metric[m].name, metric[m].help, labels, hop_buckets,
                                          sizeof hop_buckets / sizeof hop_buckets[0]),
                         seconds);
}

void ntf_metric_queue_seconds(const char *platform, double seconds) {
    platform_histogram(M_QUEUE, platform, seconds);
}

void ntf_metric_post_seconds(const char *platform, double seconds) {
    platform_histogram(M_POST, platform, seconds);
}

void ntf_metric_claim_lost(void) {
    cq_metric_inc(metric[M_CLAIMS_LOST].name, metric[M_CLAIMS_LOST].help, NULL);
}

void ntf_metric_dlq(const char *reason_class) {
    const char *labels = "class=\"permanent\"";
    if (reason_class && strcmp(reason_class, "invalid") == 0)
        labels = "class=\"invalid\"";
    else if (reason_class && strcmp(reason_class, "exhausted") == 0)
        labels = "class=\"exhausted\"";
    cq_metric_inc(metric[M_DLQ].name, metric[M_DLQ].help, labels);
}

void ntf_metric_token_fetch(const char *outcome) {
    char labels[48];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    cq_metric_inc(metric[M_TOKEN_FETCHES].name, metric[M_TOKEN_FETCHES].help, labels);
}

void ntf_metric_token_age(long long seconds) {
    cq_gauge_set(cq_gauge_get(metric[M_TOKEN_AGE].name, metric[M_TOKEN_AGE].help, NULL), seconds);
}
