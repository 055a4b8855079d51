/* Integration test of common/redis: a real redis-server that this test starts,
 * kills, freezes and restarts on its own port (plus a round trip on the ctest
 * fixture Redis): replies, pipelining, timeouts, outages, reconnect, AUTH, free. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cqtest.h"
#include "loop.h"
#include "redis.h"

/* ---- helpers: servers ---- */

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        cqtest_fatal("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts redis-server on port (optionally with a password); waits until it answers. */
static pid_t start_redis(int port, const char *password) {
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    pid_t pid = fork();
    if (pid < 0) cqtest_fatal("fork failed");
    if (pid == 0) {
        const char *args[] = {"redis-server",
                              "--port",
                              portstr,
                              "--bind",
                              "127.0.0.1",
                              "--save",
                              "",
                              "--appendonly",
                              "no",
                              "--enable-debug-command",
                              "yes",
                              "--loglevel",
                              "warning",
                              password ? "--requirepass" : NULL,
                              password,
                              NULL};
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, STDOUT_FILENO); /* redis' startup banner */
        execvp("redis-server", (char *const *)args);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        struct cq_err err;
        redisContext *c = cq_redis_connect_sync("127.0.0.1", port, password, 500, &err);
        if (c) {
            redisFree(c);
            return pid;
        }
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    cqtest_fatal("redis-server on port %d did not start", port);
}

static void stop_redis(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- helpers: loop ---- */

static struct cq_loop *L;

static void tick(uv_timer_t *t) {
    (void)t;
}

/* Runs the loop until *flag is true or timeout_ms passed; returns *flag. */
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

static bool wait_connected(struct cq_redis *r, int timeout_ms) {
    uint64_t end = cq_now_ms() + (uint64_t)timeout_ms;
    while (!cq_redis_connected(r) && cq_now_ms() < end)
        run_for(10);
    return cq_redis_connected(r);
}

/* One command's outcome. */
struct res {
    int calls;
    bool have_reply;
    int type;
    long long integer;
    char str[128];
    enum cq_rc code;
    char errmsg[256];
    uint64_t at;
    bool done;
};

static void on_res(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct res *x = opaque;
    x->calls++;
    x->done = true;
    x->at = cq_now_ms();
    x->have_reply = reply != NULL;
    if (reply) {
        x->type = reply->type;
        x->integer = reply->integer;
        snprintf(x->str, sizeof(x->str), "%.*s", reply->str ? (int)reply->len : 0,
                 reply->str ? reply->str : "");
        x->code = CQ_OK;
    } else {
        x->code = err ? err->code : CQ_RC_COUNT;
        snprintf(x->errmsg, sizeof(x->errmsg), "%s", err ? err->msg : "");
    }
}

static struct cq_redis *client(int port, const char *password, int cmd_timeout_ms) {
    struct cq_err err;
    struct cq_redis *r = cq_redis_new(L, "127.0.0.1", port, password, 500, cmd_timeout_ms, &err);
    if (!r) cqtest_fatal("cq_redis_new: %s", err.msg);
    return r;
}

static void free_client(struct cq_redis *r) {
    cq_redis_free(r);
    run_for(20); /* lets the handles close */
}

/* ---- tests ---- */

TEST(fixture_round_trip) {
    struct cq_redis *r = client(cqtest_redis_port(), NULL, 2000);
    CHECK(wait_connected(r, 3000));
    const char *key = cqtest_unique("cq.test.redis");
    struct res set = {0}, get = {0};
    CHECK(cq_redis_command(r, on_res, &set, "SET %s %s EX 60", key, "fixture") == CQ_OK);
    CHECK(cq_redis_command(r, on_res, &get, "GET %s", key) == CQ_OK);
    CHECK(run_until(&get.done, 2000));
    CHECK(set.type == REDIS_REPLY_STATUS);
    CHECK_STR(get.str, "fixture");
    printf("  fixture redis %d: SET/GET round trip\n", cqtest_redis_port());
    free_client(r);
}

static int on_connect_calls;
static void count_connect(void *arg) {
    (void)arg;
    on_connect_calls++;
}

TEST(replies_and_errors) {
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    struct cq_redis *r = client(port, NULL, 2000);
    on_connect_calls = 0;
    cq_redis_on_connect(r, count_connect, NULL);
    CHECK(wait_connected(r, 3000));
    CHECK(on_connect_calls == 1);
    struct res set = {0}, get = {0}, wrong = {0}, bin = {0}, binget = {0};
    CHECK(cq_redis_command(r, on_res, &set, "SET k %s", "v1") == CQ_OK);
    CHECK(cq_redis_command(r, on_res, &get, "GET k") == CQ_OK);
    CHECK(cq_redis_command(r, on_res, &wrong, "INCR k") == CQ_OK);
    const char *argv[] = {"SET", "bin", "a\0b"};
    size_t lens[] = {3, 3, 3};
    CHECK(cq_redis_commandargv(r, on_res, &bin, 3, argv, lens) == CQ_OK);
    CHECK(cq_redis_command(r, on_res, &binget, "STRLEN bin") == CQ_OK);
    CHECK(set.calls == 0); /* never called from inside cq_redis_command */
    CHECK(run_until(&binget.done, 2000));
    CHECK(set.have_reply && set.type == REDIS_REPLY_STATUS);
    CHECK_STR(get.str, "v1");
    CHECK(wrong.have_reply && wrong.type == REDIS_REPLY_ERROR && wrong.code == CQ_OK);
    CHECK_CONTAINS(wrong.str, "not an integer");
    CHECK(bin.type == REDIS_REPLY_STATUS);
    CHECK(binget.type == REDIS_REPLY_INTEGER && binget.integer == 3);
    CHECK(set.calls == 1 && get.calls == 1 && wrong.calls == 1);
    CHECK(cq_redis_command(r, on_res, &set, "GET %q", "x") == CQ_EINVAL);
    printf("  status/string/error/integer replies; binary-safe argv; bad format rejected\n");
    free_client(r);
    stop_redis(pid);
}

static long long pipe_vals[1000];
static int pipe_n, pipe_bad;
static bool pipe_done;
static void on_incr(void *opaque, const redisReply *reply, const struct cq_err *err) {
    int i = (int)(intptr_t)opaque;
    if (err || !reply || reply->type != REDIS_REPLY_INTEGER || i != pipe_n) pipe_bad++;
    if (reply) pipe_vals[i] = reply->integer;
    if (++pipe_n == 1000) pipe_done = true;
}

TEST(pipelined_incr) {
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    struct cq_redis *r = client(port, NULL, 5000);
    CHECK(wait_connected(r, 3000));
    pipe_n = pipe_bad = 0;
    pipe_done = false;
    int accepted = 0;
    for (int i = 0; i < 1000; i++)
        accepted += cq_redis_command(r, on_incr, (void *)(intptr_t)i, "INCR counter") == CQ_OK;
    CHECK(accepted == 1000);
    uint64_t t0 = cq_now_ms();
    CHECK(run_until(&pipe_done, 5000));
    int inorder = 1;
    for (int i = 0; i < 1000; i++)
        if (pipe_vals[i] != i + 1) inorder = 0;
    CHECK(inorder);
    CHECK(pipe_bad == 0);
    printf("  1000 pipelined INCRs completed in order in %llu ms\n",
           (unsigned long long)(cq_now_ms() - t0));
    free_client(r);
    stop_redis(pid);
}

TEST(command_timeout) {
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    struct cq_redis *r = client(port, NULL, 200);
    CHECK(wait_connected(r, 3000));
    struct res slow = {0}, ping = {0};
    uint64_t t0 = cq_now_ms();
    CHECK(cq_redis_command(r, on_res, &slow, "DEBUG SLEEP 1") == CQ_OK);
    CHECK(run_until(&slow.done, 2000));
    uint64_t took = slow.at - t0;
    CHECK(slow.code == CQ_ETIMEOUT && !slow.have_reply);
    CHECK(took >= 150 && took < 600);
    run_for(1200); /* the late reply arrives and must be dropped */
    CHECK(slow.calls == 1);
    CHECK(cq_redis_connected(r));
    CHECK(cq_redis_command(r, on_res, &ping, "PING") == CQ_OK);
    CHECK(run_until(&ping.done, 1000));
    CHECK_STR(ping.str, "PONG");
    CHECK(cq_redis_connect_count(r) == 1);
    printf("  DEBUG SLEEP 1 with 200 ms timeout -> CQ_ETIMEOUT after %llu ms; late reply "
           "dropped; same connection answers PING\n",
           (unsigned long long)took);
    free_client(r);
    stop_redis(pid);
}

TEST(stall_reconnects) {
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    struct cq_redis *r = client(port, NULL, 200);
    cq_redis_set_stall_ms(r, 500);
    CHECK(wait_connected(r, 3000));
    kill(pid, SIGSTOP); /* a peer that vanished without closing the connection */
    struct res ping = {0}, after = {0};
    CHECK(cq_redis_command(r, on_res, &ping, "PING") == CQ_OK);
    CHECK(run_until(&ping.done, 1000));
    CHECK(ping.code == CQ_ETIMEOUT);
    uint64_t end = cq_now_ms() + 2000;
    while (cq_redis_connected(r) && cq_now_ms() < end)
        run_for(10);
    CHECK(!cq_redis_connected(r));
    kill(pid, SIGCONT);
    CHECK(wait_connected(r, 5000));
    CHECK(cq_redis_connect_count(r) >= 2);
    CHECK(cq_redis_command(r, on_res, &after, "PING") == CQ_OK);
    CHECK(run_until(&after.done, 1000));
    CHECK_STR(after.str, "PONG");
    CHECK(ping.calls == 1);
    printf("  frozen server (SIGSTOP): timeout, stall detected, reconnect after SIGCONT\n");
    free_client(r);
    stop_redis(pid);
}

TEST(outage_and_reconnect) {
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    struct cq_redis *r = client(port, NULL, 5000);
    on_connect_calls = 0;
    cq_redis_on_connect(r, count_connect, NULL);
    CHECK(wait_connected(r, 3000));
    struct res sleeper = {0}, inflight[20];
    memset(inflight, 0, sizeof(inflight));
    CHECK(cq_redis_command(r, on_res, &sleeper, "DEBUG SLEEP 2") == CQ_OK);
    for (int i = 0; i < 20; i++)
        CHECK(cq_redis_command(r, on_res, &inflight[i], "INCR n") == CQ_OK);
    run_for(100); /* sent; the server is sleeping */
    uint64_t t0 = cq_now_ms();
    stop_redis(pid);
    CHECK(run_until(&inflight[19].done, 2000));
    int lost = 0, once = 1;
    for (int i = 0; i < 20; i++) {
        lost += inflight[i].code == CQ_EREDIS;
        once &= inflight[i].calls == 1;
    }
    CHECK(sleeper.code == CQ_EREDIS);
    CHECK(lost == 20 && once);
    CHECK(inflight[19].at - t0 < 1000);
    CHECK_CONTAINS(inflight[0].errmsg, "lost");
    printf("  server killed: 21 in-flight commands failed with CQ_EREDIS in %llu ms\n",
           (unsigned long long)(inflight[19].at - t0));

    CHECK(!cq_redis_connected(r));
    struct res down = {0};
    t0 = cq_now_ms();
    CHECK(cq_redis_command(r, on_res, &down, "PING") == CQ_OK);
    CHECK(down.calls == 0);
    CHECK(run_until(&down.done, 1000));
    CHECK(down.code == CQ_EREDIS);
    CHECK_CONTAINS(down.errmsg, "redis unavailable");
    CHECK(down.at - t0 < 100);
    printf("  during the outage a command fails fast (%llu ms): %s\n",
           (unsigned long long)(down.at - t0), down.errmsg);

    run_for(1500); /* a few reconnect attempts against nothing */
    pid = start_redis(port, NULL);
    CHECK(wait_connected(r, 5000));
    CHECK(on_connect_calls == 2);
    CHECK(cq_redis_connect_count(r) == 2);
    struct res set = {0}, get = {0};
    CHECK(cq_redis_command(r, on_res, &set, "SET back yes") == CQ_OK);
    CHECK(cq_redis_command(r, on_res, &get, "GET back") == CQ_OK);
    CHECK(run_until(&get.done, 1000));
    CHECK_STR(get.str, "yes");
    printf("  restarted server: client reconnected by itself, on_connect ran again\n");
    free_client(r);
    stop_redis(pid);
}

TEST(auth) {
    int port = free_port();
    const char *pw = "s3cret-pass";
    pid_t pid = start_redis(port, pw);
    struct cq_err err;
    redisContext *c = cq_redis_connect_sync("127.0.0.1", port, "wrong", 1000, &err);
    CHECK(c == NULL && err.code == CQ_EAUTH);
    CHECK(strstr(err.msg, "wrong") == NULL);
    c = cq_redis_connect_sync("127.0.0.1", port, pw, 1000, &err);
    CHECK(c != NULL);
    if (c) {
        redisReply *rep = redisCommand(c, "PING");
        CHECK(rep && rep->type == REDIS_REPLY_STATUS);
        if (rep) freeReplyObject(rep);
        redisFree(c);
    }

    struct cq_redis *good = client(port, pw, 1000);
    struct cq_redis *bad = client(port, "wrong", 1000);
    CHECK(wait_connected(good, 3000));
    struct res ok = {0}, nok = {0};
    CHECK(cq_redis_command(good, on_res, &ok, "SET a 1") == CQ_OK);
    CHECK(run_until(&ok.done, 1000));
    CHECK(ok.type == REDIS_REPLY_STATUS);
    run_for(500);
    CHECK(!cq_redis_connected(bad));
    CHECK(cq_redis_connect_count(bad) == 0);
    CHECK(cq_redis_command(bad, on_res, &nok, "SET a 2") == CQ_OK);
    CHECK(run_until(&nok.done, 1000));
    CHECK(nok.code == CQ_EREDIS);
    printf("  AUTH: right password connects, wrong one never does (sync: CQ_EAUTH)\n");
    free_client(good);
    free_client(bad);
    stop_redis(pid);
}

TEST(acl_user_and_db) {
    /* Redis 6 ACL: a user of its own (AUTH username password) and a database index
     * (SELECT on connect); the default user has another password. */
    int port = free_port();
    const char *admin_pw = "admin-pass", *user_pw = "svc-pass";
    pid_t pid = start_redis(port, admin_pw);
    struct cq_err err;
    redisContext *c = cq_redis_connect_sync("127.0.0.1", port, admin_pw, 1000, &err);
    CHECK(c != NULL);
    if (!c) {
        stop_redis(pid);
        return;
    }
    redisReply *rep = redisCommand(c, "ACL SETUSER cqsvc on >%s ~* &* +@all", user_pw);
    CHECK(rep && rep->type == REDIS_REPLY_STATUS);
    if (rep) freeReplyObject(rep);

    struct cq_redis_opts o = {.host = "127.0.0.1",
                              .port = port,
                              .username = "cqsvc",
                              .password = user_pw,
                              .db = 3,
                              .connect_timeout_ms = 500,
                              .command_timeout_ms = 1000};
    struct cq_redis *good = cq_redis_new_opts(L, &o, &err);
    o.password = admin_pw; /* the default user's password is not cqsvc's */
    struct cq_redis *bad = cq_redis_new_opts(L, &o, &err);
    o.password = user_pw;
    o.db = 99999; /* beyond the server's 16 databases: SELECT fails, never connected */
    struct cq_redis *baddb = cq_redis_new_opts(L, &o, &err);
    CHECK(good && bad && baddb);
    CHECK(wait_connected(good, 3000));
    struct res set = {0};
    CHECK(cq_redis_command(good, on_res, &set, "SET acl-key in-db-3") == CQ_OK);
    CHECK(run_until(&set.done, 1000));
    CHECK(set.type == REDIS_REPLY_STATUS);
    rep = redisCommand(c, "SELECT 3");
    if (rep) freeReplyObject(rep);
    rep = redisCommand(c, "GET acl-key");
    CHECK(rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "in-db-3") == 0);
    if (rep) freeReplyObject(rep);
    rep = redisCommand(c, "SELECT 0");
    if (rep) freeReplyObject(rep);
    rep = redisCommand(c, "EXISTS acl-key");
    CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0);
    if (rep) freeReplyObject(rep);
    run_for(500);
    CHECK(!cq_redis_connected(bad) && cq_redis_connect_count(bad) == 0);
    CHECK(!cq_redis_connected(baddb) && cq_redis_connect_count(baddb) == 0);
    printf("  ACL user + SELECT 3: writes land in db 3; the wrong password or db never "
           "connects\n");
    redisFree(c);
    free_client(good);
    free_client(bad);
    free_client(baddb);
    stop_redis(pid);
}

