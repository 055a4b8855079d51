/* Integration test of the pipeline tracker (worker/pipeline*.c) against real Kafka and
 * Redis and the scripted fake GitLab (tests/fakes/fake_gitlab.py): variables arrive
 * exactly and cannot be injected, every end state's final text, failed log tails, manual,
 * timeout (reply / cancel), webhook fast path, kill -9 of the owner of 100 pipelines
 * (another tracker takes over: one final each), and a Redis restart mid-wait. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "cqtest.h"
#include "crypto.h"
#include "envelope.h"
#include "gitlab.h"
#include "httpc.h"
#include "kafka.h"
#include "loop.h"
#include "pipeline.h"
#include "redis.h"

#define MAX_RESULTS 4096

/* ---- one "worker": loop + redis + httpc + producer + tracker ---------------------- */

struct res {
    char rid[64], step[16], status[16];
    char *text;
    long long at;
};

static struct {
    char fake_url[64];
    int fake_port;
    pid_t fake_pid;
    char topic_results[128], topic_hooks[128], prefix[64];
    struct res results[MAX_RESULTS];
    int n_results;
} G;

struct worker {
    struct cq_loop *loop;
    struct cq_redis *redis;
    struct cq_httpc *httpc;
    struct cq_producer *producer;
    struct w_pipeline_tracker *tracker;
    struct cq_consumer *results; /* collector (parent only) */
    struct cq_consumer *hooks;   /* pipeline-events -> w_pipeline_on_hook */
    struct cq_config cfg;
    struct cq_named_secret secrets[1];
    char owner[40];
};

static void on_result(void *opaque, const struct cq_message *m) {
    struct worker *w = opaque;
    struct cq_result r = {0};
    struct cq_err err = {0};
    if (cq_result_decode(m->payload, m->len, 0, &r, &err) == CQ_OK && G.n_results < MAX_RESULTS) {
        struct res *x = &G.results[G.n_results++];
        snprintf(x->rid, sizeof(x->rid), "%s", r.request_id);
        snprintf(x->step, sizeof(x->step), "%s", r.step);
        snprintf(x->status, sizeof(x->status), "%s", r.status);
        x->text = strdup(r.text ? r.text : "");
        x->at = w_pipeline_now_ms();
    }
    cq_result_clear(&r);
    cq_consumer_done(w->results, m->topic, m->partition, m->offset);
}

static void on_hook_msg(void *opaque, const struct cq_message *m) {
    struct worker *w = opaque;
    w_pipeline_on_hook(w->tracker, m->payload, m->len);
    cq_consumer_done(w->hooks, m->topic, m->partition, m->offset);
}

static void worker_init(struct worker *w, int redis_port, int lease_ms, int poll_min, int poll_max,
                        bool collect, bool hooks) {
    struct cq_err err = {0};
    memset(w, 0, sizeof(*w));
    cq_uuid4(w->owner);
    w->loop = cq_loop_new(&err);
    w->cfg.kafka.topic_results = G.topic_results;
    w->cfg.redis.prefix = G.prefix;
    w->cfg.gitlab.base_url = G.fake_url;
    w->cfg.gitlab.api_token.value = "api-secret";
    w->cfg.worker.lease_ms = lease_ms;
    w->cfg.worker.poll_min_ms = poll_min;
    w->cfg.worker.poll_max_ms = poll_max;
    w->cfg.worker.log_tail_lines = 5;
    w->cfg.worker.log_tail_bytes = 400;
    w->secrets[0].name = "lb_trigger";
    w->secrets[0].secret.value = "trig-secret";
    w->cfg.secrets = w->secrets;
    w->cfg.n_secrets = 1;
    w->redis = cq_redis_new(w->loop, "127.0.0.1", redis_port, NULL, 1000, 2000, &err);
    w->httpc = cq_httpc_new(w->loop, 64, &err);
    w->producer = cq_producer_new(cqtest_kafka_bootstrap(), 5000, w->loop, NULL, &err);
    if (!w->loop || !w->redis || !w->httpc || !w->producer)
        cqtest_fatal("worker setup: %s", err.msg);
    struct w_pipeline_deps d = {.loop = w->loop,
                                .cfg = &w->cfg,
                                .redis = w->redis,
                                .httpc = w->httpc,
                                .producer = w->producer,
                                .owner_id = w->owner,
                                .scan_ms = 50};
    w->tracker = w_pipeline_tracker_new(&d, &err);
    if (!w->tracker) cqtest_fatal("tracker: %s", err.msg);
    if (collect) {
        const char *topics[] = {G.topic_results, NULL};
        w->results = cq_consumer_new(cqtest_kafka_bootstrap(), cqtest_unique("cqt.pl.res"), topics,
                                     w->loop, on_result, w, NULL, &err);
        if (!w->results) cqtest_fatal("results consumer: %s", err.msg);
    }
    for (int i = 0; i < 200 && !cq_redis_connected(w->redis); i++)
        uv_run(cq_loop_uv(w->loop), UV_RUN_ONCE);
    if (hooks) {
        const char *topics[] = {G.topic_hooks, NULL};
        w->hooks = cq_consumer_new(cqtest_kafka_bootstrap(), cqtest_unique("cqt.pl.hooks"), topics,
                                   w->loop, on_hook_msg, w, NULL, &err);
        if (!w->hooks) cqtest_fatal("hooks consumer: %s", err.msg);
    }
}

