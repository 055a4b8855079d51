/* test_http: common/http (the libmicrohttpd server behind every service's admin port):
 * built-ins, 404/405 with Allow, 413 by Content-Length and by chunked size, synchronous and
 * asynchronous answers (answered from another thread while the connection is suspended:
 * 300 requests each waiting 200 ms on ONE server thread finish together), quiesce, port 0. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "cqtest.h"
#include "http.h"
#include "loop.h"

static atomic_bool ready_flag;
static bool ready_cb(void *arg) {
    (void)arg;
    return atomic_load(&ready_flag);
}

static void echo(struct cq_http_exchange *x, void *arg) {
    size_t len;
    const char *b = cq_http_body(x, &len);
    const char *h = cq_http_header(x, "x-echo"); /* case-insensitive lookup */
    (void)arg;
    if (h)
        cq_http_respond_h(x, 201, "text/plain", b, len, "X-Echo", h);
    else
        cq_http_respond(x, 200, "text/plain", b, len);
}

/* async: handlers park exchanges here; a thread answers each 200 ms after it arrived */
#define MAXQ 1024
static struct {
    pthread_mutex_t mu;
    struct cq_http_exchange *q[MAXQ];
    unsigned long long at[MAXQ];
    int head, tail;
    bool stop;
} park = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void deferred(struct cq_http_exchange *x, void *arg) {
    (void)arg;
    pthread_mutex_lock(&park.mu);
    park.q[park.tail % MAXQ] = x;
    park.at[park.tail % MAXQ] = cq_now_ms();
    park.tail++;
    pthread_mutex_unlock(&park.mu);
}

static void *answerer(void *arg) {
    (void)arg;
    for (;;) {
        struct cq_http_exchange *x = NULL;
        pthread_mutex_lock(&park.mu);
        if (park.head < park.tail && cq_now_ms() - park.at[park.head % MAXQ] >= 200)
            x = park.q[park.head++ % MAXQ];
        bool stop = park.stop && park.head == park.tail;
        pthread_mutex_unlock(&park.mu);
        if (x) {
            cq_http_respond(x, 202, "application/json", "{\"late\":true}", 13);
            continue;
        }
        if (stop) break;
        usleep(1000);
    }
    return NULL;
}

struct resp {
    long status;
    char body[2048];
    size_t len;
    char allow[64];
    char ctype[96];
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    struct resp *r = ud;
    size_t take = sz * n;
    if (r->len + take >= sizeof(r->body)) take = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    struct resp *r = ud;
    size_t len = sz * n;
    if (len > 7 && strncasecmp(p, "Allow: ", 7) == 0)
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(len - 9), p + 7);
    if (len > 14 && strncasecmp(p, "Content-Type: ", 14) == 0)
        snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)(len - 16), p + 14);
    return len;
}

static CURL *easy(int port, const char *method, const char *path, const char *body, long len,
                  struct curl_slist *hdrs, struct resp *r) {
    char url[256];
    CURL *c = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    memset(r, 0, sizeof *r);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, len);
    }
    if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    return c;
}

static long do_req(int port, const char *method, const char *path, const char *body, long len,
                   struct curl_slist *hdrs, struct resp *r) {
    CURL *c = easy(port, method, path, body, len, hdrs, r);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    return r->status;
}

static struct cq_http_server *srv;
static int port;
static char big[4096];

TEST(builtins) {
    struct resp r;
    CHECK(port > 0);
    CHECK(do_req(port, "GET", "/healthz", NULL, 0, NULL, &r) == 200);
    CHECK_STR(r.body, "ok\n");
    atomic_store(&ready_flag, false);
    CHECK(do_req(port, "GET", "/readyz", NULL, 0, NULL, &r) == 503);
    CHECK(do_req(port, "GET", "/metrics", NULL, 0, NULL, &r) == 200);
    CHECK(strstr(r.body, "\nchatops_ready 0\n") != NULL); /* what /readyz says, for alerts */
    atomic_store(&ready_flag, true);
    CHECK(do_req(port, "GET", "/readyz", NULL, 0, NULL, &r) == 200);
    CHECK(do_req(port, "GET", "/metrics", NULL, 0, NULL, &r) == 200);
    CHECK_STR(r.ctype, "text/plain; version=0.0.4");
    CHECK(strstr(r.body, "\nchatops_ready 1\n") != NULL);
    CHECK(do_req(port, "POST", "/healthz", "x", 1, NULL, &r) == 405);
    CHECK_STR(r.allow, "GET");
}

