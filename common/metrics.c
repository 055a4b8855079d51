/* metrics: the process-wide registry behind metrics.h. Families (one per
 * metric name) keep their series in creation order, so /metrics groups a name's
 * series under one HELP/TYPE even when they were created interleaved. Values
 * are C11 atomics; only creation, rendering and reset take the registry mutex. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

struct cq_counter {
    atomic_uint_fast64_t value;
};

struct cq_gauge {
    atomic_int_fast64_t value;
};

struct cq_histogram {
    size_t nbounds;
    double *bounds;                /* ascending upper bounds, +Inf implied */
    atomic_uint_fast64_t *counts;  /* per bucket (not cumulative), nbounds + 1 slots */
    atomic_uint_fast64_t sum_bits; /* the double sum, updated with compare-and-swap */
};

struct series {
    struct series *next;
    char *labels; /* "" when none */
    union {
        struct cq_counter counter;
        struct cq_gauge gauge;
        struct cq_histogram hist;
    } u;
};

struct family {
    struct family *next;
    char *name;
    char *help;
    enum kind kind;
    struct series *first, *last;
};

/* The one piece of global mutable state besides the shutdown flag (see STYLE). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct family *families_first, *families_last;

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static struct family *find_family(const char *name) {
    for (struct family *f = families_first; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

static struct series *find_series(struct family *f, const char *labels) {
    for (struct series *s = f->first; s; s = s->next)
        if (strcmp(s->labels, labels) == 0) return s;
    return NULL;
}

static void series_free(struct series *s, enum kind kind) {
    if (!s) return;
    if (kind == K_HISTOGRAM) {
        free(s->u.hist.bounds);
        free((void *)s->u.hist.counts);
    }
    free(s->labels);
    free(s);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Copies the bounds sorted, without duplicates, NaN or +Inf (always rendered last). */
static bool hist_init(struct cq_histogram *h, const double *buckets, size_t nbuckets) {
    size_t n = 0;
    if (!buckets) {
        buckets = default_buckets;
        nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
    }
    h->bounds = malloc((nbuckets ? nbuckets : 1) * sizeof(double));
    if (!h->bounds) return false;
    for (size_t i = 0; i < nbuckets; i++)
        if (!isnan(buckets[i]) && !isinf(buckets[i])) h->bounds[n++] = buckets[i];
    qsort(h->bounds, n, sizeof(double), cmp_double);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || h->bounds[i] != h->bounds[w - 1]) h->bounds[w++] = h->bounds[i];
    h->nbounds = w;
    h->counts = calloc(w + 1, sizeof(*h->counts));
    if (!h->counts) {
        free(h->bounds);
        h->bounds = NULL;
        return false;
    }
    for (size_t i = 0; i <= w; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum_bits, 0); /* all-zero bits == 0.0 */
    return true;
}

/* Finds or creates the series; NULL on ENOMEM or when name is already another kind. */
static struct series *get_series(enum kind kind, const char *name, const char *help,
                                 const char *labels, const double *buckets, size_t nbuckets) {
    struct family *f, *newf = NULL;
    struct series *s = NULL;
    bool ok = false; /* false: what this call allocated is freed at out */

    if (!name || !*name) return NULL;
    if (!labels) labels = "";
    pthread_mutex_lock(&registry_lock);
    f = find_family(name);
    if (f) {
        if (f->kind != kind) goto out; /* a programming error: one name, one type */
        s = find_series(f, labels);
        ok = s != NULL;
        if (ok) goto out;
    } else {
        newf = calloc(1, sizeof(*newf));
        if (!newf) goto out;
        newf->name = strdup(name);
        newf->help = strdup(help ? help : "");
        newf->kind = kind;
        if (!newf->name || !newf->help) goto out;
        f = newf;
    }
    s = calloc(1, sizeof(*s));
    if (!s) goto out;
    s->labels = strdup(labels);
    if (!s->labels) goto out;
    switch (kind) {
    case K_COUNTER:
        atomic_init(&s->u.counter.value, 0);
        break;
    case K_GAUGE:
        atomic_init(&s->u.gauge.value, 0);
        break;
    case K_HISTOGRAM:
        if (!hist_init(&s->u.hist, buckets, nbuckets)) goto out;
        break;
    }
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    if (newf) {
        if (families_last)
            families_last->next = newf;
        else
            families_first = newf;
        families_last = newf;
    }
    ok = true;
out:
    if (!ok && s) {
        free(s->labels);
        free(s);
        s = NULL;
    }
    if (!ok && newf) {
        free(newf->name);
        free(newf->help);
        free(newf);
    }
    pthread_mutex_unlock(&registry_lock);
    return s;
}

struct cq_counter *cq_counter_get(const char *name, const char *help, const char *labels) {
    struct series *s = get_series(K_COUNTER, name, help, labels, NULL, 0);
    return s ? &s->u.counter : NULL;
}

struct cq_gauge *cq_gauge_get(const char *name, const char *help, const char *labels) {
    struct series *s = get_series(K_GAUGE, name, help, labels, NULL, 0);
    return s ? &s->u.gauge : NULL;
}

struct cq_histogram *cq_histogram_get(const char *name, const char *help, const char *labels,
                                      const double *buckets, size_t nbuckets) {
    struct series *s = get_series(K_HISTOGRAM, name, help, labels, buckets, nbuckets);
    return s ? &s->u.hist : NULL;
}

void cq_counter_inc(struct cq_counter *c) {
    cq_counter_add(c, 1);
}