static void worker_free(struct worker *w) {
    w_pipeline_tracker_free(w->tracker);
    cq_consumer_free(w->results);
    cq_consumer_free(w->hooks);
    cq_redis_free(w->redis);
    cq_httpc_free(w->httpc);
    cq_producer_free(w->producer);
    cq_loop_free(w->loop);
}

/* Runs the loop until cond(arg) or timeout; returns cond's final value. */
struct waiter {
    bool (*cond)(void *);
    void *arg;
    uint64_t until;
    bool met;
};

static void wait_tick(uv_timer_t *t) {
    struct waiter *wt = t->data;
    if (wt->cond(wt->arg)) {
        wt->met = true;
        uv_stop(t->loop);
    } else if (cq_now_ms() >= wt->until) {
        uv_stop(t->loop);
    }
}

static bool run_until(struct worker *w, bool (*cond)(void *), void *arg, int timeout_ms) {
    struct waiter wt = {.cond = cond, .arg = arg, .until = cq_now_ms() + (uint64_t)timeout_ms};
    uv_timer_t t;
    uv_timer_init(cq_loop_uv(w->loop), &t);
    t.data = &wt;
    uv_timer_start(&t, wait_tick, 20, 20);
    uv_run(cq_loop_uv(w->loop), UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(cq_loop_uv(w->loop), UV_RUN_NOWAIT);
    return wt.met;
}

static bool never(void *arg) {
    (void)arg;
    return false;
}

/* ---- fake GitLab ------------------------------------------------------------------- */

static void fake_start(void) {
    int fds[2];
    char script[512];
    const char *src = getenv("CQ_SOURCE_DIR");
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_gitlab.py", src ? src : ".");
    if (pipe(fds) != 0) cqtest_fatal("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        execlp("python3", "python3", script, "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[32] = "";
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1); /* kept open: the fake may print more */
    if (n <= 0) cqtest_fatal("fake gitlab did not start (%s)", script);
    G.fake_pid = pid;
    G.fake_port = atoi(buf);
    snprintf(G.fake_url, sizeof(G.fake_url), "http://127.0.0.1:%d", G.fake_port);
}

struct http_wait {
    char *body;
    long status;
    bool done;
};

static void on_http(void *opaque, const struct cq_http_response *r) {
    struct http_wait *h = opaque;
    h->status = r->status;
    h->body = strdup(r->body ? r->body : "");
    h->done = true;
}

static bool http_done(void *arg) {
    return ((struct http_wait *)arg)->done;
}

/* GET/POST to the fake's control API; returns the parsed JSON (caller deletes). */
static cJSON *fake_call(struct worker *w, const char *method, const char *path, const char *body) {
    char url[256];
    struct cq_err err = {0};
    struct http_wait h = {0};
    snprintf(url, sizeof(url), "%s%s", G.fake_url, path);
    struct cq_http_request req = {.method = method,
                                  .url = url,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0,
                                  .max_response = 64u << 20};
    if (cq_httpc_request(w->httpc, &req, on_http, &h, &err) != CQ_OK) return NULL;
    run_until(w, http_done, &h, 10000);
    cJSON *j = h.body ? cJSON_Parse(h.body) : NULL;
    free(h.body);
    return j;
}

static const cJSON *fake_pipeline(const cJSON *list, long long id) {
    const cJSON *p;
    cJSON_ArrayForEach(p, list) {
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(p, "id");
        if (cJSON_IsNumber(pid) && (long long)pid->valuedouble == id) return p;
    }
    return NULL;
}

/* ---- triggering -------------------------------------------------------------------- */

struct outcome {
    bool done;
    char step[16], status[16];
    char *text;
    long long pid;
};

static void on_outcome(void *opaque, const struct w_pipeline_outcome *o) {
    struct outcome *x = opaque;
    x->done = true;
    snprintf(x->step, sizeof(x->step), "%s", o->step);
    snprintf(x->status, sizeof(x->status), "%s", o->status);
    x->text = strdup(o->text);
    x->pid = o->pipeline_id;
}

static bool outcome_done(void *arg) {
    return ((struct outcome *)arg)->done;
}

struct cmdspec {
    struct cq_command cmd;
    struct cq_var_tpl vars[2];
    struct cq_arg_spec args[1];
};

static void make_cmd(struct cmdspec *c, enum cq_mode mode, const char *project, const char *ref,
                     int timeout_s, bool cancel, const char *manual) {
    memset(c, 0, sizeof(*c));
    c->cmd.name = "lb weight";
    c->cmd.mode = mode;
    c->args[0].name = "pool";
    c->cmd.args = c->args;
    c->cmd.n_args = 1;
    c->vars[0].name = "POOL";
    c->vars[0].value = "{{args.pool}}";
    c->vars[1].name = "REQ";
    c->vars[1].value = "r={{request.id}}";
    c->cmd.pipeline.project = (char *)project;
    c->cmd.pipeline.ref = (char *)ref;
    c->cmd.pipeline.trigger_token_name = "lb_trigger";
    c->cmd.pipeline.variables = c->vars;
    c->cmd.pipeline.n_variables = 2;
    c->cmd.pipeline.timeout_s = timeout_s;
    c->cmd.pipeline.cancel_on_timeout = cancel;
    c->cmd.pipeline.manual_job = (char *)manual;
    c->cmd.pipeline.progress_interval_s = 1;
}

/* Triggers one pipeline; fills rid (37 bytes). Waits for the outcome. */
static enum cq_rc trigger(struct worker *w, struct cmdspec *c, const char *text, const char *pool,
                          char rid[37], struct outcome *out, struct cq_err *err) {
    cq_uuid4(rid);
    struct cq_request req = {.id = rid,
                             .received_at = "2024-01-01T00:00:00Z",
                             .platform = "slack",
                             .channel_id = "C1",
                             .channel_name = "ops",
                             .user_id = "U1",
                             .user_name = "alice",
                             .command = "lb",
                             .text = (char *)text,
                             .dedupe_key = "slack:x",
                             .reply = {.response_url = "https://hooks.slack.test/r"}};
    char *vals[1] = {(char *)pool};
    struct w_bound_args b = {.cmd = &c->cmd, .values = vals, .n = 1};
    struct cq_tpl_vars v = {.cfg = &w->cfg,
                            .args = &b,
                            .user_id = "U1",
                            .user_name = "alice",
                            .channel_id = "C1",
                            .channel_name = "ops",
                            .request_id = rid,
                            .command = c->cmd.name,
                            .input = text};
    struct w_pipeline_trigger p = {.req = &req,
                                   .cmd = &c->cmd,
                                   .vars = &v,
                                   .gitlab_login = "alice.gl",
                                   .label = "lb weight blue 30"};
    memset(out, 0, sizeof(*out));
    enum cq_rc rc = w_pipeline_trigger(w->tracker, &p, on_outcome, out, err);
    if (rc == CQ_OK) run_until(w, outcome_done, out, 20000);
    return rc;
}

/* ---- result counting --------------------------------------------------------------- */

static int count_results(const char *rid, const char *step) {
    int n = 0;
    for (int i = 0; i < G.n_results; i++)
        if (strcmp(G.results[i].rid, rid) == 0 && strcmp(G.results[i].step, step) == 0) n++;
    return n;
}

static const struct res *find_result(const char *rid, const char *step) {
    for (int i = 0; i < G.n_results; i++)
        if (strcmp(G.results[i].rid, rid) == 0 && strcmp(G.results[i].step, step) == 0)
            return &G.results[i];
    return NULL;
}

struct rids {
    char (*v)[37];
    int n;
};

static bool all_final(void *arg) {
    struct rids *r = arg;
    for (int i = 0; i < r->n; i++)
        if (count_results(r->v[i], "final") == 0) return false;
    return true;
}

/* ---- tests ------------------------------------------------------------------------- */

static struct worker W; /* the parent's worker on the fixture Redis */

TEST(variables_exact_and_uninjectable) {
    struct cmdspec c;
    struct outcome o;
    struct cq_err err = {0};
    char rid[37];
    make_cmd(&c, CQ_MODE_TRIGGER_AND_RETURN, "ops/lb", "s-manual-60000", 60, false, "deploy");
    const char *text = "blue 30&variables[EVIL]=1\r\nX-Evil: 1 \"},\"x\":1";
    const char *pool = "a&variables[POOL2]=b=c&token=zzz";
    CHECK(trigger(&W, &c, text, pool, rid, &o, &err) == CQ_OK);
    CHECK(o.done);
    CHECK_STR(o.step, "final");
    CHECK_STR(o.status, "ok");
    char want[200];
    snprintf(want, sizeof(want), "pipeline #%lld created — approve the 'deploy' job: ", o.pid);
    CHECK_CONTAINS(o.text, want);
    CHECK_CONTAINS(o.text, "/ops/lb/-/pipelines/");
    cJSON *list = fake_call(&W, "GET", "/_pipelines", NULL);
    const cJSON *p = fake_pipeline(list, o.pid);
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(p, "variables");
    char reqv[64];
    snprintf(reqv, sizeof(reqv), "r=%s", rid);
    const char *expect[][2] = {{"CHAT_INPUT", text},
                               {"CHAT_CHANNEL", "ops"},
                               {"CHAT_USER_ID", "U1"},
                               {"GITLAB_USER_LOGIN", "alice.gl"},
                               {"CHATOPS_COMMAND", "lb weight"},
                               {"CHATOPS_REQUEST_ID", rid},
                               {"POOL", pool},
                               {"REQ", reqv}};
    CHECK(cJSON_GetArraySize(vars) == 8);
    for (int i = 0; i < 8 && i < cJSON_GetArraySize(vars); i++) {
        const cJSON *pair = cJSON_GetArrayItem(vars, i);
        CHECK_STR(cJSON_GetArrayItem(pair, 0)->valuestring, expect[i][0]);
        CHECK_STR(cJSON_GetArrayItem(pair, 1)->valuestring, expect[i][1]);
    }
    /* The form had exactly token, ref and 8 variables, with the configured token. */
    cJSON *log = fake_call(&W, "GET", "/_log", NULL);
    const cJSON *rec, *last = NULL;
    cJSON_ArrayForEach(rec, log) last = rec;
    const cJSON *form = cJSON_GetObjectItemCaseSensitive(last, "form");
    CHECK(cJSON_GetArraySize(form) == 10);
    CHECK_STR(cJSON_GetArrayItem(cJSON_GetArrayItem(form, 0), 1)->valuestring, "trig-secret");
    CHECK_STR(cJSON_GetArrayItem(cJSON_GetArrayItem(form, 1), 1)->valuestring, "s-manual-60000");
    cJSON_Delete(list);
    cJSON_Delete(log);
    free(o.text);
    printf("  8 variables arrived exactly; argument text with &, =, [], CRLF stayed data\n");
}

TEST(trigger_errors) {
    struct cmdspec c;
    struct outcome o;
    struct cq_err err = {0};
    char rid[37];
    /* invalid ref (from a template) is refused before anything is sent */
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", "{{args.pool}}", 60, false, NULL);
    CHECK(trigger(&W, &c, "x", "main&variables[X]=1", rid, &o, &err) == CQ_EINVAL);
    CHECK_CONTAINS(err.msg, "not a valid branch or tag name");
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", "missing", 60, false, NULL);
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_STR(o.status, "failed");
    CHECK_STR(o.step, "final");
    CHECK_CONTAINS(o.text, "HTTP 422");
    CHECK_CONTAINS(o.text, "Reference not found");
    free(o.text);
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "404", "main", 60, false, NULL);
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_CONTAINS(o.text, "HTTP 404");
    free(o.text);
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "403", "main", 60, false, NULL);
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_CONTAINS(o.text, "HTTP 403");
    free(o.text);
    W.secrets[0].secret.value = "wrong";
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", "main", 60, false, NULL);
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_CONTAINS(o.text, "rejected the token (HTTP 401)");
    CHECK(strstr(o.text, "wrong") == NULL);
    free(o.text);
    W.secrets[0].secret.value = "trig-secret";
    /* 429 is retried (GitLab did not act); the second attempt succeeds */
    cJSON_Delete(fake_call(&W, "POST", "/_control/fail",
                           "{\"contains\":\"/trigger\",\"status\":429,\"count\":1,"
                           "\"retry_after\":\"1\"}"));
    make_cmd(&c, CQ_MODE_TRIGGER_AND_RETURN, "ops/lb", "s-success-60000", 60, false, NULL);
    uint64_t t0 = cq_now_ms();
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_STR(o.status, "ok");
    CHECK(cq_now_ms() - t0 >= 900); /* 1 s Retry-After, on a timer */
    free(o.text);
    /* 503 may come after GitLab acted: never sent again; none carries the request id */
    cJSON_Delete(fake_call(&W, "POST", "/_control/fail",
                           "{\"contains\":\"/trigger\",\"status\":503,\"count\":1}"));
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_STR(o.status, "failed");
    CHECK_CONTAINS(o.text, "(HTTP 503)");
    CHECK_CONTAINS(o.text, "outcome is unknown");
    CHECK_CONTAINS(o.text, rid);
    CHECK(o.pid == 0);
    free(o.text);
    /* 502 after GitLab created it: found by its CHATOPS_REQUEST_ID */
    cJSON_Delete(fake_call(&W, "POST", "/_control/fail",
                           "{\"contains\":\"/trigger\",\"status\":502,\"count\":1,"
                           "\"after_create\":true}"));
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_STR(o.status, "ok");
    CHECK_CONTAINS(o.text, "created");
    CHECK(o.pid > 0);
    free(o.text);
    /* always 429: bounded */
    cJSON_Delete(fake_call(&W, "POST", "/_control/fail",
                           "{\"contains\":\"/trigger\",\"status\":429,\"count\":3}"));
    CHECK(trigger(&W, &c, "x", "p", rid, &o, &err) == CQ_OK);
    CHECK_STR(o.status, "failed");
    CHECK_CONTAINS(o.text, "HTTP 429) after 3 attempts");
    free(o.text);
    printf("  invalid ref refused; 422/404/403/401 explained; 429 retried, 429x3 bounded; 503 "
           "not re-sent (outcome unknown); 502 after create found\n");
}

