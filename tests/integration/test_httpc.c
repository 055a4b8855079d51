/* Integration test of common/httpc against a libmicrohttpd server inside this
 * process (thread per connection): 200 concurrent requests on one loop, timeouts
 * that do not block others, Retry-After, size limit, refused connects, free. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cqtest.h"
#include "httpc.h"
#include "loop.h"

/* ---- the server ---- */

#define BIG_SIZE (2u * 1024u * 1024u)
static char big_body[BIG_SIZE];

struct upload {
    char buf[4096];
    size_t len;
};

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body,
                               size_t len, enum MHD_ResponseMemoryMode mode,
                               const char *const *headers) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) return MHD_NO;
    for (const char *const *h = headers; h && h[0]; h += 2)
        MHD_add_response_header(r, h[0], h[1]);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Chunked (no Content-Length): only the write callback can enforce the limit. */
static ssize_t chunk_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)cls;
    if (pos >= BIG_SIZE) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = BIG_SIZE - pos < max ? (size_t)(BIG_SIZE - pos) : max;
    memset(buf, 'y', n);
    return (ssize_t)n;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
    (void)cls;
    (void)version;
    struct upload *u = *con_cls;
    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u) return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (n > sizeof(u->buf) - 1 - u->len) n = sizeof(u->buf) - 1 - u->len;
        memcpy(u->buf + u->len, upload_data, n);
        u->len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/ok") == 0) {
        char out[4400];
        const char *hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Test");
        int n = snprintf(out, sizeof(out), "method=%s body=%.*s hdr=%s", method, (int)u->len,
                         u->buf, hdr ? hdr : "-");
        return respond(c, 200, out, (size_t)n, MHD_RESPMEM_MUST_COPY, NULL);
    }
    if (strcmp(url, "/close") == 0) {
        const char *hs[] = {"Connection", "close", NULL};
        return respond(c, 200, "bye", 3, MHD_RESPMEM_PERSISTENT, hs);
    }
    if (strcmp(url, "/slow") == 0) {
        sleep(2);
        return respond(c, 200, "slow", 4, MHD_RESPMEM_PERSISTENT, NULL);
    }
    if (strcmp(url, "/429") == 0) {
        const char *hs[] = {"Retry-After", "3", "x-ogw-ratelimit-reset", "17", NULL};
        return respond(c, 429, "rate limited", 12, MHD_RESPMEM_PERSISTENT, hs);
    }
    if (strcmp(url, "/big") == 0)
        return respond(c, 200, big_body, BIG_SIZE, MHD_RESPMEM_PERSISTENT, NULL);
    if (strcmp(url, "/bigchunked") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, chunk_reader, NULL, NULL);
        if (!r) return MHD_NO;
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    return respond(c, 404, "no", 2, MHD_RESPMEM_PERSISTENT, NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static struct MHD_Daemon *D;
static char base[64];

static void start_server(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    memset(big_body, 'x', sizeof(big_body));
    D = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                             MHD_USE_POLL | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &a,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!D) cqtest_fatal("MHD_start_daemon failed");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(D, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !info->port) cqtest_fatal("no bound port");
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)info->port);
}

/* ---- the client side ---- */

static struct cq_loop *L;

static void tick(uv_timer_t *t) {
    (void)t;
}