TEST(parse_addr) {
    char h[16];
    int port = 0;
    CHECK(cq_redis_parse_addr("10.0.0.1:26379", h, sizeof(h), &port) && port == 26379);
    CHECK_STR(h, "10.0.0.1");
    CHECK(cq_redis_parse_addr("::1:26379", h, sizeof(h), &port) && port == 26379);
    CHECK_STR(h, "::1");
    CHECK(!cq_redis_parse_addr("host", h, sizeof(h), &port));
    CHECK(!cq_redis_parse_addr(":1", h, sizeof(h), &port));
    CHECK(!cq_redis_parse_addr("h:0", h, sizeof(h), &port));
    CHECK(!cq_redis_parse_addr("h:70000", h, sizeof(h), &port));
    CHECK(!cq_redis_parse_addr("h:12x", h, sizeof(h), &port));
    CHECK(!cq_redis_parse_addr("a-very-long-hostname:1", h, sizeof(h), &port));
}

static int read_int_file(const char *dir, const char *name) {
    char path[512], buf[64] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof(buf), f)) cqtest_fatal("cannot read %s", path);
    fclose(f);
    return atoi(buf);
}

static void on_port(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct res *x = opaque;
    on_res(opaque, reply, err);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        x->integer = atoll(reply->element[1]->str);
}