struct endcase {
    const char *ref;
    int timeout_s;
    bool cancel;
    const char *status;
    const char *contains;
    char rid[37];
    long long pid;
};

TEST(end_states) {
    struct endcase cases[] = {
        {"s-success-1500", 60, false, "ok", "succeeded", "", 0},
        {"s-failed-1500", 60, false, "failed", "failed job: `apply`", "", 0},
        {"s-canceled-1500", 60, false, "failed", "was canceled", "", 0},
        {"s-skipped-1500", 60, false, "failed", "was skipped", "", 0},
        {"s-manual-1500", 60, false, "ok", "needs a click", "", 0},
        {"s-forever", 3, false, "timeout", "keeps running", "", 0},
        {"s-forever", 3, true, "timeout", "it was canceled", "", 0},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    char rids[16][37];
    struct cq_err err = {0};
    for (size_t i = 0; i < n; i++) {
        struct cmdspec c;
        struct outcome o;
        make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", cases[i].ref, cases[i].timeout_s,
                 cases[i].cancel, NULL);
        CHECK(trigger(&W, &c, "blue 30", "blue", cases[i].rid, &o, &err) == CQ_OK);
        CHECK_STR(o.step, "ack");
        CHECK_STR(o.status, "ok");
        CHECK_CONTAINS(o.text, "I will report here when it ends");
        cases[i].pid = o.pid;
        memcpy(rids[i], cases[i].rid, 37);
        free(o.text);
    }
    struct rids r = {.v = rids, .n = (int)n};
    CHECK(run_until(&W, all_final, &r, 20000));
    run_until(&W, never, NULL, 1500); /* anything doubled would show up now */
    cJSON *list = fake_call(&W, "GET", "/_pipelines", NULL);
    for (size_t i = 0; i < n; i++) {
        const struct res *f = find_result(cases[i].rid, "final");
        CHECK(count_results(cases[i].rid, "final") == 1);
        CHECK(f != NULL);
        if (!f) continue;
        CHECK_STR(f->status, cases[i].status);
        CHECK_CONTAINS(f->text, cases[i].contains);
        printf("  %-16s -> %s: %.90s\n", cases[i].ref, f->status, f->text);
        const cJSON *p = fake_pipeline(list, cases[i].pid);
        int cancels = cJSON_GetObjectItemCaseSensitive(p, "cancel_requests")->valueint;
        CHECK(cancels == (cases[i].cancel ? 1 : 0));
    }
    /* failed: the tail of the failed job's log, bounded, without the allowed failure */
    const struct res *f = find_result(cases[1].rid, "final");
    if (f) {
        CHECK_CONTAINS(f->text, "ERROR: apply failed in job");
        CHECK_CONTAINS(f->text, "line 97 of job");
        CHECK(strstr(f->text, "line 90 of job") == NULL); /* 5 lines only */
        CHECK(strstr(f->text, "lint") == NULL);
        CHECK(strstr(f->text, "\x1b") == NULL);
    }
    /* progress named the running job */
    const struct res *pr = find_result(cases[0].rid, "progress");
    CHECK(pr != NULL);
    if (pr) CHECK_CONTAINS(pr->text, "running — job `apply` (stage deploy)");
    cJSON_Delete(list);
}