static bool run_until(const bool *flag, int timeout_ms) {
    uv_timer_t t;
    uint64_t end = cq_now_ms() + (uint64_t)timeout_ms;
    uv_timer_init(cq_loop_uv(L), &t);
    uv_timer_start(&t, tick, 5, 5);
    while (!*flag && cq_now_ms() < end)
        uv_run(cq_loop_uv(L), UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(cq_loop_uv(L), UV_RUN_NOWAIT);
    return *flag;
}

static void run_for(int ms) {
    bool never = false;
    run_until(&never, ms);
}

struct res {
    int calls;
    bool done;
    long status;
    enum cq_rc rc;
    char body[512];
    size_t body_len;
    char retry_after[32];
    char reset[32];
    char errmsg[256];
    uint64_t at;
    int *counter; /* optional: incremented on each call */
    bool *all_done;
    int all_n;
};

static void on_resp(void *opaque, const struct cq_http_response *resp) {
    struct res *x = opaque;
    x->calls++;
    x->done = true;
    x->at = cq_now_ms();
    x->status = resp->status;
    x->rc = resp->rc;
    x->body_len = resp->body_len;
    snprintf(x->body, sizeof(x->body), "%s", resp->body ? resp->body : "(null)");
    snprintf(x->retry_after, sizeof(x->retry_after), "%s",
             resp->retry_after ? resp->retry_after : "");
    snprintf(x->reset, sizeof(x->reset), "%s", resp->ratelimit_reset ? resp->ratelimit_reset : "");
    snprintf(x->errmsg, sizeof(x->errmsg), "%s", resp->errmsg);
    if (x->counter && ++*x->counter == x->all_n && x->all_done) *x->all_done = true;
}

static struct cq_httpc *client(int maxconn) {
    struct cq_err err;
    struct cq_httpc *h = cq_httpc_new(L, maxconn, &err);
    if (!h) cqtest_fatal("cq_httpc_new: %s", err.msg);
    return h;
}

static enum cq_rc get(struct cq_httpc *h, const char *path, int timeout_ms, size_t max,
                      struct res *x) {
    char url[128];
    struct cq_err err;
    snprintf(url, sizeof(url), "%s%s", base, path);
    struct cq_http_request req = {
        .method = "GET", .url = url, .timeout_ms = timeout_ms, .max_response = max};
    return cq_httpc_request(h, &req, on_resp, x, &err);
}

static void free_client(struct cq_httpc *h) {
    cq_httpc_free(h);
    run_for(20);
}

#define N_CONCURRENT 200

TEST(concurrent_requests) {
    static struct res rs[N_CONCURRENT];
    int finished = 0;
    bool all = false;
    struct cq_httpc *h = client(50);
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < N_CONCURRENT; i++) {
        char url[128], body[32], hdr[48];
        struct cq_err err;
        snprintf(url, sizeof(url), "%s/ok", base);
        int blen = snprintf(body, sizeof(body), "n=%d", i);
        snprintf(hdr, sizeof(hdr), "X-Test: h%d", i);
        const char *headers[] = {hdr, "Content-Type: text/plain", NULL};
        struct cq_http_request req = {.method = i % 2 ? "POST" : "PUT",
                                      .url = url,
                                      .headers = headers,
                                      .body = body,
                                      .body_len = (size_t)blen,
                                      .timeout_ms = 10000};
        rs[i].counter = &finished;
        rs[i].all_done = &all;
        rs[i].all_n = N_CONCURRENT;
        CHECK(cq_httpc_request(h, &req, on_resp, &rs[i], &err) == CQ_OK); /* copies req */
    }
    CHECK(cq_httpc_inflight(h) == N_CONCURRENT);
    CHECK(finished == 0);
    uint64_t t0 = cq_now_ms();
    CHECK(run_until(&all, 15000));
    int good = 0, once = 1;
    for (int i = 0; i < N_CONCURRENT; i++) {
        char want[96];
        snprintf(want, sizeof(want), "method=%s body=n=%d hdr=h%d", i % 2 ? "POST" : "PUT", i, i);
        good += rs[i].rc == CQ_OK && rs[i].status == 200 && strcmp(rs[i].body, want) == 0;
        once &= rs[i].calls == 1;
    }
    CHECK(good == N_CONCURRENT);
    CHECK(once);
    CHECK(cq_httpc_inflight(h) == 0);
    printf("  %d concurrent POST/PUT requests with bodies and headers echoed correctly in "
           "%llu ms\n",
           good, (unsigned long long)(cq_now_ms() - t0));
    free_client(h);
}