TEST(sentinel_failover) {
    /* scripts/redis-sentinel.sh: master, replica, three redis-sentinel (down-after 1 s).
     * The first sentinel listed is a dead port (the client moves on to the next). */
    const char *src = getenv("CQ_SOURCE_DIR");
    char dir[] = "/tmp/cqt-sentinel-XXXXXX", cmd[1024], list[512] = "", path[600];
    if (!src || !mkdtemp(dir)) cqtest_fatal("CQ_SOURCE_DIR unset or mkdtemp failed");
    snprintf(cmd, sizeof(cmd), "%s/scripts/redis-sentinel.sh start %s >/dev/null", src, dir);
    if (system(cmd) != 0) cqtest_fatal("redis-sentinel.sh start failed");
    snprintf(path, sizeof(path), "%s/sentinels", dir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(list, sizeof(list), f)) cqtest_fatal("cannot read %s", path);
    fclose(f);
    char dead[32];
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_port());
    char *sent[5] = {dead}, *save = NULL;
    int n = 1;
    for (char *t = strtok_r(list, " \n", &save); t && n < 4; t = strtok_r(NULL, " \n", &save))
        sent[n++] = t;
    CHECK(n == 4);
    int master = read_int_file(dir, "master_port"), replica = read_int_file(dir, "replica_port");
    struct cq_redis_opts o = {.sentinels = sent,
                              .master_name = "cq",
                              .connect_timeout_ms = 500,
                              .command_timeout_ms = 5000};
    struct cq_err err;
    struct cq_redis *r = cq_redis_new_opts(L, &o, &err);
    o.master_name = "no-such-master";
    struct cq_redis *unknown = cq_redis_new_opts(L, &o, &err);
    CHECK(r && unknown);
    CHECK(wait_connected(r, 5000));
    struct res port = {0}, blocked = {0}, set = {0};
    CHECK(cq_redis_command(r, on_port, &port, "CONFIG GET port") == CQ_OK);
    CHECK(run_until(&port.done, 2000));
    CHECK(port.integer == master);
    /* A command in flight when the master dies fails (it is never resent elsewhere). */
    CHECK(cq_redis_command(r, on_res, &blocked, "BLPOP cq-never 4") == CQ_OK);
    run_for(100);
    snprintf(path, sizeof(path), "%s/master", dir);
    kill(read_int_file(path, "redis.pid"), SIGKILL);
    CHECK(run_until(&blocked.done, 2000));
    CHECK(blocked.code == CQ_EREDIS);
    uint64_t t0 = cq_now_ms();
    while (cq_redis_connect_count(r) < 2 && cq_now_ms() < t0 + 20000)
        run_for(50);
    CHECK(wait_connected(r, 1000));
    struct res port2 = {0};
    CHECK(cq_redis_command(r, on_port, &port2, "CONFIG GET port") == CQ_OK);
    CHECK(run_until(&port2.done, 2000));
    CHECK(port2.integer == replica);
    CHECK(cq_redis_command(r, on_res, &set, "SET after-failover yes") == CQ_OK);
    CHECK(run_until(&set.done, 2000));
    CHECK(set.type == REDIS_REPLY_STATUS);
    CHECK(!cq_redis_connected(unknown) && cq_redis_connect_count(unknown) == 0);
    printf("  sentinel: master :%d killed, in-flight command failed, client on the promoted "
           "replica :%d after %.1f s; an unknown master name never connects\n",
           master, replica, (double)(cq_now_ms() - t0) / 1000.0);
    free_client(r);
    free_client(unknown);
    snprintf(cmd, sizeof(cmd), "%s/scripts/redis-sentinel.sh stop %s >/dev/null 2>&1", src, dir);
    if (system(cmd) != 0) fprintf(stderr, "redis-sentinel.sh stop failed\n");
}

