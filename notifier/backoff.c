/* backoff: retry delays, 429 hint parsing and the per-channel pacer (see backoff.h).
 * The pacer is a small chained hash table from channel key to the next free slot. */
#include "backoff.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t ntf_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t rnd) {
    if (base_ms < 1) base_ms = 1;
    if (max_ms < base_ms) max_ms = base_ms;
    if (attempt < 1) attempt = 1;
    uint64_t d = (uint64_t)base_ms;
    for (int i = 1; i < attempt && d < (uint64_t)max_ms; i++)
        d *= 2;
    if (d > (uint64_t)max_ms) d = (uint64_t)max_ms;
    uint64_t half = d / 2;
    return half + rnd % (d - half + 1);
}

static int month_index(const char *m) {
    static const char *names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncmp(m, names[i], 3) == 0) return i;
    return -1;
}

/* days since 1970-01-01 for a civil date (Howard Hinnant's algorithm; no timegm needed) */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t ntf_retry_after_ms(const char *value, int64_t now_unix, int64_t cap_ms) {
    if (!value) return -1;
    while (isspace((unsigned char)*value))
        value++;
    if (!*value) return -1;
    int64_t ms = -1;
    if (isdigit((unsigned char)*value)) {
        char *end = NULL;
        double s = strtod(value, &end);
        while (end && isspace((unsigned char)*end))
            end++;
        if (!end || *end || s < 0 || s > 1e9) return -1;
        ms = (int64_t)(s * 1000.0 + 0.5);
    } else {
        /* IMF-fixdate: "Wed, 21 Oct 2015 07:28:00 GMT" */
        char wd[4], mon[4], tz[4];
        int d, y, hh, mm, ss;
        if (sscanf(value, "%3s, %d %3s %d %d:%d:%d %3s", wd, &d, mon, &y, &hh, &mm, &ss, tz) != 8)
            return -1;
        int mi = month_index(mon);
        if (mi < 0 || strcmp(tz, "GMT") != 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
            return -1;
        int64_t t = days_from_civil(y, mi + 1, d) * 86400 + hh * 3600 + mm * 60 + ss;
        ms = t > now_unix ? (t - now_unix) * 1000 : 0;
    }
    if (cap_ms > 0 && ms > cap_ms) ms = cap_ms;
    return ms;
}

struct pace_entry {
    struct pace_entry *next;
    uint64_t next_ms; /* the earliest time the next send may go */
    char key[];
};

#define PACER_BUCKETS 1024
#define PACER_IDLE_MS 60000

struct ntf_pacer {
    int interval_ms;
    size_t n;
    uint64_t last_sweep;
    struct pace_entry *b[PACER_BUCKETS];
};

struct ntf_pacer *ntf_pacer_new(int interval_ms) {
    struct ntf_pacer *p = calloc(1, sizeof *p);
    if (p) p->interval_ms = interval_ms > 0 ? interval_ms : 0;
    return p;
}

void ntf_pacer_free(struct ntf_pacer *p) {
    if (!p) return;
    for (size_t i = 0; i < PACER_BUCKETS; i++) {
        struct pace_entry *e = p->b[i];
        while (e) {
            struct pace_entry *nx = e->next;
            free(e);
            e = nx;
        }
    }
    free(p);
}

static size_t hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h % PACER_BUCKETS);
}

static void sweep(struct ntf_pacer *p, uint64_t now) {
    if (now - p->last_sweep < PACER_IDLE_MS && p->last_sweep) return;
    p->last_sweep = now;
    for (size_t i = 0; i < PACER_BUCKETS; i++) {
        struct pace_entry **pp = &p->b[i];
        while (*pp) {
            if ((*pp)->next_ms + PACER_IDLE_MS < now) {
                struct pace_entry *dead = *pp;
                *pp = dead->next;
                free(dead);
                p->n--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

static struct pace_entry *find(struct ntf_pacer *p, const char *key, bool create) {
    size_t h = hash(key);
    for (struct pace_entry *e = p->b[h]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e;
    if (!create) return NULL;
    size_t kl = strlen(key);
    struct pace_entry *e = malloc(sizeof *e + kl + 1);
    if (!e) return NULL;
    memcpy(e->key, key, kl + 1);
    e->next_ms = 0;
    e->next = p->b[h];
    p->b[h] = e;
    p->n++;
    return e;
}

uint64_t ntf_pacer_reserve(struct ntf_pacer *p, const char *key, uint64_t now_ms) {
    if (!p || !key) return now_ms;
    sweep(p, now_ms);
    struct pace_entry *e = find(p, key, true);
    if (!e) return now_ms;
    uint64_t at = e->next_ms > now_ms ? e->next_ms : now_ms;
    e->next_ms = at + (uint64_t)p->interval_ms;
    return at;
}

void ntf_pacer_hold(struct ntf_pacer *p, const char *key, uint64_t until_ms) {
    if (!p || !key) return;
    struct pace_entry *e = find(p, key, true);
    if (e && e->next_ms < until_ms) e->next_ms = until_ms;
}

size_t ntf_pacer_size(const struct ntf_pacer *p) {
    return p ? p->n : 0;
}