TEST(timeout_does_not_block_others) {
    struct cq_httpc *h = client(16);
    struct res slow = {0}, ok[10];
    int finished = 0;
    bool all = false;
    memset(ok, 0, sizeof(ok));
    uint64_t t0 = cq_now_ms();
    CHECK(get(h, "/slow", 300, 0, &slow) == CQ_OK);
    for (int i = 0; i < 10; i++) {
        ok[i].counter = &finished;
        ok[i].all_done = &all;
        ok[i].all_n = 10;
        CHECK(get(h, "/ok", 5000, 0, &ok[i]) == CQ_OK);
    }
    CHECK(run_until(&slow.done, 2000));
    CHECK(run_until(&all, 2000));
    uint64_t took = slow.at - t0;
    CHECK(slow.rc == CQ_ETIMEOUT && slow.status == 0);
    CHECK(took >= 250 && took < 1000);
    CHECK_CONTAINS(slow.errmsg, "timed out");
    int good = 0;
    for (int i = 0; i < 10; i++)
        good += ok[i].rc == CQ_OK && ok[i].at < slow.at;
    CHECK(good == 10);
    printf("  /slow with timeout 300 ms -> CQ_ETIMEOUT after %llu ms; 10 others finished "
           "before it\n",
           (unsigned long long)took);
    free_client(h);
}

TEST(status_headers_and_limits) {
    struct cq_httpc *h = client(4);
    struct res r429 = {0}, big = {0}, bigok = {0}, missing = {0}, chunked = {0};
    CHECK(get(h, "/429", 2000, 0, &r429) == CQ_OK);
    CHECK(get(h, "/big", 5000, 0, &big) == CQ_OK);          /* default limit 1 MiB */
    CHECK(get(h, "/big", 5000, 3u << 20, &bigok) == CQ_OK); /* 3 MiB allowed */
    CHECK(get(h, "/nope", 2000, 0, &missing) == CQ_OK);
    CHECK(get(h, "/bigchunked", 5000, 100000, &chunked) == CQ_OK);
    CHECK(run_until(&r429.done, 3000));
    CHECK(run_until(&big.done, 5000));
    CHECK(run_until(&bigok.done, 5000));
    CHECK(run_until(&missing.done, 3000));
    CHECK(run_until(&chunked.done, 3000));
    CHECK(chunked.rc == CQ_EHTTP && chunked.status == 200 && chunked.body_len <= 100000);
    CHECK_CONTAINS(chunked.errmsg, "response too large (limit 100000 bytes)");
    CHECK(r429.rc == CQ_OK && r429.status == 429);
    CHECK_STR(r429.retry_after, "3");
    CHECK_STR(r429.reset, "17");
    CHECK_STR(r429.body, "rate limited");
    CHECK(big.rc == CQ_EHTTP);
    CHECK_CONTAINS(big.errmsg, "response too large");
    CHECK(bigok.rc == CQ_OK && bigok.body_len == BIG_SIZE);
    CHECK(missing.rc == CQ_OK && missing.status == 404 && missing.retry_after[0] == '\0');
    printf("  429 with Retry-After=%s reset=%s; 2 MiB over a 1 MiB limit -> %s; 404 is a "
           "response; chunked body over 100 kB cut at %zu bytes\n",
           r429.retry_after, r429.reset, big.errmsg, chunked.body_len);
    free_client(h);
}