TEST(connect_timeout) {
    /* A listener that never accepts: TCP connects (kernel backlog) but nothing answers
     * PING, so only the connect timeout ends each attempt. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 64) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    struct cq_err err;
    struct cq_redis *r = cq_redis_new(L, "127.0.0.1", ntohs(a.sin_port), NULL, 150, 1000, &err);
    CHECK(r != NULL);
    run_for(1200);
    CHECK(!cq_redis_connected(r));
    /* The client gave up on and retried its attempts: count backlog connections. */
    int attempts = 0;
    struct timeval tv = {0, 1000};
    fd_set rf;
    for (;;) {
        FD_ZERO(&rf);
        FD_SET(fd, &rf);
        if (select(fd + 1, &rf, NULL, NULL, &tv) <= 0) break;
        int c = accept(fd, NULL, NULL);
        if (c < 0) break;
        attempts++;
        close(c);
    }
    CHECK(attempts >= 2);
    printf("  unresponsive server: %d connect attempts timed out within 1.2 s\n", attempts);
    free_client(r);
    close(fd);
    CHECK(cq_redis_new(L, "127.0.0.1", 0, NULL, 100, 100, &err) == NULL && err.code == CQ_EINVAL);
}

static struct cq_redis *free_me;
static void free_in_callback(void *opaque, const redisReply *reply, const struct cq_err *err) {
    on_res(opaque, reply, err);
    cq_redis_free(free_me);
}