/* Copies hook bodies from the fake to the pipeline-events topic (as the ingress would). */
struct hookpump {
    struct worker *w;
    int next;
};

static void pump_hooks(struct hookpump *hp) {
    char path[64];
    snprintf(path, sizeof(path), "/_hooks?since=%d", hp->next);
    cJSON *j = fake_call(hp->w, "GET", path, NULL);
    const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(j, "hooks"), *h;
    hp->next = cJSON_GetObjectItemCaseSensitive(j, "next")->valueint;
    cJSON_ArrayForEach(h, hooks) {
        char *s = cJSON_PrintUnformatted(h);
        struct cq_err err = {0};
        cq_producer_send(hp->w->producer, G.topic_hooks, NULL, 0, s, strlen(s), NULL, NULL, NULL,
                         &err);
        free(s);
    }
    cJSON_Delete(j);
}

TEST(webhook_ends_wait_without_poll) {
    struct worker w;
    /* Polls every 20 s at best: only the hook can end it in time. */
    worker_init(&w, cqtest_redis_port(), 3000, 20000, 20000, false, true);
    struct cmdspec c;
    struct outcome o;
    struct cq_err err = {0};
    char rid[37];
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", "s-success-2500", 60, false, NULL);
    CHECK(trigger(&w, &c, "blue 30", "blue", rid, &o, &err) == CQ_OK);
    CHECK_STR(o.step, "ack");
    struct hookpump hp = {.w = &w};
    pump_hooks(&hp);
    int start = G.n_results;
    for (int i = 0; i < 100 && count_results(rid, "final") == 0; i++) {
        run_until(&w, never, NULL, 100);
        pump_hooks(&hp);
        run_until(&W, never, NULL, 1); /* collector */
    }
    (void)start;
    run_until(&W, never, NULL, 500);
    cJSON *list = fake_call(&w, "GET", "/_pipelines", NULL);
    const cJSON *p = fake_pipeline(list, o.pid);
    const cJSON *ended = cJSON_GetObjectItemCaseSensitive(p, "ended_at");
    const struct res *f = find_result(rid, "final");
    CHECK(f != NULL);
    CHECK(cJSON_IsNumber(ended));
    if (f && cJSON_IsNumber(ended)) {
        long long delay = f->at - (long long)ended->valuedouble;
        printf("  pipeline ended -> final seen after %lld ms (poll interval 20000 ms)\n", delay);
        CHECK(delay < 1500);
        CHECK_CONTAINS(f->text, "succeeded");
    }
    CHECK(count_results(rid, "final") == 1);
    struct w_pipeline_stats st;
    w_pipeline_stats(w.tracker, &st);
    CHECK(st.hooks >= 1);
    cJSON_Delete(list);
    free(o.text);
    worker_free(&w);
}