void cq_counter_add(struct cq_counter *c, uint64_t n) {
    if (c) atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t cq_counter_value(const struct cq_counter *c) {
    if (!c) return 0;
    return atomic_load_explicit(&((struct cq_counter *)(uintptr_t)c)->value, memory_order_relaxed);
}

void cq_gauge_set(struct cq_gauge *g, int64_t v) {
    if (g) atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void cq_gauge_add(struct cq_gauge *g, int64_t delta) {
    if (g) atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed);
}

int64_t cq_gauge_value(const struct cq_gauge *g) {
    if (!g) return 0;
    return atomic_load_explicit(&((struct cq_gauge *)(uintptr_t)g)->value, memory_order_relaxed);
}

static double bits_to_double(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

void cq_histogram_observe(struct cq_histogram *h, double seconds) {
    size_t i = 0;
    uint64_t old, upd;
    if (!h || isnan(seconds)) return;
    /* Upper bounds are inclusive ("le"). A linear scan: bucket lists are short. */
    while (i < h->nbounds && seconds > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    do {
        upd = double_to_bits(bits_to_double(old) + seconds);
    } while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, upd, memory_order_relaxed,
                                                    memory_order_relaxed));
}

void cq_metric_inc(const char *name, const char *help, const char *labels) {
    cq_counter_inc(cq_counter_get(name, help, labels));
}

size_t cq_metrics_escape(const char *in, char *out, size_t outlen) {
    size_t need = 0, w = 0;
    bool full = out == NULL || outlen == 0;
    for (const char *p = in ? in : ""; *p; p++) {
        char one[2] = {*p, '\0'};
        const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : one;
        size_t rl = strlen(rep);
        /* Stop at the first escape that does not fit whole: never emit half of one. */
        if (!full && w + rl < outlen) {
            memcpy(out + w, rep, rl);
            w += rl;
        } else {
            full = true;
        }
        need += rl;
    }
    if (out && outlen > 0) out[w] = '\0';
    return need;
}

/* ---- rendering ---- */

struct buf {
    char *data;
    size_t len, cap;
    bool failed;
};

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    if (b->failed) return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->data && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

/* Shortest %g that reads back as the same double; Prometheus spellings for Inf/NaN. */
static void format_double(double v, char *out, size_t outlen) {
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) { /* "10", not "1e+01" */
        snprintf(out, outlen, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static void render_help(struct buf *b, const struct family *f) {
    static const char *const types[] = {"counter", "gauge", "histogram"};
    buf_printf(b, "# HELP %s%s", f->name, *f->help ? " " : "");
    for (const char *p = f->help; *p; p++) {
        if (*p == '\\')
            buf_printf(b, "\\\\");
        else if (*p == '\n')
            buf_printf(b, "\\n");
        else
            buf_printf(b, "%c", *p);
    }
    buf_printf(b, "\n# TYPE %s %s\n", f->name, types[f->kind]);
}

static void render_histogram(struct buf *b, const struct family *f, const struct series *s) {
    const struct cq_histogram *h = &s->u.hist;
    const char *sep = *s->labels ? "," : "";
    uint64_t cumulative = 0;
    char num[64];
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += atomic_load_explicit(&((struct cq_histogram *)(uintptr_t)h)->counts[i],
                                           memory_order_relaxed);
        if (i < h->nbounds)
            format_double(h->bounds[i], num, sizeof(num));
        else
            snprintf(num, sizeof(num), "+Inf");
        buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep, num,
                   (unsigned long long)cumulative);
    }
    format_double(bits_to_double(atomic_load_explicit(
                      &((struct cq_histogram *)(uintptr_t)h)->sum_bits, memory_order_relaxed)),
                  num, sizeof(num));
    /* _count is the +Inf bucket, so the two always agree even under concurrent observes. */
    if (*s->labels) {
        buf_printf(b, "%s_sum{%s} %s\n", f->name, s->labels, num);
        buf_printf(b, "%s_count{%s} %llu\n", f->name, s->labels, (unsigned long long)cumulative);
    } else {
        buf_printf(b, "%s_sum %s\n", f->name, num);
        buf_printf(b, "%s_count %llu\n", f->name, (unsigned long long)cumulative);
    }
}

static void render_series(struct buf *b, const struct family *f, const struct series *s) {
    const char *open = *s->labels ? "{" : "", *close = *s->labels ? "}" : "";
    switch (f->kind) {
    case K_COUNTER:
        buf_printf(b, "%s%s%s%s %llu\n", f->name, open, s->labels, close,
                   (unsigned long long)cq_counter_value(&s->u.counter));
        break;
    case K_GAUGE:
        buf_printf(b, "%s%s%s%s %lld\n", f->name, open, s->labels, close,
                   (long long)cq_gauge_value(&s->u.gauge));
        break;
    case K_HISTOGRAM:
        render_histogram(b, f, s);
        break;
    }
}

char *cq_metrics_render(size_t *len) {
    struct buf b = {0};
    if (len) *len = 0;
    pthread_mutex_lock(&registry_lock);
    buf_printf(&b, "%s", ""); /* an empty registry renders as "" rather than NULL */
    for (const struct family *f = families_first; f; f = f->next) {
        render_help(&b, f);
        for (const struct series *s = f->first; s; s = s->next)
            render_series(&b, f, s);
    }
    pthread_mutex_unlock(&registry_lock);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len) *len = b.len;
    return b.data;
}

void cq_metrics_reset(void) {
    pthread_mutex_lock(&registry_lock);
    struct family *f = families_first;
    while (f) {
        struct family *fnext = f->next;
        struct series *s = f->first;
        while (s) {
            struct series *snext = s->next;
            series_free(s, f->kind);
            s = snext;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fnext;
    }
    families_first = families_last = NULL;
    pthread_mutex_unlock(&registry_lock);
}
