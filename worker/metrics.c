/* metrics: the worker's metrics that its request steps count (decide.c, direct.c,
 * runonce.c), named and described in one table; the steps count through the w_metric_*
 * functions below (declared in service_int.h) and never spell a metric name. records.c's
 * w_metric_decision/action/result/inflight follow the same pattern and belong here too, as do
 * job.c's and the pipeline files' (left where they are by the change that restructures those
 * files). Exported on the admin listener. */
#include <time.h>

#include "service_int.h"

#include "metrics.h"

enum {
    M_EXPIRED,
    M_ACTION_SECONDS,
    M_CLAIMS_LOST,
    M_DUPLICATES,
    M_APPROVALS, /* issue 16 */
    M_QUEUE_SECONDS,
    M_REQUEST_SECONDS,
};

static const struct {
    const char *name, *help;
} metric[] = {
    [M_EXPIRED] = {"chatops_worker_expired_total",
                   "Requests not run because they were older than worker.max_request_age_s"},
    [M_ACTION_SECONDS] = {"chatops_worker_action_seconds", "Duration of direct-mode HTTP calls"},
    [M_CLAIMS_LOST] = {"chatops_worker_claims_lost_total",
                       "Requests whose run-once claim Redis lost: answered 'outcome unknown'"},
    [M_DUPLICATES] = {"chatops_worker_duplicates_total", "Duplicate requests by how they ended"},
    [M_APPROVALS] = {"chatops_worker_approvals_total",
                     "Confirmations and approvals: requests parked, clicks by outcome, expiries"},
    [M_QUEUE_SECONDS] = {"chatops_worker_queue_seconds",
                         "From the ingress receiving a request (received_at) to the worker "
                         "consuming it"},
    [M_REQUEST_SECONDS] = {"chatops_worker_request_seconds",
                           "From consuming a request to its acknowledged final result"},
};

/* Per-hop buckets: finer than the default between 1 and 50 ms, where a hop's p50 and p99 sit */
static const double hop_buckets[] = {0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05,
                                     0.1,   0.25,  0.5,   1,    2.5,   5,    10,   30};
#define HOP_BUCKETS hop_buckets, sizeof hop_buckets / sizeof hop_buckets[0]

void w_metric_expired(void) {
    cq_metric_inc(metric[M_EXPIRED].name, metric[M_EXPIRED].help, NULL);
}

void w_metric_action_seconds(double seconds) {
    cq_histogram_observe(cq_histogram_get(metric[M_ACTION_SECONDS].name,
                                          metric[M_ACTION_SECONDS].help, NULL, HOP_BUCKETS),
                         seconds);
}

void w_metric_request_seconds(double seconds) {
    cq_histogram_observe(cq_histogram_get(metric[M_REQUEST_SECONDS].name,
                                          metric[M_REQUEST_SECONDS].help, NULL, HOP_BUCKETS),
                         seconds);
}

void w_metric_queue_seconds(const char *received_at) {
    int64_t received;
    if (!cq_rfc3339_parse_ms(received_at, &received)) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t d = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - received;
    cq_histogram_observe(cq_histogram_get(metric[M_QUEUE_SECONDS].name,
                                          metric[M_QUEUE_SECONDS].help, NULL, HOP_BUCKETS),
                         d > 0 ? (double)d / 1000.0 : 0.0);
}

void w_metric_claim_lost(void) {
    cq_metric_inc(metric[M_CLAIMS_LOST].name, metric[M_CLAIMS_LOST].help, NULL);
}

void w_metric_duplicate(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    cq_metric_inc(metric[M_DUPLICATES].name, metric[M_DUPLICATES].help, labels);
}

void w_metric_approval(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    cq_metric_inc(metric[M_APPROVALS].name, metric[M_APPROVALS].help, labels);
}