/* Child mode: a worker that triggers N waits on the fixture Redis, prints "ready", then
 * keeps tracking until killed. */
static int child_main(int n, const char *ref) {
    struct worker w;
    worker_init(&w, cqtest_redis_port(), 1500, 300, 600, false, false);
    struct cmdspec c;
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", ref, 120, false, NULL);
    for (int i = 0; i < n; i++) {
        struct outcome o;
        struct cq_err err = {0};
        char rid[37];
        if (trigger(&w, &c, "blue 30", "blue", rid, &o, &err) != CQ_OK || !o.done ||
            strcmp(o.step, "ack") != 0)
            return 2;
        printf("%s\n", rid);
        free(o.text);
    }
    printf("ready\n");
    fflush(stdout);
    run_until(&w, never, NULL, 600000);
    return 0;
}

static pid_t spawn_child(int n, const char *ref, char (*rids)[37]) {
    int fds[2];
    char nbuf[16];
    snprintf(nbuf, sizeof(nbuf), "%d", n);
    if (pipe(fds) != 0) cqtest_fatal("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        execl("/proc/self/exe", "test_pipeline", "--child", nbuf, ref, G.fake_url, G.topic_results,
              G.prefix, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128];
    int got = 0;
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "ready") == 0) break;
        if (got < n) snprintf(rids[got++], 37, "%.36s", line);
    }
    if (f) fclose(f);
    if (got != n) cqtest_fatal("child worker triggered %d of %d", got, n);
    return pid;
}

