/* redis_uv: hiredis's async context on the libuv loop (redis_int.h), in place of
 * hiredis/adapters/libuv.h, which calls uv_poll_start on every read and write event hiredis
 * announces. libuv's uv_poll_start removes the fd from epoll and adds it back on the next
 * turn even when the mask did not change, so that adapter cost ~7 epoll_ctl calls and an
 * extra loop turn (waiting for EPOLLOUT on a socket that is writable anyway) per command.
 *
 * Here the fd stays registered for reading while connected; the poll mask changes only
 * when it must. A command's write is flushed by a uv_prepare_t just before the loop next
 * waits for I/O, so the commands issued in one loop turn go out in one write(); the socket
 * is watched for writability only while a write stays partial (a full socket buffer) or
 * the connection is not established yet. */
#include <stdbool.h>
#include <stdlib.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "redis_int.h"

struct redis_uv {
    redisAsyncContext *ac; /* NULL once hiredis let go (cleanup) */
    uv_poll_t poll;
    uv_prepare_t flush;
    int events;      /* the mask the poll handle runs with (0: stopped) */
    bool reading;    /* hiredis wants read events */
    bool want_write; /* hiredis has output buffered */
    bool poll_write; /* ... and waits for writability to send it */
    int open;        /* handles not yet closed */
};

static void on_poll(uv_poll_t *h, int status, int events);

static void update(struct redis_uv *e) {
    int want = (e->reading ? UV_READABLE : 0) | (e->poll_write ? UV_WRITABLE : 0);
    if (want == e->events) return;
    e->events = want;
    if (want)
        uv_poll_start(&e->poll, want, on_poll);
    else
        uv_poll_stop(&e->poll);
}

static void on_poll(uv_poll_t *h, int status, int events) {
    struct redis_uv *e = h->data;
    if (status < 0) {
        /* libuv stopped the handle (POLLERR): let hiredis find the error on a read or a
         * write, as the upstream adapter of hiredis 1.x does. */
        events = e->events;
        e->events = 0;
    }
    if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
    if (e->ac) update(e);
}

static void on_flush(uv_prepare_t *h) {
    struct redis_uv *e = h->data;
    uv_prepare_stop(h);
    if (!e->ac || !e->want_write || e->poll_write) return;
    if (!(e->ac->c.flags & REDIS_CONNECTED)) {
        /* connect(2) still in progress: its completion is a writable socket */
        e->poll_write = true;
        update(e);
        return;
    }
    redisAsyncHandleWrite(e->ac); /* hiredis calls del_write once its buffer is empty */
    if (e->ac && e->want_write) {
        e->poll_write = true; /* the socket buffer is full: go on when it drains */
        update(e);
    }
}

static void add_read(void *p) {
    struct redis_uv *e = p;
    e->reading = true;
    update(e);
}

static void del_read(void *p) {
    struct redis_uv *e = p;
    e->reading = false;
    update(e);
}

static void add_write(void *p) {
    struct redis_uv *e = p;
    e->want_write = true;
    if (e->poll_write) return;
    if (e->ac && !(e->ac->c.flags & REDIS_CONNECTED)) {
        e->poll_write = true;
        update(e);
        return;
    }
    uv_prepare_start(&e->flush, on_flush);
}

static void del_write(void *p) {
    struct redis_uv *e = p;
    e->want_write = false;
    e->poll_write = false;
    update(e);
}

static void handle_closed(uv_handle_t *h) {
    struct redis_uv *e = h->data;
    if (--e->open == 0) free(e);
}

static void cleanup(void *p) {
    struct redis_uv *e = p;
    e->ac = NULL; /* the context is being freed */
    uv_close((uv_handle_t *)&e->poll, handle_closed);
    uv_close((uv_handle_t *)&e->flush, handle_closed);
}

int cq_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    if (ac->ev.data) return REDIS_ERR;
    struct redis_uv *e = calloc(1, sizeof(*e));
    if (!e) return REDIS_ERR;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return REDIS_ERR;
    }
    uv_prepare_init(loop, &e->flush); /* cannot fail */
    e->poll.data = e->flush.data = e;
    e->open = 2;
    e->ac = ac;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = e;
    return REDIS_OK;
}