TEST(routing) {
    struct resp r;
    CHECK(do_req(port, "GET", "/nope", NULL, 0, NULL, &r) == 404);
    CHECK(do_req(port, "GET", "/echo", NULL, 0, NULL, &r) == 405);
    CHECK_STR(r.allow, "POST, PUT");
    CHECK_CONTAINS(r.body, "method not allowed");
    CHECK(do_req(port, "POST", "/echo?q=1", "hello", 5, NULL, &r) == 200); /* query ignored */
    CHECK_STR(r.body, "hello");
    struct curl_slist *h = curl_slist_append(NULL, "X-Echo: hi there");
    CHECK(do_req(port, "PUT", "/echo", "", 0, h, &r) == 201);
    CHECK_STR(r.body, "");
    curl_slist_free_all(h);
    /* exactly the limit passes, one byte more does not */
    CHECK(do_req(port, "POST", "/echo", big, 1024, NULL, &r) == 200);
    CHECK(r.len == 1024);
}

TEST(too_big) {
    struct resp r;
    CHECK(do_req(port, "POST", "/echo", big, 1025, NULL, &r) == 413);
    CHECK_CONTAINS(r.body, "over the 1024-byte limit");
    CHECK(strchr(r.body, '\n') == r.body + r.len - 1); /* one line */
    /* chunked: no Content-Length, the size is only known while reading */
    struct curl_slist *h = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    CHECK(do_req(port, "POST", "/echo", big, 3000, h, &r) == 413);
    CHECK(do_req(port, "POST", "/echo", big, 1000, h, &r) == 200);
    CHECK(r.len == 1000);
    curl_slist_free_all(h);
}

TEST(async_many_waiters_one_thread) {
    enum { N = 300 };
    static struct resp rs[N];
    CURL *cs[N];
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)N);
    for (int i = 0; i < N; i++) {
        cs[i] = easy(port, "POST", "/later", "x", 1, NULL, &rs[i]);
        curl_multi_add_handle(m, cs[i]);
    }
    unsigned long long t0 = cq_now_ms();
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    unsigned long long took = cq_now_ms() - t0;
    int ok = 0;
    for (int i = 0; i < N; i++) {
        long st = 0;
        curl_easy_getinfo(cs[i], CURLINFO_RESPONSE_CODE, &st);
        if (st == 202 && strcmp(rs[i].body, "{\"late\":true}") == 0) ok++;
        curl_multi_remove_handle(m, cs[i]);
        curl_easy_cleanup(cs[i]);
    }
    curl_multi_cleanup(m);
    printf("  %d/%d async answers in %llu ms (each waited 200 ms)\n", ok, N, took);
    CHECK(ok == N);
    CHECK(took < 5000); /* a thread held per waiting request would need N * 200 ms = 60 s */
    CHECK(cq_http_server_inflight(srv) == 0);
}

TEST(quiesce_and_free) {
    struct resp r;
    cq_http_server_quiesce(srv);
    CHECK(do_req(port, "GET", "/healthz", NULL, 0, NULL, &r) == 0); /* no longer accepting */
    cq_http_server_free(srv, 1000);
    srv = NULL;
    cq_http_server_free(NULL, 0); /* no-op */
}

int main(void) {
    pthread_t th;
    struct cq_err err = {0};
    memset(big, 'a', sizeof(big));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atomic_init(&ready_flag, true);
    struct cq_http_route routes[] = {
        {"POST", "/echo", echo, NULL},
        {"PUT", "/echo", echo, NULL},
        {"POST", "/later", deferred, NULL},
    };
    pthread_create(&th, NULL, answerer, NULL);
    for (int threads = 1; threads <= 4; threads += 3) { /* single thread, then a pool */
        struct cq_http_options opt = {.listen = "127.0.0.1",
                                      .port = 0,
                                      .threads = threads,
                                      .max_body = 1024,
                                      .ready = ready_cb};
        printf("threads=%d\n", threads);
        srv = cq_http_server_new(&opt, routes, 3, &err);
        if (!srv) cqtest_fatal("server: %s", err.msg);
        port = cq_http_server_port(srv);
        RUN(builtins);
        RUN(routing);
        RUN(too_big);
        RUN(async_many_waiters_one_thread);
        RUN(quiesce_and_free);
    }
    pthread_mutex_lock(&park.mu);
    park.stop = true;
    pthread_mutex_unlock(&park.mu);
    pthread_join(th, NULL);
    /* a bad address is an error, not a crash */
    struct cq_http_options bad = {.listen = "not-an-ip", .port = 0, .threads = 2};
    CHECK(cq_http_server_new(&bad, NULL, 0, &err) == NULL);
    CHECK(err.code == CQ_ECONFIG);
    curl_global_cleanup();
    return cqtest_done();
}