TEST(kill9_owner_takeover) {
    static char rids[100][37];
    pid_t a = spawn_child(100, "s-success-12000", rids); /* none ends before the kill */
    run_until(&W, never, NULL, 700);                     /* A is checking some of them right now */
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    uint64_t t0 = cq_now_ms();
    struct w_pipeline_stats w0;
    w_pipeline_stats(W.tracker, &w0);
    struct worker b;
    worker_init(&b, cqtest_redis_port(), 1500, 300, 600, false, false);
    struct rids r = {.v = rids, .n = 100};
    for (int i = 0; i < 300 && !all_final(&r); i++) {
        run_until(&b, never, NULL, 50);
        run_until(&W, never, NULL, 20);
    }
    CHECK(all_final(&r));
    for (int i = 0; i < 20; i++) { /* time for any double to show */
        run_until(&b, never, NULL, 50);
        run_until(&W, never, NULL, 50);
    }
    int ones = 0;
    for (int i = 0; i < 100; i++)
        ones += count_results(rids[i], "final") == 1;
    /* B and the parent's tracker W (same Redis and prefix) are the surviving workers. */
    struct w_pipeline_stats st, w1;
    w_pipeline_stats(b.tracker, &st);
    w_pipeline_stats(W.tracker, &w1);
    printf("  worker A (100 waits) killed -9; survivors delivered finals for %d/100 exactly "
           "once in %.1f s (B %lu, W %lu, takeovers of stored finals %lu)\n",
           ones, (double)(cq_now_ms() - t0) / 1000.0, st.finals, w1.finals - w0.finals,
           st.takeovers + w1.takeovers - w0.takeovers);
    CHECK(ones == 100);
    CHECK(st.finals + (w1.finals - w0.finals) == 100);
    worker_free(&b);
}

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

