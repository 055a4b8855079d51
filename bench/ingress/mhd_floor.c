/* bench/ingress/mhd_floor.c: the libmicrohttpd floor of bench/ingress/run.sh. A minimal HTTP
 * server with chatops-ingress's own MHD set-up (ingress/server.c, threads: 1): MHD_USE_EPOLL |
 * MHD_ALLOW_SUSPEND_RESUME without an MHD thread (the caller waits on MHD's epoll fd and calls
 * MHD_run), 8 KiB connection memory, backlog 1024. It reads the POST body and answers 200 with
 * a JSON body and the ingress's two headers (Content-Type, X-Request-Id): no signature check,
 * no parsing, no Kafka. With --suspend it also suspends every request and resumes it on the
 * next loop turn, as the ingress does while Kafka confirms (the epoll_ctl DEL/ADD pair and the
 * EAGAIN read of MHD 0.9.75's suspend/resume), so the two legs split that cost out.
 *   cq-mhd-floor PORT [--suspend]
 * Not a test; SIGTERM/SIGINT stop it. */
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define MAX_PENDING 4096

static volatile sig_atomic_t stop;
static bool suspend;
static struct MHD_Connection *pending[MAX_PENDING]; /* suspended, resumed next turn */
static size_t npending;

static const char answer[] = "{\"response_type\":\"ephemeral\",\"text\":\"Queued: status staging "
                             "(request 0123456789abcdef)\"}";

struct req {
    bool suspended; /* answered on the call after the resume */
};

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **state) {
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    struct req *r = *state;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *state = r;
        return MHD_YES;
    }
    if (*upload_len) { /* the body: swallowed */
        *upload_len = 0;
        return MHD_YES;
    }
    if (suspend && !r->suspended && npending < MAX_PENDING) {
        r->suspended = true;
        MHD_suspend_connection(mc);
        pending[npending++] = mc;
        return MHD_YES;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof answer - 1, (void *)answer, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "X-Request-Id", "0123456789abcdef0123456789abcdef");
    enum MHD_Result ret = MHD_queue_response(mc, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **state,
                         enum MHD_RequestTerminationCode code) {
    (void)cls, (void)mc, (void)code;
    free(*state);
    *state = NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: cq-mhd-floor PORT [--suspend]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    suspend = argc > 2 && strcmp(argv[2], "--suspend") == 0;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)port, NULL, NULL, on_request, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cq-mhd-floor: cannot listen on port %d\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    int outer = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (!ep || outer < 0 || epoll_ctl(outer, EPOLL_CTL_ADD, ep->epoll_fd, &ev) != 0) {
        fprintf(stderr, "cq-mhd-floor: no epoll fd\n");
        return 1;
    }
    /* the ingress's loop: MHD's epoll fd in the loop's poll set, MHD_run when it is ready,
     * at once again when a connection was resumed or MHD holds work (timeout 0) */
    while (!stop) {
        MHD_run(d);
        bool resumed = npending > 0;
        for (size_t i = 0; i < npending; i++)
            MHD_resume_connection(pending[i]);
        npending = 0;
        MHD_UNSIGNED_LONG_LONG ms = 1000;
        int timeout = 1000;
        if (resumed)
            timeout = 0;
        else if (MHD_get_timeout(d, &ms) == MHD_YES)
            timeout = ms < 1000 ? (int)ms : 1000;
        struct epoll_event out;
        if (epoll_wait(outer, &out, 1, timeout) < 0 && errno != EINTR) break;
    }
    MHD_stop_daemon(d);
    return 0;
}