static int refused_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        cqtest_fatal("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

TEST(errors) {
    struct cq_httpc *h = client(4);
    struct res refused = {0}, never = {0};
    struct cq_err err;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", refused_port());
    struct cq_http_request req = {.url = url, .timeout_ms = 2000};
    CHECK(cq_httpc_request(h, &req, on_resp, &refused, &err) == CQ_OK);
    CHECK(run_until(&refused.done, 3000));
    CHECK(refused.rc == CQ_EHTTP && refused.status == 0);
    CHECK(refused.errmsg[0] != '\0');
    printf("  refused connect -> CQ_EHTTP: %s\n", refused.errmsg);

    struct cq_http_request file = {.url = "file:///etc/passwd"};
    CHECK(cq_httpc_request(h, &file, on_resp, &never, &err) == CQ_EINVAL);
    const char *bad_headers[] = {"X-A: 1\r\nX-Injected: 1", NULL};
    struct cq_http_request inj = {.url = url, .headers = bad_headers};
    CHECK(cq_httpc_request(h, &inj, on_resp, &never, &err) == CQ_EINVAL);
    struct cq_http_request badm = {.url = url, .method = "GE T"};
    CHECK(cq_httpc_request(h, &badm, on_resp, &never, &err) == CQ_EINVAL);
    run_for(50);
    CHECK(never.calls == 0);
    CHECK(cq_httpc_inflight(h) == 0);
    printf("  file:// URL, CR/LF in a header and a bad method rejected without a callback\n");

    char *e = cq_url_escape("a b&c/\xc3\xa9", 8);
    CHECK_STR(e, "a%20b%26c%2F%C3%A9");
    free(e);
    free_client(h);
}

static struct cq_httpc *free_me;
static void free_in_callback(void *opaque, const struct cq_http_response *resp) {
    on_resp(opaque, resp);
    cq_httpc_free(free_me);
}

TEST(free_with_pending) {
    struct cq_httpc *h = client(8);
    struct res rs[5];
    struct cq_err err;
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < 5; i++)
        CHECK(get(h, "/slow", 5000, 0, &rs[i]) == CQ_OK);
    run_for(100); /* connected and waiting */
    cq_httpc_free(h);
    int once = 1;
    for (int i = 0; i < 5; i++)
        once &= rs[i].calls == 1 && rs[i].rc == CQ_ESHUTDOWN;
    CHECK(once);
    run_for(100);
    for (int i = 0; i < 5; i++)
        once &= rs[i].calls == 1;
    CHECK(once);

    /* Freed from inside a completion: the others still get exactly one callback. */
    h = client(8);
    free_me = h;
    memset(rs, 0, sizeof(rs));
    char url[128];
    snprintf(url, sizeof(url), "%s/ok", base);
    struct cq_http_request req = {.url = url, .timeout_ms = 5000};
    CHECK(cq_httpc_request(h, &req, free_in_callback, &rs[0], &err) == CQ_OK);
    for (int i = 1; i < 5; i++)
        CHECK(get(h, "/slow", 5000, 0, &rs[i]) == CQ_OK);
    CHECK(run_until(&rs[0].done, 3000));
    CHECK(rs[0].rc == CQ_OK);
    once = 1;
    for (int i = 1; i < 5; i++)
        once &= rs[i].calls == 1 && rs[i].rc == CQ_ESHUTDOWN;
    CHECK(once);
    run_for(100);
    CHECK(rs[0].calls == 1);
    printf("  free with pending requests: each callback once with CQ_ESHUTDOWN (also from "
           "inside a callback)\n");
}

/* A kept-alive connection keeps its one uv_poll_t between transfers (no re-registration per
 * transfer); parked, it does not hold the loop; when the server closes it while it idles, the
 * loop does not spin on the EOF and the next request opens a new connection; a connection
 * curl closes (Connection: close) takes its watch with it. */
static int n_polls, n_active_polls, n_ref_polls;
static uv_handle_t *last_poll;
static void count_polls(uv_handle_t *hd, void *arg) {
    (void)arg;
    if (hd->type != UV_POLL || uv_is_closing(hd)) return;
    n_polls++;
    n_active_polls += uv_is_active(hd) != 0;
    n_ref_polls += uv_has_ref(hd) != 0;
    last_poll = hd;
}
static void walk_polls(void) {
    n_polls = n_active_polls = n_ref_polls = 0;
    last_poll = NULL;
    uv_walk(cq_loop_uv(L), count_polls, NULL);
}
static long turns;
static void count_turn(uv_prepare_t *p) {
    (void)p;
    turns++;
}

