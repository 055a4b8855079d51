/* tsan_c11threads: linked into every executable of a -DCQ_SANITIZE=thread build only.
 *
 * librdkafka runs its threads with C11 <threads.h> (thrd_create, mtx_lock, cnd_wait...).
 * The ThreadSanitizer runtime of GCC 12 intercepts the pthread functions but not these: a
 * thread started by thrd_create has no TSan state and crashes in its first malloc, and
 * locking through mtx_lock is invisible (every hand-over between a librdkafka thread and
 * ours would look like a race). glibc implements the C11 calls on the pthread ones with the
 * same object layouts (thrd_t is a pthread_t, mtx_t a pthread_mutex_t, cnd_t a
 * pthread_cond_t), so defining them here, in the executable, makes librdkafka's calls bind
 * to these, which call the pthread functions TSan does intercept. Not for production. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread_cond_t");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");

static int rc_of(int e) {
    return e == 0                       ? thrd_success
           : e == ETIMEDOUT             ? thrd_timedout
           : e == EBUSY                 ? thrd_busy
           : e == ENOMEM || e == EAGAIN ? thrd_nomem
                                        : thrd_error;
}

struct start {
    thrd_start_t fn;
    void *arg;
};

static void *run(void *p) {
    struct start s = *(struct start *)p;
    free(p);
    return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) {
    struct start *s = malloc(sizeof(*s));
    if (!s) return thrd_nomem;
    s->fn = fn;
    s->arg = arg;
    int e = pthread_create((pthread_t *)thr, NULL, run, s);
    if (e) free(s);
    return rc_of(e);
}

int thrd_join(thrd_t thr, int *res) {
    void *r = NULL;
    int e = pthread_join((pthread_t)thr, &r);
    if (!e && res) *res = (int)(intptr_t)r;
    return rc_of(e);
}

int thrd_detach(thrd_t thr) {
    return rc_of(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int e = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return rc_of(e);
}

int mtx_lock(mtx_t *m) {
    return rc_of(pthread_mutex_lock((pthread_mutex_t *)m));
}
int mtx_trylock(mtx_t *m) {
    return rc_of(pthread_mutex_trylock((pthread_mutex_t *)m));
}
int mtx_unlock(mtx_t *m) {
    return rc_of(pthread_mutex_unlock((pthread_mutex_t *)m));
}
void mtx_destroy(mtx_t *m) {
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts) {
    return rc_of(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int cnd_init(cnd_t *c) {
    return rc_of(pthread_cond_init((pthread_cond_t *)c, NULL));
}
int cnd_signal(cnd_t *c) {
    return rc_of(pthread_cond_signal((pthread_cond_t *)c));
}
int cnd_broadcast(cnd_t *c) {
    return rc_of(pthread_cond_broadcast((pthread_cond_t *)c));
}
void cnd_destroy(cnd_t *c) {
    pthread_cond_destroy((pthread_cond_t *)c);
}

int cnd_wait(cnd_t *c, mtx_t *m) {
    return rc_of(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts) {
    return rc_of(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread_once_t");

void call_once(once_flag *flag, void (*fn)(void)) {
    pthread_once((pthread_once_t *)flag, fn);
}