TEST(free_with_pending) {
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    struct cq_redis *r = client(port, NULL, 5000);
    CHECK(wait_connected(r, 3000));
    struct res rs[10];
    memset(rs, 0, sizeof(rs));
    CHECK(cq_redis_command(r, on_res, &rs[0], "DEBUG SLEEP 0.3") == CQ_OK);
    for (int i = 1; i < 10; i++)
        CHECK(cq_redis_command(r, on_res, &rs[i], "PING") == CQ_OK);
    run_for(50);
    cq_redis_free(r);
    int once = 1, shut = 1;
    for (int i = 0; i < 10; i++) {
        once &= rs[i].calls == 1;
        shut &= rs[i].code == CQ_ESHUTDOWN;
    }
    CHECK(once && shut);
    run_for(500);
    for (int i = 0; i < 10; i++)
        once &= rs[i].calls == 1;
    CHECK(once);

    /* Freed from inside a reply callback: the rest still get exactly one callback. */
    r = client(port, NULL, 5000);
    CHECK(wait_connected(r, 3000));
    free_me = r;
    memset(rs, 0, sizeof(rs));
    CHECK(cq_redis_command(r, free_in_callback, &rs[0], "PING") == CQ_OK);
    for (int i = 1; i < 10; i++)
        CHECK(cq_redis_command(r, on_res, &rs[i], "PING") == CQ_OK);
    CHECK(run_until(&rs[9].done, 1000));
    CHECK(rs[0].have_reply);
    once = 1;
    for (int i = 1; i < 10; i++)
        once &= rs[i].calls == 1 && rs[i].code == CQ_ESHUTDOWN;
    CHECK(once);
    run_for(100);
    CHECK(rs[0].calls == 1);
    printf("  free with pending commands: each callback once with CQ_ESHUTDOWN (also from "
           "inside a callback)\n");
    stop_redis(pid);
}