TEST(kept_alive_sockets) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d2 = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
        NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 1u, MHD_OPTION_END);
    if (!d2) cqtest_fatal("MHD_start_daemon failed");
    char saved[64];
    snprintf(saved, sizeof(saved), "%s", base);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u",
             (unsigned)MHD_get_daemon_info(d2, MHD_DAEMON_INFO_BIND_PORT)->port);
    struct cq_httpc *h = client(4);
    struct res r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    CHECK(get(h, "/ok", 5000, 0, &r1) == CQ_OK);
    CHECK(run_until(&r1.done, 5000) && r1.status == 200);
    walk_polls();
    CHECK(n_polls == 1 && n_active_polls == 1 && n_ref_polls == 0); /* parked, unref'd */
    uv_handle_t *first = last_poll;
    CHECK(get(h, "/ok", 5000, 0, &r2) == CQ_OK);
    CHECK(run_until(&r2.done, 5000) && r2.status == 200);
    walk_polls();
    CHECK(n_polls == 1 && last_poll == first); /* the same watch for the reused connection */
    /* the server drops the idle connection after 1 s */
    uv_prepare_t turn;
    uv_prepare_init(cq_loop_uv(L), &turn);
    uv_prepare_start(&turn, count_turn);
    turns = 0;
    run_for(1800);
    uv_close((uv_handle_t *)&turn, NULL);
    long idle_turns = turns;
    CHECK(idle_turns < 1000); /* 5 ms ticks: ~360; a spin on the EOF would be millions */
    walk_polls();
    CHECK(n_active_polls == 0);
    CHECK(get(h, "/ok", 5000, 0, &r3) == CQ_OK);
    CHECK(run_until(&r3.done, 5000) && r3.status == 200 && r3.rc == CQ_OK);
    walk_polls();
    CHECK(n_polls == 1 && n_active_polls == 1); /* the dead one closed, the new one parked */
    CHECK(get(h, "/close", 5000, 0, &r4) == CQ_OK);
    CHECK(run_until(&r4.done, 5000) && r4.status == 200);
    run_for(20);
    walk_polls();
    CHECK(n_polls == 0); /* curl closed the connection: its watch went first */
    /* a name to resolve (curl answers "localhost" itself; the host's own name goes through
     * the threaded resolver, whose socketpair curl watches while it runs and closes without
     * the close callback): its watch must not be kept */
    char host[256] = "", url[400];
    struct addrinfo hints = {.ai_family = AF_INET}, *ai = NULL;
    bool loopback = gethostname(host, sizeof(host) - 1) == 0 && host[0] &&
                    getaddrinfo(host, NULL, &hints, &ai) == 0 && ai &&
                    ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    if (ai) freeaddrinfo(ai);
    if (loopback) {
        struct cq_httpc *h2 = client(4);
        struct res r5 = {0}, r6 = {0};
        struct cq_err e2;
        snprintf(url, sizeof(url), "http://%s:%u/ok", host,
                 (unsigned)MHD_get_daemon_info(D, MHD_DAEMON_INFO_BIND_PORT)->port);
        struct cq_http_request req = {.method = "GET", .url = url, .timeout_ms = 5000};
        for (int i = 0; i < 3; i++) {
            memset(&r5, 0, sizeof(r5));
            CHECK(cq_httpc_request(h2, &req, on_resp, &r5, &e2) == CQ_OK);
            CHECK(run_until(&r5.done, 5000) && r5.status == 200);
            run_for(20);
            walk_polls();
            CHECK(n_polls == 1); /* the connection, parked; nothing of the resolver */
        }
        (void)r6;
        free_client(h2);
    } else {
        printf("  (the host name does not resolve to 127.0.0.1: resolver check skipped)\n");
    }
    printf("  one watch per kept-alive connection (parked between transfers, %ld loop turns "
           "while the server closed it); closed with the connection\n",
           idle_turns);
    free_client(h);
    snprintf(base, sizeof(base), "%s", saved);
    MHD_stop_daemon(d2);
}

int main(void) {
    struct cq_err err;
    /* this process embeds the library the way a service does, and the services ignore
     * SIGPIPE in main() (tests/integration/test_sigpipe.py checks the binaries) */
    signal(SIGPIPE, SIG_IGN);
    start_server();
    L = cq_loop_new(&err);
    if (!L) cqtest_fatal("cq_loop_new: %s", err.msg);
    RUN(concurrent_requests);
    RUN(timeout_does_not_block_others);
    RUN(status_headers_and_limits);
    RUN(errors);
    RUN(free_with_pending);
    RUN(kept_alive_sockets);
    cq_loop_free(L);
    MHD_stop_daemon(D);
    return cqtest_done();
}