static pid_t start_redis(int port, const char *dir) {
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
        execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--dir",
               dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--loglevel",
               "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        struct cq_err err;
        redisContext *c = cq_redis_connect_sync("127.0.0.1", port, NULL, 500, &err);
        if (c) {
            redisFree(c);
            return pid;
        }
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    cqtest_fatal("redis-server on port %d did not start", port);
}

TEST(redis_restart_mid_wait) {
    char dir[] = "/tmp/cqt-pl-redis-XXXXXX";
    if (!mkdtemp(dir)) cqtest_fatal("mkdtemp");
    int port = free_port();
    pid_t rs = start_redis(port, dir);
    struct worker w;
    worker_init(&w, port, 1500, 300, 600, false, false);
    static char rids[20][37];
    struct cmdspec c;
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", "s-success-4000", 120, false, NULL);
    for (int i = 0; i < 20; i++) {
        struct outcome o;
        struct cq_err err = {0};
        CHECK(trigger(&w, &c, "blue 30", "blue", rids[i], &o, &err) == CQ_OK);
        CHECK_STR(o.step, "ack");
        free(o.text);
    }
    run_until(&w, never, NULL, 800);
    kill(rs, SIGKILL); /* hard stop: AOF with fsync always keeps every write */
    waitpid(rs, NULL, 0);
    run_until(&w, never, NULL, 1500);
    rs = start_redis(port, dir);
    struct rids r = {.v = rids, .n = 20};
    for (int i = 0; i < 300 && !all_final(&r); i++) {
        run_until(&w, never, NULL, 50);
        run_until(&W, never, NULL, 20);
    }
    CHECK(all_final(&r));
    for (int i = 0; i < 20; i++) {
        run_until(&w, never, NULL, 50);
        run_until(&W, never, NULL, 50);
    }
    int ones = 0;
    for (int i = 0; i < 20; i++)
        ones += count_results(rids[i], "final") == 1;
    printf("  redis killed -9 and restarted (AOF) mid-wait: %d/20 finals exactly once\n", ones);
    CHECK(ones == 20);
    worker_free(&w);
    kill(rs, SIGTERM);
    waitpid(rs, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

struct textres {
    bool done;
    char status[16];
    char *text;
};

static void on_text(void *opaque, const char *status, const char *text) {
    struct textres *t = opaque;
    t->done = true;
    snprintf(t->status, sizeof(t->status), "%s", status);
    t->text = strdup(text);
}

static bool text_done(void *arg) {
    return ((struct textres *)arg)->done;
}

TEST(cancel_and_list_builtins) {
    struct cmdspec c;
    struct outcome o;
    struct cq_err err = {0};
    char rid[37];
    make_cmd(&c, CQ_MODE_TRIGGER_AND_WAIT, "ops/lb", "s-forever", 120, false, NULL);
    CHECK(trigger(&W, &c, "blue 30", "blue", rid, &o, &err) == CQ_OK);
    free(o.text);
    struct textres tr = {0};
    CHECK(w_pipeline_list(W.tracker, "slack", "U1", NULL, on_text, &tr, &err) == CQ_OK);
    run_until(&W, text_done, &tr, 5000);
    CHECK_STR(tr.status, "ok");
    CHECK_CONTAINS(tr.text, rid);
    CHECK_CONTAINS(tr.text, "lb weight blue 30");
    free(tr.text);
    /* another user sees nothing of alice's and may not cancel it */
    memset(&tr, 0, sizeof(tr));
    CHECK(w_pipeline_list(W.tracker, "slack", "U2", NULL, on_text, &tr, &err) == CQ_OK);
    run_until(&W, text_done, &tr, 5000);
    CHECK(tr.text && strstr(tr.text, rid) == NULL);
    free(tr.text);
    memset(&tr, 0, sizeof(tr));
    CHECK(w_pipeline_cancel(W.tracker, rid, "slack", "U2", NULL, on_text, &tr, &err) == CQ_OK);
    run_until(&W, text_done, &tr, 5000);
    CHECK_STR(tr.status, "denied");
    free(tr.text);
    /* a privileged role sees it and cancels it; the final says canceled */
    char *cancel_roles[] = {"sre", NULL};
    char *roles[] = {"sre", NULL};
    struct cq_person sre = {.name = "carol", .roles = roles};
    W.cfg.worker.cancel_roles = cancel_roles;
    memset(&tr, 0, sizeof(tr));
    CHECK(w_pipeline_list(W.tracker, "slack", "U3", &sre, on_text, &tr, &err) == CQ_OK);
    run_until(&W, text_done, &tr, 5000);
    CHECK_CONTAINS(tr.text, rid);
    free(tr.text);
    memset(&tr, 0, sizeof(tr));
    CHECK(w_pipeline_cancel(W.tracker, rid, "slack", "U3", &sre, on_text, &tr, &err) == CQ_OK);
    run_until(&W, text_done, &tr, 5000);
    CHECK_STR(tr.status, "ok");
    CHECK_CONTAINS(tr.text, "cancel requested");
    free(tr.text);
    W.cfg.worker.cancel_roles = NULL;
    char(*one)[37] = &rid;
    struct rids r = {.v = one, .n = 1};
    CHECK(run_until(&W, all_final, &r, 10000));
    const struct res *f = find_result(rid, "final");
    CHECK(f && strstr(f->text, "was canceled"));
    /* finished: cancel again says so */
    memset(&tr, 0, sizeof(tr));
    CHECK(w_pipeline_cancel(W.tracker, rid, "slack", "U1", NULL, on_text, &tr, &err) == CQ_OK);
    run_until(&W, text_done, &tr, 5000);
    CHECK_STR(tr.status, "invalid");
    free(tr.text);
    printf("  pipelines lists own (all for cancel_roles); cancel denied to others, allowed "
           "to the role; final canceled\n");
}

int main(int argc, char **argv) {
    if (argc >= 7 && strcmp(argv[1], "--child") == 0) {
        snprintf(G.fake_url, sizeof(G.fake_url), "%s", argv[4]);
        snprintf(G.topic_results, sizeof(G.topic_results), "%s", argv[5]);
        snprintf(G.prefix, sizeof(G.prefix), "%s", argv[6]);
        return child_main(atoi(argv[2]), argv[3]);
    }
    struct cq_err err = {0};
    /* this process embeds the library the way a service does, and the services ignore
     * SIGPIPE in main() (tests/integration/test_sigpipe.py checks the binaries) */
    signal(SIGPIPE, SIG_IGN);
    fake_start();
    snprintf(G.topic_results, sizeof(G.topic_results), "%s", cqtest_unique("cqt.pl.results"));
    snprintf(G.topic_hooks, sizeof(G.topic_hooks), "%s", cqtest_unique("cqt.pl.hooks"));
    snprintf(G.prefix, sizeof(G.prefix), "%s:", cqtest_unique("cqtpl"));
    const char *topics[] = {G.topic_results, G.topic_hooks, NULL};
    if (cq_kafka_ensure_topics(cqtest_kafka_bootstrap(), topics, 3, 1, 30000, &err) != CQ_OK)
        cqtest_fatal("topics: %s", err.msg);
    worker_init(&W, cqtest_redis_port(), 1500, 300, 600, true, false);
    RUN(variables_exact_and_uninjectable);
    RUN(trigger_errors);
    RUN(end_states);
    RUN(cancel_and_list_builtins);
    RUN(webhook_ends_wait_without_poll);
    RUN(kill9_owner_takeover);
    RUN(redis_restart_mid_wait);
    worker_free(&W);
    kill(G.fake_pid, SIGTERM);
    waitpid(G.fake_pid, NULL, 0);
    for (int i = 0; i < G.n_results; i++)
        free(G.results[i].text);
    printf("checked: exact variables, trigger errors and retries, 7 end states with one final "
           "each, log tail, progress job name, webhook fast path, kill -9 takeover of 100, "
           "redis restart\n");
    return cqtest_done();
}
