/* cq-e2e-load: the end-to-end benchmark's load tool and fake Slack sink in one process.
 *
 * The sender (main thread, curl multi) posts signed Slack slash commands (v0 signature:
 * "v0=" + hex HMAC-SHA256(secret, "v0:" + ts + ":" + body)) at a fixed offered rate, open
 * loop: request i is due at start + i / rate whatever happened to the earlier ones, and its
 * latency is measured from that due time (a late sender counts against the system, never
 * hides it). Each command has its own trigger_id, one of --channels channels, and a
 * response_url pointing at the sink: http://127.0.0.1:SINK_PORT/r/TAG/INDEX.
 *
 * The sink (libmicrohttpd, its own epoll thread) answers every POST "ok" like Slack's
 * response_url and records, per request index, the arrival time and how many times it came.
 * A reply is counted good when its body contains --expect. Replies for another tag (a
 * previous run's stragglers) are counted as stray and otherwise ignored.
 *
 *   cq-e2e-load --url URL --secret S --rate R --seconds D [--warmup W] [--sink-port P]
 *               [--channels N] [--text T] [--expect E] [--tag TAG] [--drain-s S]
 *               [--dump FILE] [--relay 1]
 *
 * Prints one line of JSON: offered rate, sent, acks (2xx / other / transport errors),
 * replies of the measured part (good, lost, duplicated), reply latency p50/p90/p99/p99.9/max
 * (due time -> reply at the sink), ack latency p50/p99, how late the sender was, the
 * completed replies per second of the measured window (of measured requests only:
 * delivered_per_s_in_window; of any request, warm-up and a previous run's stray included:
 * output_per_s_in_window, what the system put out while it carried a backlog) and the CPU of
 * the sender and sink threads. --dump writes "index due_ms ack_ms reply_ms count" per measured
 * request. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct req {
    uint64_t due_ns;
    uint64_t ack_ns;           /* 0: no answer yet */
    _Atomic uint64_t reply_ns; /* first reply at the sink */
    atomic_int replies;        /* how many times it was posted */
    atomic_int good;           /* replies that carried --expect */
    int status;                /* HTTP status of the ack, -1 transport error */
};

struct opts {
    const char *url, *secret, *text, *expect, *tag, *dump;
    double rate, seconds, warmup, drain_s;
    int sink_port, channels;
    bool relay; /* --relay: the harness alone (see below) */
};

static struct opts o = {.text = "flag get new_ui",
                        .expect = "is on",
                        .tag = NULL,
                        .rate = 500,
                        .seconds = 10,
                        .warmup = 0,
                        .drain_s = 10,
                        .channels = 1000};
static struct req *reqs;
static size_t total;          /* requests sent, warm-up included */
static size_t first_measured; /* index of the first measured request */
static atomic_long stray, bad_path;
static atomic_int sink_tid;
static atomic_long sink_posts;
/* the measured sending window [win0, win1) (0 until known) and every reply POST the sink took
 * in it, whichever request it answers (warm-up, measured, or a previous run's stray) */
static _Atomic uint64_t win0, win1;
static atomic_long posts_in_window;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ sink */

struct upload {
    char buf[2048];
    size_t len;
};

