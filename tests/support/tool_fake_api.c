/* cqt-fake_api: a fast fake HTTP API for benchmarks. Every request gets, after DELAY_MS,
 * 200 {"name":"<last path segment>","state":"on"}; the wait holds no thread (libmicrohttpd
 * suspend/resume, one resumer thread), so thousands of calls can be waiting at once.
 *   cqt-fake_api PORT_FILE DELAY_MS     (listens on any free port; writes it to PORT_FILE)
 * SIGTERM/SIGINT: prints "served N over M connections" to stdout and exits 0. */
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pending {
    struct MHD_Connection *conn;
    uint64_t due_ms;
    bool resumed;
    struct pending *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct pending *head, *tail; /* FIFO: one delay for all, so due times are ordered */
static atomic_bool stop;
static atomic_long served;
static atomic_long connections; /* TCP connections accepted: shows whether clients reuse them */
static int delay_ms;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *resumer(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        uint64_t now = now_ms();
        pthread_mutex_lock(&mu);
        while (head && head->due_ms <= now) {
            struct pending *p = head;
            head = p->next;
            if (!head) tail = NULL;
            p->next = NULL;
            p->resumed = true;
            MHD_resume_connection(p->conn);
        }
        pthread_mutex_unlock(&mu);
        struct timespec ts = {0, 1000000}; /* 1 ms */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state) {
    (void)cls;
    (void)method;
    (void)version;
    (void)upload;
    struct pending *p = *state;
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p) return MHD_NO;
        p->conn = c;
        *state = p;
        return MHD_YES;
    }
    if (*upload_len) { /* bodies are read and ignored */
        *upload_len = 0;
        return MHD_YES;
    }
    if (!p->resumed) {
        p->due_ms = now_ms() + (uint64_t)delay_ms;
        pthread_mutex_lock(&mu);
        MHD_suspend_connection(c);
        if (tail)
            tail->next = p;
        else
            head = p;
        tail = p;
        pthread_mutex_unlock(&mu);
        return MHD_YES;
    }
    const char *name = strrchr(url, '/');
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"name\":\"%.200s\",\"state\":\"on\"}",
                     name ? name + 1 : url);
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    atomic_fetch_add(&served, 1);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode why) {
    (void)cls;
    (void)c;
    (void)why;
    free(*state); /* never still queued: a queued connection is suspended */
    *state = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    (void)cls;
    (void)c;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&connections, 1);
}

int main(int argc, char **argv) {
    sigset_t set;
    int sig = 0;
    pthread_t th;
    if (argc != 3) {
        fprintf(stderr, "usage: cqt-fake_api PORT_FILE DELAY_MS\n");
        return 2;
    }
    delay_ms = atoi(argv[2]);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads started below inherit the mask */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_ALLOW_SUSPEND_RESUME, 0,
        NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 20000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cqt-fake_api: cannot listen\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", info ? info->port : 0) < 0 || fclose(f) != 0 ||
        rename(tmp, argv[1]) != 0) {
        fprintf(stderr, "cqt-fake_api: cannot write %s\n", argv[1]);
        MHD_stop_daemon(d);
        return 1;
    }
    if (pthread_create(&th, NULL, resumer, NULL) != 0) {
        MHD_stop_daemon(d);
        return 1;
    }
    sigwait(&set, &sig);
    /* resume everything so MHD can close the connections */
    pthread_mutex_lock(&mu);
    for (struct pending *p = head, *next; p; p = next) {
        next = p->next; /* p may be freed by the MHD thread once resumed */
        p->resumed = true;
        MHD_resume_connection(p->conn);
    }
    head = tail = NULL;
    pthread_mutex_unlock(&mu);
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    MHD_stop_daemon(d);
    printf("served %ld over %ld connections\n", atomic_load(&served), atomic_load(&connections));
    return 0;
}
