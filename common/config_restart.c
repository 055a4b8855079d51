/* config_restart: the keys a running service read once at start (listeners, clients,
 * pools, timers). A reload (config_reload.c) keeps them at their current value and names the
 * ones the file changed: cq_config_keep_restart_keys compares and copies them field by field
 * through the key table of config.c. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

/* ---- live reload: the keys that keep their value until a restart ---------------- */

/* What a running service read once at start (listeners, clients, pools, timers): a reload
 * keeps these at their current value and names the ones the file changed. Key paths in the
 * schema; a section name covers all of its keys. Documented in docs/configuration.md. */
static const char *const RESTART_KEYS[] = {
    "kafka",
    "redis",
    "ingress",
    "gitlab.base_url",
    "worker.http_port",
    "worker.max_inflight",
    "worker.lease_ms",
    "notifier.http_port",
    "notifier.claim_lease_ms",
    "notifier.slack_channel_interval_ms",
    "notifier.feishu_chat_interval_ms",
    "events.enabled",
    "events.max_inflight",
    NULL,
};

static bool str_eq(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool fields_equal(const struct schema *s, const void *a, const void *b);

static bool field_equal(const struct field *f, const void *a, const void *b) {
    void *ma = (void *)a, *mb = (void *)b;
    switch (f->type) {
    case F_STR:
        return str_eq(*MEMBER(ma, f->off, char *), *MEMBER(mb, f->off, char *));
    case F_INT:
    case F_ENUM:
        return *MEMBER(ma, f->off, int) == *MEMBER(mb, f->off, int);
    case F_LLONG:
        return *MEMBER(ma, f->off, long long) == *MEMBER(mb, f->off, long long);
    case F_SIZE:
        return *MEMBER(ma, f->off, size_t) == *MEMBER(mb, f->off, size_t);
    case F_BOOL:
        return *MEMBER(ma, f->off, bool) == *MEMBER(mb, f->off, bool);
    case F_SECRET:
    case F_PROPVAL: {
        const struct cq_secret *x = MEMBER(ma, f->off, struct cq_secret);
        const struct cq_secret *y = MEMBER(mb, f->off, struct cq_secret);
        return str_eq(x->ref, y->ref) && str_eq(x->value, y->value);
    }
    case F_STRLIST: {
        char **x = *MEMBER(ma, f->off, char **), **y = *MEMBER(mb, f->off, char **);
        size_t i = 0;
        for (; x && y && x[i] && y[i]; i++)
            if (strcmp(x[i], y[i]) != 0) return false;
        return (!x || !x[i]) && (!y || !y[i]);
    }
    case F_MAP:
        return fields_equal(f->sub, a, b);
    case F_DICT:
    case F_LIST: {
        size_t n = *MEMBER(ma, f->n_off, size_t);
        if (n != *MEMBER(mb, f->n_off, size_t)) return false;
        char *x = *MEMBER(ma, f->off, char *), *y = *MEMBER(mb, f->off, char *);
        for (size_t i = 0; i < n; i++) {
            void *ex = x + i * f->sub->size, *ey = y + i * f->sub->size;
            if (f->type == F_DICT && !str_eq(*MEMBER(ex, f->sub->name_off, char *),
                                             *MEMBER(ey, f->sub->name_off, char *)))
                return false;
            if (!fields_equal(f->sub, ex, ey)) return false;
        }
        return true;
    }
    default:
        return false; /* F_INTLIST: not in a restart-only key */
    }
}

static bool fields_equal(const struct schema *s, const void *a, const void *b) {
    for (size_t i = 0; i < s->n; i++)
        if (!field_equal(&s->fields[i], a, b)) return false;
    return true;
}

static char *dup_or_null(const char *s, bool *ok) {
    char *d = s ? strdup(s) : NULL;
    if (s && !d) *ok = false;
    return d;
}

static bool copy_fields(const struct schema *s, void *dst, const void *src);

/* dst's member is freed first; on failure (no memory) dst's member may be partly filled
 * but is always freeable. */
static bool copy_field(const struct field *f, void *dst, const void *src) {
    void *ms = (void *)src;
    bool ok = true;
    cq_cfg_free_field(f, dst);
    switch (f->type) {
    case F_STR:
        *MEMBER(dst, f->off, char *) = dup_or_null(*MEMBER(ms, f->off, char *), &ok);
        return ok;
    case F_INT:
    case F_ENUM:
        *MEMBER(dst, f->off, int) = *MEMBER(ms, f->off, int);
        return true;
    case F_LLONG:
        *MEMBER(dst, f->off, long long) = *MEMBER(ms, f->off, long long);
        return true;
    case F_SIZE:
        *MEMBER(dst, f->off, size_t) = *MEMBER(ms, f->off, size_t);
        return true;
    case F_BOOL:
        *MEMBER(dst, f->off, bool) = *MEMBER(ms, f->off, bool);
        return true;
    case F_SECRET:
    case F_PROPVAL: {
        const struct cq_secret *x = MEMBER(ms, f->off, struct cq_secret);
        struct cq_secret *y = MEMBER(dst, f->off, struct cq_secret);
        y->ref = dup_or_null(x->ref, &ok);
        y->value = dup_or_null(x->value, &ok);
        return ok;
    }
    case F_STRLIST: {
        char **x = *MEMBER(ms, f->off, char **);
        size_t n = 0;
        while (x && x[n])
            n++;
        if (!x) return true;
        char **y = calloc(n + 1, sizeof(*y));
        if (!y) return false;
        *MEMBER(dst, f->off, char **) = y;
        for (size_t i = 0; i < n; i++)
            y[i] = dup_or_null(x[i], &ok);
        return ok;
    }
    case F_MAP:
        return copy_fields(f->sub, dst, src);
    case F_DICT:
    case F_LIST: {
        size_t n = *MEMBER(ms, f->n_off, size_t);
        char *x = *MEMBER(ms, f->off, char *);
        if (!x || !n) return true;
        char *y = calloc(n, f->sub->size);
        if (!y) return false;
        *MEMBER(dst, f->off, char *) = y;
        *MEMBER(dst, f->n_off, size_t) = n;
        for (size_t i = 0; i < n && ok; i++) {
            void *ex = x + i * f->sub->size, *ey = y + i * f->sub->size;
            if (f->type == F_DICT)
                *MEMBER(ey, f->sub->name_off, char *) =
                    dup_or_null(*MEMBER(ex, f->sub->name_off, char *), &ok);
            ok = ok && copy_fields(f->sub, ey, ex);
        }
        return ok;
    }
    default:
        return false;
    }
}

static bool copy_fields(const struct schema *s, void *dst, const void *src) {
    for (size_t i = 0; i < s->n; i++)
        if (!copy_field(&s->fields[i], dst, src)) return false;
    return true;
}

/* Calls fn for each leaf key (dotted path) under f whose value differs between a and b. */
static void diff_keys(const struct field *f, const char *path, const void *a, const void *b,
                      void (*fn)(void *arg, const char *key), void *arg) {
    if (field_equal(f, a, b)) return;
    if (f->type != F_MAP) {
        fn(arg, path);
        return;
    }
    for (size_t i = 0; i < f->sub->n; i++) {
        char sub[200];
        snprintf(sub, sizeof(sub), "%s.%s", path, f->sub->fields[i].key);
        diff_keys(&f->sub->fields[i], sub, a, b, fn, arg);
    }
}

/* Finds the field of a dotted key path in the top-level schema (F_MAP sections only). */
static const struct field *find_key(const char *key) {
    const struct schema *s = &cq_cfg_schema;
    const struct field *f = NULL;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", key);
    for (char *save = NULL, *part = strtok_r(buf, ".", &save); part;
         part = strtok_r(NULL, ".", &save)) {
        if (f && f->type != F_MAP) return NULL;
        if (f) s = f->sub;
        f = NULL;
        for (size_t i = 0; i < s->n; i++)
            if (s->fields[i].key && strcmp(s->fields[i].key, part) == 0) f = &s->fields[i];
        if (!f) return NULL;
    }
    return f;
}

enum cq_rc cq_config_keep_restart_keys(struct cq_config *next, const struct cq_config *cur,
                                       void (*changed)(void *arg, const char *key), void *arg,
                                       struct cq_err *err) {
    bool kafka = false;
    for (size_t i = 0; RESTART_KEYS[i]; i++) {
        const struct field *f = find_key(RESTART_KEYS[i]);
        if (!f) {
            cq_err_set(err, CQ_EINVAL, "restart key %s is not in the schema", RESTART_KEYS[i]);
            return CQ_EINVAL;
        }
        if (field_equal(f, next, cur)) continue;
        if (changed) diff_keys(f, RESTART_KEYS[i], cur, next, changed, arg);
        if (!copy_field(f, next, cur)) {
            cq_err_set(err, CQ_ENOMEM, "out of memory");
            return CQ_ENOMEM;
        }
        if (strcmp(RESTART_KEYS[i], "kafka") == 0) kafka = true;
    }
    if (kafka) { /* client_conf borrows from the kafka section: rebuilt from the copy */
        struct ctx c = {.name = next->path, .err = err};
        if (cq_cfg_kafka_check(&c, next, NULL) != CQ_OK) return err->code;
    }
    return CQ_OK;
}