static enum MHD_Result sink_handle(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *data_len, void **state) {
    (void)cls;
    (void)version;
    struct upload *u = *state;
    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u) return MHD_NO;
        *state = u;
        if (atomic_load(&sink_tid) == 0) atomic_store(&sink_tid, (int)syscall(SYS_gettid));
        return MHD_YES;
    }
    if (*data_len) {
        size_t room = sizeof(u->buf) - 1 - u->len;
        size_t n = *data_len < room ? *data_len : room;
        memcpy(u->buf + u->len, data, n);
        u->len += n;
        *data_len = 0;
        return MHD_YES;
    }
    uint64_t t = now_ns();
    u->buf[u->len] = '\0';
    atomic_fetch_add(&sink_posts, 1);
    if (t >= atomic_load(&win0) && t < atomic_load(&win1)) atomic_fetch_add(&posts_in_window, 1);
    /* /r/TAG/INDEX */
    size_t tl = strlen(o.tag);
    if (strcmp(method, "POST") == 0 && strncmp(url, "/r/", 3) == 0) {
        if (strncmp(url + 3, o.tag, tl) == 0 && url[3 + tl] == '/') {
            char *end = NULL;
            errno = 0;
            unsigned long long i = strtoull(url + 4 + tl, &end, 10);
            if (errno == 0 && end && *end == '\0' && i < total) {
                uint64_t zero = 0;
                atomic_compare_exchange_strong(&reqs[i].reply_ns, &zero, t);
                atomic_fetch_add(&reqs[i].replies, 1);
                if (strstr(u->buf, o.expect)) atomic_fetch_add(&reqs[i].good, 1);
            } else {
                atomic_fetch_add(&bad_path, 1);
            }
        } else {
            atomic_fetch_add(&stray, 1);
        }
    } else {
        atomic_fetch_add(&bad_path, 1);
    }
    static const char ok[] = "ok";
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)ok, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void sink_done(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode why) {
    (void)cls;
    (void)c;
    (void)why;
    free(*state);
    *state = NULL;
}

/* ------------------------------------------------------------------ sender */

static size_t discard(char *p, size_t sz, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return sz * n;
}

struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    char body[1024];
    size_t idx;
    bool relaying; /* the --relay post to the sink, not the command */
};

static void hex(const unsigned char *in, size_t n, char *out) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* form-encodes s (spaces as +) into out */
static void form_escape(const char *s, char *out, size_t cap) {
    size_t k = 0;
    for (; *s && k + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~')
            out[k++] = (char)ch;
        else if (ch == ' ')
            out[k++] = '+';
        else
            k += (size_t)snprintf(out + k, cap - k, "%%%02X", ch);
    }
    out[k] = '\0';
}

static int start_request(CURLM *m, struct slot *s, size_t idx, int sink_port,
                         const char *text_esc) {
    unsigned char rnd[8], mac[32];
    char rhex[17], sig[65], ts[24], h1[64], h2[96];
    RAND_bytes(rnd, sizeof rnd);
    hex(rnd, sizeof rnd, rhex);
    unsigned ch = (unsigned)(idx % (size_t)o.channels);
    int n = snprintf(s->body, sizeof s->body,
                     "token=benchtoken&team_id=T0BENCH&team_domain=bench&channel_id=CB%06u&"
                     "channel_name=bench-%u&user_id=UBENCH&user_name=bench&command=%%2Fops&"
                     "text=%s&api_app_id=A0BENCH&response_url=http%%3A%%2F%%2F127.0.0.1%%3A%d%%"
                     "2Fr%%2F%s%%2F%zu&trigger_id=%zu.%s.%s",
                     ch, ch, text_esc, sink_port, o.tag, idx, idx, o.tag, rhex);
    if (n < 0 || (size_t)n >= sizeof s->body) return -1;
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    size_t base_len = strlen(ts) + (size_t)n + 4;
    char *base = malloc(base_len + 1);
    if (!base) return -1;
    snprintf(base, base_len + 1, "v0:%s:%s", ts, s->body);
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), o.secret, (int)strlen(o.secret), (unsigned char *)base, base_len, mac,
         &mac_len);
    free(base);
    hex(mac, 32, sig);
    snprintf(h1, sizeof h1, "X-Slack-Request-Timestamp: %s", ts);
    snprintf(h2, sizeof h2, "X-Slack-Signature: v0=%s", sig);
    curl_slist_free_all(s->hdrs);
    s->hdrs = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    s->hdrs = curl_slist_append(s->hdrs, h1);
    s->hdrs = curl_slist_append(s->hdrs, h2);
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    if (!s->easy) {
        s->easy = curl_easy_init();
        if (!s->easy) return -1;
    } else {
        curl_easy_reset(s->easy);
    }
    s->idx = idx;
    s->relaying = false;
    curl_easy_setopt(s->easy, CURLOPT_URL, o.url);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
    return curl_multi_add_handle(m, s->easy) == CURLM_OK ? 0 : -1;
}

