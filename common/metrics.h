/* metrics: a process-wide registry of counters, gauges and histograms, rendered
 * as Prometheus text (exposition format 0.0.4). Series are created on first use
 * and live until exit; updates are lock-free atomics, creation takes a mutex,
 * so the MHD thread and the loop thread may both record. Label values are
 * escaped; never put a secret in a label. */
#ifndef CQ_METRICS_H
#define CQ_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct cq_counter;
struct cq_gauge;
struct cq_histogram;

/* name: metric name; help: HELP text; labels: "route=\"/slack\",outcome=\"ok\"" style
 * pre-rendered label set, or NULL/"" for none. The (name, labels) pair identifies a
 * series; the same pair returns the same pointer (owned by the registry, valid until
 * cq_metrics_reset). Returns NULL on ENOMEM, or when the name is already registered as
 * another type (a programming error); every update function accepts NULL as a no-op.
 * The first registration's help text is kept. */
struct cq_counter *cq_counter_get(const char *name, const char *help, const char *labels);
struct cq_gauge *cq_gauge_get(const char *name, const char *help, const char *labels);
/* buckets: upper bounds in seconds, ascending; NULL = default latency buckets
 * (0.0005 .. 10 s). nbuckets ignored when buckets is NULL. */
struct cq_histogram *cq_histogram_get(const char *name, const char *help, const char *labels,
                                      const double *buckets, size_t nbuckets);

void cq_counter_inc(struct cq_counter *c);
void cq_counter_add(struct cq_counter *c, uint64_t n);
uint64_t cq_counter_value(const struct cq_counter *c);
void cq_gauge_set(struct cq_gauge *g, int64_t v);
void cq_gauge_add(struct cq_gauge *g, int64_t delta);
int64_t cq_gauge_value(const struct cq_gauge *g);
void cq_histogram_observe(struct cq_histogram *h, double seconds);

/* Convenience: one-line increment of a labelled counter (looks the series up each call). */
void cq_metric_inc(const char *name, const char *help, const char *labels);

/* Escapes a label value for the exposition format (backslash, double quote, newline), so a
 * caller can build a labels string from data: writes at most outlen bytes including the NUL,
 * never half an escape. Returns the length the whole escaped value needs (like snprintf). */
size_t cq_metrics_escape(const char *in, char *out, size_t outlen);

/* Renders every series. Returns a new string; caller frees. NULL on ENOMEM. */
char *cq_metrics_render(size_t *len);

/* Drops every series (tests only). */
void cq_metrics_reset(void);

#endif
