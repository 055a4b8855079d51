/* config_reload: SIGHUP -> load, validate, keep the restart-only keys, apply (see the
 * header). Loop thread only, except the reference counts, which are atomic. */
#include "config_reload.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "metrics.h"

struct cq_config *cq_config_ref(const struct cq_config *cfg) {
    struct cq_config *c = (struct cq_config *)cfg;
    if (c) __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void cq_config_unref(const struct cq_config *cfg) {
    struct cq_config *c = (struct cq_config *)cfg;
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) cq_config_free(c);
}

struct cq_reload {
    uv_signal_t sig;
    char *svc, *path;
    struct cq_config *cur;
    cq_reload_apply_fn apply;
    void *arg;
    bool closed;
};

struct changed_list {
    char text[512];
    size_t len;
};

static void add_changed(void *arg, const char *key) {
    struct changed_list *l = arg;
    int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s%s", l->len ? ", " : "", key);
    if (n > 0) l->len += (size_t)n;
    if (l->len >= sizeof(l->text)) l->len = sizeof(l->text) - 1;
}

static void count(bool failed) {
    cq_counter_inc(cq_counter_get("chatops_config_reloads_total",
                                  "Config reloads attempted (SIGHUP or chatopsctl reload)", NULL));
    if (failed)
        cq_counter_inc(cq_counter_get("chatops_config_reload_failures_total",
                                      "Config reloads refused (the current config stays)", NULL));
}

bool cq_reload_now(struct cq_reload *r) {
    struct cq_err err = {0};
    struct changed_list changed = {.len = 0};
    struct cq_config *next = cq_config_load(r->path, &err);
    if (!next) {
        count(true);
        cq_error(NULL, "config reload failed, the current config stays: %s", err.msg);
        return false;
    }
    if (cq_config_keep_restart_keys(next, r->cur, add_changed, &changed, &err) != CQ_OK) {
        cq_config_unref(next);
        count(true);
        cq_error(NULL, "config reload failed, the current config stays: %s", err.msg);
        return false;
    }
    if (changed.len)
        cq_warn(NULL, "config reload: keys that need a restart keep their current value: %s",
                changed.text);
    if (strcmp(next->log.level, r->cur->log.level) != 0) /* (rewrites the log's globals) */
        cq_log_init(r->svc, cq_log_level_parse(next->log.level));
    r->apply(r->arg, next);
    cq_config_unref(r->cur);
    r->cur = next;
    count(false);
    cq_info(NULL, "config reloaded from %s: %zu commands, %zu people, %zu channels, %zu rules",
            r->path, next->n_commands, next->n_people, next->n_channels, next->n_rules);
    return true;
}

static void on_sighup(uv_signal_t *h, int signum) {
    (void)signum;
    struct cq_reload *r = h->data;
    if (!r->closed) cq_reload_now(r);
}

static void on_closed(uv_handle_t *h) {
    struct cq_reload *r = h->data;
    cq_config_unref(r->cur);
    free(r->svc);
    free(r->path);
    free(r);
}

static void on_shutdown(void *arg) {
    struct cq_reload *r = arg;
    r->closed = true;
    uv_close((uv_handle_t *)&r->sig, on_closed);
    signal(SIGHUP, SIG_IGN); /* a SIGHUP during the drain must not end the process */
}

struct cq_reload *cq_reload_start(struct cq_loop *loop, const char *svc, const char *path,
                                  const struct cq_config *cfg, cq_reload_apply_fn apply, void *arg,
                                  struct cq_err *err) {
    struct cq_reload *r = calloc(1, sizeof(*r));
    int rc;
    if (!r || !(r->svc = strdup(svc)) || !(r->path = strdup(path))) {
        if (r) free(r->svc);
        free(r);
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        return NULL;
    }
    r->apply = apply;
    r->arg = arg;
    r->sig.data = r;
    if ((rc = uv_signal_init(cq_loop_uv(loop), &r->sig)) != 0) {
        free(r->svc);
        free(r->path);
        free(r);
        cq_err_set(err, CQ_EIO, "cannot watch SIGHUP: %s", uv_strerror(rc));
        return NULL;
    }
    r->cur = cq_config_ref(cfg);
    if ((rc = uv_signal_start(&r->sig, on_sighup, SIGHUP)) != 0 ||
        cq_loop_on_shutdown(loop, on_shutdown, r) != CQ_OK) {
        r->closed = true;
        uv_close((uv_handle_t *)&r->sig, on_closed);
        cq_err_set(err, CQ_EIO, "cannot watch SIGHUP: %s", rc ? uv_strerror(rc) : "no memory");
        return NULL;
    }
    return r;
}