/* --relay: once the command's 2xx is in (--url is then the fake API, which answers after its
 * delay), the sender posts the reply to the command's response_url itself: load tool -> fake
 * API -> sink with nothing between, the floor the systems under test are measured against. */
static int start_relay(CURLM *m, struct slot *s, int sink_port) {
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/r/%s/%zu", sink_port, o.tag, s->idx);
    int n = snprintf(s->body, sizeof s->body, "{\"text\":\"%s\"}", o.expect);
    if (n < 0 || (size_t)n >= sizeof s->body) return -1;
    curl_slist_free_all(s->hdrs);
    s->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    curl_easy_reset(s->easy);
    s->relaying = true;
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
    return curl_multi_add_handle(m, s->easy) == CURLM_OK ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p) {
    if (!n) return -1;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
    if (k > 0) k--;
    if (k >= n) k = n - 1;
    return (double)v[k] / 1e6;
}

static double thread_cpu_ms(int tid) {
    char path[64], buf[1024];
    if (tid <= 0) return -1;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static void usage(void) {
    fprintf(stderr, "usage: cq-e2e-load --url URL --secret S --rate R --seconds D [--warmup W] "
                    "[--sink-port P] [--channels N] [--text T] [--expect E] [--tag TAG] "
                    "[--drain-s S] [--dump FILE] [--relay 1]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--url"))
            o.url = v;
        else if (!strcmp(a, "--secret"))
            o.secret = v;
        else if (!strcmp(a, "--rate"))
            o.rate = atof(v);
        else if (!strcmp(a, "--seconds"))
            o.seconds = atof(v);
        else if (!strcmp(a, "--warmup"))
            o.warmup = atof(v);
        else if (!strcmp(a, "--sink-port"))
            o.sink_port = atoi(v);
        else if (!strcmp(a, "--channels"))
            o.channels = atoi(v);
        else if (!strcmp(a, "--text"))
            o.text = v;
        else if (!strcmp(a, "--expect"))
            o.expect = v;
        else if (!strcmp(a, "--tag"))
            o.tag = v;
        else if (!strcmp(a, "--drain-s"))
            o.drain_s = atof(v);
        else if (!strcmp(a, "--dump"))
            o.dump = v;
        else if (!strcmp(a, "--relay"))
            o.relay = atoi(v) != 0;
        else
            usage();
    }
    if (!o.url || !o.secret || o.rate <= 0 || o.seconds <= 0 || o.channels < 1) usage();
    char tagbuf[32];
    if (!o.tag) {
        snprintf(tagbuf, sizeof tagbuf, "t%ld", (long)getpid());
        o.tag = tagbuf;
    }
    signal(SIGPIPE, SIG_IGN);
    first_measured = (size_t)(o.rate * o.warmup);
    total = first_measured + (size_t)(o.rate * o.seconds);
    reqs = calloc(total, sizeof(*reqs));
    if (!reqs) return 1;

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY, (uint16_t)o.sink_port, NULL,
        NULL, sink_handle, NULL, MHD_OPTION_NOTIFY_COMPLETED, sink_done, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 20000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cq-e2e-load: the sink cannot listen on port %d\n", o.sink_port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int sink_port = info ? info->port : o.sink_port;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 4096L);
    char text_esc[512];
    form_escape(o.text, text_esc, sizeof text_esc);

    /* a free list of slots; one per request in flight */
    size_t nslots = 0, cap = 256;
    struct slot **free_slots = malloc(cap * sizeof(*free_slots));
    if (!free_slots) return 1;
    uint64_t interval = (uint64_t)(1e9 / o.rate);
    uint64_t t0 = now_ns() + 20000000u;                  /* 20 ms from now */
    atomic_store(&win0, t0 + first_measured * interval); /* win1 still 0: nothing counts */
    atomic_store(&win1, t0 + total * interval);
    uint64_t max_lag = 0, sum_lag = 0;
    size_t next = 0, acked = 0, ok2xx = 0, non2xx = 0, errors = 0;
    int running = 0;
    int main_tid = (int)syscall(SYS_gettid);
    double cpu_main0 = thread_cpu_ms(main_tid);
    while (next < total || running > 0) {
        uint64_t now = now_ns();
        while (next < total && t0 + next * interval <= now) {
            struct slot *s = nslots ? free_slots[--nslots] : calloc(1, sizeof(*s));
            if (!s) return 1;
            reqs[next].due_ns = t0 + next * interval;
            uint64_t lag = now - reqs[next].due_ns;
            if (lag > max_lag) max_lag = lag;
            sum_lag += lag;
            if (start_request(m, s, next, sink_port, text_esc) != 0) {
                fprintf(stderr, "cq-e2e-load: cannot start request %zu\n", next);
                return 1;
            }
            next++;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (s->relaying) { /* the sink's answer to a --relay post: only the slot back */
                curl_multi_remove_handle(m, msg->easy_handle);
                s->relaying = false;
                goto slot_back;
            }
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            struct req *r = &reqs[s->idx];
            r->ack_ns = now_ns();
            acked++;
            if (msg->data.result != CURLE_OK) {
                r->status = -1;
                errors++;
                if (errors <= 5)
                    fprintf(stderr, "cq-e2e-load: request %zu: %s\n", s->idx,
                            curl_easy_strerror(msg->data.result));
            } else {
                r->status = (int)code;
                if (code >= 200 && code < 300)
                    ok2xx++;
                else
                    non2xx++;
            }
            curl_multi_remove_handle(m, msg->easy_handle);
            if (o.relay && r->status >= 200 && r->status < 300) {
                if (start_relay(m, s, sink_port) != 0) {
                    fprintf(stderr, "cq-e2e-load: cannot relay request %zu\n", s->idx);
                    return 1;
                }
                running++;
                continue;
            }
        slot_back:
            if (nslots == cap) {
                cap *= 2;
                struct slot **ns = realloc(free_slots, cap * sizeof(*ns));
                if (!ns) return 1;
                free_slots = ns;
            }
            free_slots[nslots++] = s;
        }
        int timeout_ms = 10;
        if (next < total) {
            uint64_t due = t0 + next * interval;
            now = now_ns();
            timeout_ms = due <= now ? 0 : (int)((due - now + 999999u) / 1000000u);
            if (timeout_ms > 10) timeout_ms = 10;
        }
        if (timeout_ms > 0 || running > 0) curl_multi_poll(m, NULL, 0, timeout_ms, NULL);
    }
    double cpu_main_send = thread_cpu_ms(main_tid) - cpu_main0;
    uint64_t sent_end = now_ns();

    /* drain: wait until every measured request has a reply, or drain_s after the last send */
    size_t measured = total - first_measured;
    uint64_t deadline = sent_end + (uint64_t)(o.drain_s * 1e9);
    for (;;) {
        size_t got = 0;
        for (size_t i = first_measured; i < total; i++)
            if (atomic_load(&reqs[i].replies) > 0) got++;
        if (got == measured || now_ns() >= deadline) break;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    /* a late duplicate (a retried post) would arrive within a moment: wait a little longer */
    struct timespec grace = {1, 0};
    nanosleep(&grace, NULL);
    double cpu_sink = thread_cpu_ms(atomic_load(&sink_tid));
    MHD_stop_daemon(d);

    uint64_t *lat = malloc((measured + 1) * sizeof(*lat));
    uint64_t *ack = malloc((measured + 1) * sizeof(*ack));
    if (!lat || !ack) return 1;
    size_t nl = 0, na = 0, lost = 0, dup = 0, good = 0, bad = 0, in_window = 0;
    uint64_t w0 = t0 + first_measured * interval, w1 = t0 + total * interval;
    FILE *df = o.dump ? fopen(o.dump, "w") : NULL;
    for (size_t i = first_measured; i < total; i++) {
        struct req *r = &reqs[i];
        int n = atomic_load(&r->replies);
        uint64_t rt = atomic_load(&r->reply_ns);
        if (n == 0)
            lost++;
        else {
            lat[nl++] = rt - r->due_ns;
            if (n > 1) dup++;
            if (atomic_load(&r->good) == n)
                good++;
            else
                bad++;
            if (rt >= w0 && rt < w1) in_window++;
        }
        if (r->ack_ns) ack[na++] = r->ack_ns - r->due_ns;
        if (df)
            fprintf(df, "%zu\t%.3f\t%.3f\t%.3f\t%d\t%d\n", i, (double)(r->due_ns - t0) / 1e6,
                    r->ack_ns ? (double)(r->ack_ns - r->due_ns) / 1e6 : -1.0,
                    n ? (double)(rt - r->due_ns) / 1e6 : -1.0, n, r->status);
    }
    if (df) fclose(df);
    qsort(lat, nl, sizeof(*lat), cmp_u64);
    qsort(ack, na, sizeof(*ack), cmp_u64);
    /* replies of any measured request that arrived inside the measured sending window, per
     * second: the throughput actually delivered while the load was offered */
    double window_s = (double)(w1 - w0) / 1e9;
    printf("{\"tag\":\"%s\",\"offered_rate\":%.1f,\"seconds\":%.1f,\"warmup\":%.1f,"
           "\"sent\":%zu,\"measured\":%zu,\"acks_2xx\":%zu,\"acks_other\":%zu,"
           "\"ack_errors\":%zu,\"replies\":%zu,\"good\":%zu,\"bad_body\":%zu,\"lost\":%zu,"
           "\"duplicated\":%zu,\"stray\":%ld,\"bad_path\":%ld,\"sink_posts\":%ld,"
           "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"p999_ms\":%.2f,\"max_ms\":%.2f,"
           "\"ack_p50_ms\":%.2f,\"ack_p99_ms\":%.2f,\"send_lag_max_ms\":%.2f,"
           "\"send_lag_mean_ms\":%.3f,\"delivered_per_s_in_window\":%.1f,\"output_per_s_in_"
           "window\":%.1f,"
           "\"cpu_sender_ms\":%.0f,\"cpu_sink_ms\":%.0f}\n",
           o.tag, o.rate, o.seconds, o.warmup, total, measured, ok2xx, non2xx, errors, nl, good,
           bad, lost, dup, atomic_load(&stray), atomic_load(&bad_path), atomic_load(&sink_posts),
           pct_ms(lat, nl, 50), pct_ms(lat, nl, 90), pct_ms(lat, nl, 99), pct_ms(lat, nl, 99.9),
           nl ? (double)lat[nl - 1] / 1e6 : -1, pct_ms(ack, na, 50), pct_ms(ack, na, 99),
           (double)max_lag / 1e6, total ? (double)sum_lag / 1e6 / (double)total : 0,
           (double)in_window / window_s, (double)atomic_load(&posts_in_window) / window_s,
           cpu_main_send, cpu_sink);
    (void)acked;
    /* Every request has finished, so every slot is back on the free list. */
    for (size_t i = 0; i < nslots; i++) {
        curl_easy_cleanup(free_slots[i]->easy);
        curl_slist_free_all(free_slots[i]->hdrs);
        free(free_slots[i]);
    }
    free(free_slots);
    free(lat);
    free(ack);
    free(reqs);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
}
