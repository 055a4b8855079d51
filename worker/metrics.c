/* metrics: the worker's metrics that its request steps count (decide.c, direct.c,
 * runonce.c), named and described in one table; the steps count through the w_metric_*
 * functions below (declared in service_int.h) and never spell a metric name. records.c's
 * w_metric_decision/action/result/inflight follow the same pattern and belong here too, as do
 * job.c's and the pipeline files' (left where they are by the change that restructures those
 * files). Exported on the admin listener. */
#include "service_int.h"

#include "metrics.h"

enum {
    M_EXPIRED,
    M_ACTION_SECONDS,
    M_CLAIMS_LOST,
    M_DUPLICATES,
    M_APPROVALS, /* issue 16 */
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
};

void w_metric_expired(void) {
    cq_metric_inc(metric[M_EXPIRED].name, metric[M_EXPIRED].help, NULL);
}

void w_metric_action_seconds(double seconds) {
    cq_histogram_observe(cq_histogram_get(metric[M_ACTION_SECONDS].name,
                                          metric[M_ACTION_SECONDS].help, NULL, NULL, 0),
                         seconds);
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
