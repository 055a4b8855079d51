/* loop: the one libuv event loop of a service thread (see loop.h). SIGTERM and
 * SIGINT are uv_signal_t watchers, so the "handler" runs on the loop thread and
 * only starts the drain: registered shutdown steps run once, in order, and the
 * signal watchers are closed so the loop can end when the steps let go. */
#include "loop.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct drain_step {
    void (*cb)(void *arg);
    void *arg;
};

struct cq_loop {
    uv_loop_t *uv;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    bool signals_open;
    bool stopping;
    struct drain_step *steps;
    size_t nsteps, capsteps;
};

static void on_signal(uv_signal_t *h, int signum) {
    struct cq_loop *l = h->data;
    cq_info(NULL, "received %s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    cq_loop_shutdown(l);
}

static void close_signals(struct cq_loop *l) {
    if (!l->signals_open) return;
    l->signals_open = false;
    uv_signal_stop(&l->sigterm);
    uv_signal_stop(&l->sigint);
    uv_close((uv_handle_t *)&l->sigterm, NULL);
    uv_close((uv_handle_t *)&l->sigint, NULL);
}

struct cq_loop *cq_loop_new(struct cq_err *err) {
    struct cq_loop *l = calloc(1, sizeof(*l));
    int rc;
    if (!l || !(l->uv = malloc(sizeof(*l->uv)))) {
        cq_err_set(err, CQ_ENOMEM, "loop: out of memory");
        goto out;
    }
    if ((rc = uv_loop_init(l->uv)) != 0) {
        free(l->uv);
        l->uv = NULL;
        cq_err_set(err, CQ_EIO, "loop: uv_loop_init: %s", uv_strerror(rc));
        goto out;
    }
    if ((rc = uv_signal_init(l->uv, &l->sigterm)) != 0) {
        cq_err_set(err, CQ_EIO, "loop: watching signals: %s", uv_strerror(rc));
        goto out;
    }
    uv_signal_init(l->uv, &l->sigint); /* cannot fail once the first one succeeded */
    l->sigterm.data = l->sigint.data = l;
    l->signals_open = true;
    if ((rc = uv_signal_start(&l->sigterm, on_signal, SIGTERM)) != 0 ||
        (rc = uv_signal_start(&l->sigint, on_signal, SIGINT)) != 0) {
        cq_err_set(err, CQ_EIO, "loop: watching signals: %s", uv_strerror(rc));
        goto out;
    }
    return l;
out:
    cq_loop_free(l);
    return NULL;
}

uv_loop_t *cq_loop_uv(struct cq_loop *l) {
    return l->uv;
}

enum cq_rc cq_loop_on_shutdown(struct cq_loop *l, void (*cb)(void *arg), void *arg) {
    if (!l || !cb) return CQ_EINVAL;
    if (l->nsteps == l->capsteps) {
        size_t cap = l->capsteps ? l->capsteps * 2 : 8;
        struct drain_step *s = realloc(l->steps, cap * sizeof(*s));
        if (!s) return CQ_ENOMEM;
        l->steps = s;
        l->capsteps = cap;
    }
    l->steps[l->nsteps].cb = cb;
    l->steps[l->nsteps].arg = arg;
    l->nsteps++;
    return CQ_OK;
}

void cq_loop_shutdown(struct cq_loop *l) {
    if (!l || l->stopping) return;
    l->stopping = true;
    close_signals(l);
    /* Index loop: a step may register a later step (it runs in this same pass). */
    for (size_t i = 0; i < l->nsteps; i++)
        l->steps[i].cb(l->steps[i].arg);
}

bool cq_loop_stopping(const struct cq_loop *l) {
    return l && l->stopping;
}

int cq_loop_run(struct cq_loop *l) {
    return uv_run(l->uv, UV_RUN_DEFAULT);
}

static void close_leftover(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void cq_loop_free(struct cq_loop *l) {
    if (!l) return;
    if (l->uv) {
        close_signals(l);
        /* Leftover handles belong to modules that were not freed; closing them lets the
         * loop close (their memory is theirs to leak, and a leak checker will say so). */
        uv_walk(l->uv, close_leftover, NULL);
        while (uv_loop_close(l->uv) == UV_EBUSY) {
            uv_run(l->uv, UV_RUN_DEFAULT);
            uv_walk(l->uv, close_leftover, NULL);
        }
        free(l->uv);
    }
    free(l->steps);
    free(l);
}

uint64_t cq_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