/* The commands issued in one loop turn are written before the loop waits (common/redis_uv.c),
 * so a round trip takes one turn: the old adapter waited a turn for EPOLLOUT first. A value
 * larger than the socket buffer is written in parts as the socket drains. */
TEST(one_turn_and_large_write) {
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    struct cq_redis *r = client(port, NULL, 5000);
    CHECK(wait_connected(r, 3000));
    run_for(50); /* nothing of the handshake left in flight */
    struct res a = {0}, b = {0}, big = {0}, len = {0};
    CHECK(cq_redis_command(r, on_res, &a, "PING") == CQ_OK);
    CHECK(cq_redis_command(r, on_res, &b, "ECHO %s", "two") == CQ_OK);
    uv_run(cq_loop_uv(L), UV_RUN_ONCE); /* one write, then it blocks until the replies */
    CHECK(a.done && b.done);
    CHECK_STR(a.str, "PONG");
    CHECK_STR(b.str, "two");
    struct res c = {0};
    CHECK(cq_redis_command(r, on_res, &c, "PING") == CQ_OK);
    uv_run(cq_loop_uv(L), UV_RUN_ONCE);
    CHECK(c.done && c.type == REDIS_REPLY_STATUS);
    size_t n = 16u * 1024 * 1024;
    char *v = malloc(n);
    if (!v) cqtest_fatal("out of memory");
    memset(v, 'x', n);
    const char *argv[] = {"SET", "big", v};
    size_t lens[] = {3, 3, n};
    CHECK(cq_redis_commandargv(r, on_res, &big, 3, argv, lens) == CQ_OK);
    CHECK(cq_redis_command(r, on_res, &len, "STRLEN big") == CQ_OK);
    free(v);
    CHECK(run_until(&len.done, 4000));
    CHECK(big.type == REDIS_REPLY_STATUS && len.type == REDIS_REPLY_INTEGER);
    CHECK(len.integer == (long long)n);
    printf("  a round trip in one loop turn; a 16 MB value written in parts\n");
    free_client(r);
    stop_redis(pid);
}

int main(void) {
    struct cq_err err;
    /* this process embeds the library the way a service does, and the services ignore
     * SIGPIPE in main() (tests/integration/test_sigpipe.py checks the binaries) */
    signal(SIGPIPE, SIG_IGN);
    L = cq_loop_new(&err);
    if (!L) cqtest_fatal("cq_loop_new: %s", err.msg);
    RUN(fixture_round_trip);
    RUN(replies_and_errors);
    RUN(pipelined_incr);
    RUN(command_timeout);
    RUN(stall_reconnects);
    RUN(outage_and_reconnect);
    RUN(auth);
    RUN(acl_user_and_db);
    RUN(parse_addr);
    RUN(sentinel_failover);
    RUN(connect_timeout);
    RUN(free_with_pending);
    RUN(one_turn_and_large_write);
    cq_loop_free(L);
    return cqtest_done();
}
