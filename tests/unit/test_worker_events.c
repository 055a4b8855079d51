/* test_worker_events: GitLab events (issue 15) without I/O: the event record round-trips
 * and refuses bad input; the ingress verdict authenticates per hook/instance token, takes
 * the kind from object_kind (system hooks) and the dedupe uuid from the headers; the
 * router reads each documented payload shape into facts, matches subscriptions (globs,
 * groups, statuses and transitions, refs, environments, actions, labels) and words them;
 * chat subscriptions parse; the config refuses a subscription to an unknown channel. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_reload.h"
#include "cqtest.h"
#include "cqtest_contracts.h"
#include "envelope.h"
#include "event_format.h"
#include "events.h"
#include "feishu_format.h"
#include "ingress.h"
#include "slack_format.h"
#include "subscriptions.h"
#include "utf8.h"

static const char PIPELINE[] =
    "{\"object_kind\":\"pipeline\",\"object_attributes\":{\"id\":31,\"iid\":3,\"ref\":\"main\","
    "\"tag\":false,\"sha\":\"bcbb5ec396a2c0f828686f14fac9b80b780504f2\",\"status\":\"failed\","
    "\"detailed_status\":\"failed\",\"stages\":[\"build\",\"test\"],\"duration\":192,"
    "\"url\":\"https://gitlab.example.com/ops/web/-/pipelines/31\"},"
    "\"user\":{\"id\":1,\"name\":\"Alice Admin\",\"username\":\"alice\"},"
    "\"project\":{\"id\":7,\"name\":\"web\",\"web_url\":\"https://gitlab.example.com/ops/web\","
    "\"path_with_namespace\":\"ops/web\",\"default_branch\":\"main\"},"
    "\"commit\":{\"id\":\"bcbb5ec\",\"message\":\"fix the thing\\n\\nlong body\",\"title\":\"fix "
    "the thing\",\"author\":{\"name\":\"Alice\",\"email\":\"a@example.com\"}},"
    "\"builds\":[{\"id\":380,\"stage\":\"test\",\"name\":\"unit <tests>\",\"status\":\"failed\"},"
    "{\"id\":381,\"stage\":\"build\",\"name\":\"compile\",\"status\":\"success\"}]}";

static const char MR[] =
    "{\"object_kind\":\"merge_request\",\"event_type\":\"merge_request\",\"user\":{\"name\":"
    "\"Bob\"},\"project\":{\"id\":9,\"path_with_namespace\":\"ops/api\",\"web_url\":\"https://"
    "gitlab.example.com/ops/api\"},\"object_attributes\":{\"id\":99,\"iid\":12,\"target_branch\":"
    "\"main\",\"source_branch\":\"feature-x\",\"title\":\"Add X\",\"state\":\"opened\",\"action\":"
    "\"open\",\"url\":\"https://gitlab.example.com/ops/api/-/merge_requests/12\"},"
    "\"labels\":[{\"id\":206,\"title\":\"backend\"},{\"id\":207,\"title\":\"urgent\"}]}";

static const char DEPLOY[] =
    "{\"object_kind\":\"deployment\",\"status\":\"success\",\"deployment_id\":15,"
    "\"deployable_id\":796,\"deployable_url\":\"https://gitlab.example.com/ops/web/-/jobs/796\","
    "\"environment\":\"production\",\"environment_tier\":\"production\",\"project\":{\"id\":7,"
    "\"path_with_namespace\":\"ops/web\"},\"short_sha\":\"279484c0\",\"user\":{\"name\":\"Carol\"},"
    "\"commit_title\":\"Add new file\",\"ref\":\"main\"}";

static const char JOB[] =
    "{\"object_kind\":\"build\",\"ref\":\"main\",\"tag\":false,\"build_id\":1977,\"build_name\":"
    "\"test\",\"build_stage\":\"test\",\"build_status\":\"failed\",\"build_duration\":61.5,"
    "\"pipeline_id\":2366,\"project_id\":7,\"project_name\":\"Ops / Web\",\"user\":{\"name\":"
    "\"Dan\"},\"project\":{\"id\":7,\"path_with_namespace\":\"ops/web\",\"web_url\":\"https://"
    "gitlab.example.com/ops/web\"},\"environment\":null}";

static const char RELEASE[] =
    "{\"id\":1,\"description\":\"v1.1 has been released\",\"name\":\"v1.1\",\"tag\":\"v1.1\","
    "\"object_kind\":\"release\",\"project\":{\"id\":7,\"path_with_namespace\":\"ops/web\"},"
    "\"url\":\"https://gitlab.example.com/ops/web/-/releases/v1.1\",\"action\":\"create\"}";

static const char PUSH[] =
    "{\"object_kind\":\"push\",\"event_name\":\"push\",\"ref\":\"refs/heads/feature/a\","
    "\"user_name\":\"John Smith\",\"project_id\":15,\"project\":{\"id\":15,"
    "\"path_with_namespace\":\"mike/diaspora\"},\"commits\":[{\"id\":\"b6568db\",\"message\":"
    "\"Update Catalan translation\\n\\nSee more\",\"title\":\"Update Catalan translation\"}],"
    "\"total_commits_count\":4}";

TEST(event_record) {
    struct cq_event in = {"pipeline", "gitlab-com", "uuid-1", "2026-01-02T03:04:05.000Z",
                          (char *)PIPELINE},
                    out;
    struct cq_err err = {0};
    char *s = cq_event_encode(&in, &err);
    CHECK(s != NULL);
    CHECK(cq_event_decode(s, strlen(s), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.kind, "pipeline");
    CHECK_STR(out.instance, "gitlab-com");
    CHECK_STR(out.uuid, "uuid-1");
    CHECK_STR(out.body, PIPELINE);
    cq_event_clear(&out);
    free(s);
    in.kind = "wiki_page";
    CHECK(cq_event_encode(&in, &err) == NULL);
    CHECK_CONTAINS(err.msg, "kind");
    const char *bad = "{\"v\":1,\"kind\":\"push\",\"received_at\":\"x\",\"body\":\"{}\"}";
    CHECK(cq_event_decode(bad, strlen(bad), 0, &out, &err) == CQ_EPARSE);
    CHECK_CONTAINS(err.msg, "uuid");
}

static const char CFG[] = "kafka:\n  brokers: \"127.0.0.1:9092\"\n"
                          "events:\n  enabled: true\n"
                          "gitlab:\n  hooks:\n"
                          "    - {name: com, token: \"${CQT_HOOK_COM}\", instance: "
                          "\"https://gitlab.com\"}\n"
                          "    - {name: self, token: \"${CQT_HOOK_SELF}\"}\n"
                          "channels:\n  ops: {platform: slack, id: C1}\n"
                          "subscriptions:\n"
                          "  - name: ops-failures\n    projects: [\"ops/*\"]\n"
                          "    kinds: [pipeline]\n    statuses: [failed, fixed]\n"
                          "    channels: [ops]\n";

static struct cq_config *load(const char *yaml, struct cq_err *err) {
    setenv("CQT_HOOK_COM", "com-token-1", 1);
    setenv("CQT_HOOK_SELF", "self-token-2", 1);
    return cq_config_load_string("t.yaml", yaml, strlen(yaml), err);
}

TEST(config) {
    struct cq_err err = {0};
    struct cq_config *cfg = load(CFG, &err);
    CHECK(cfg != NULL);
    if (!cfg) return;
    CHECK(cfg->gitlab.n_hooks == 2);
    CHECK(cfg->n_subscriptions == 1);
    CHECK_STR(cfg->kafka.topic_events, "chatops.events");
    char *t = cq_config_redact(cfg, strdup("x com-token-1 self-token-2"));
    CHECK_STR(t, "x [redacted] [redacted]");
    free(t);
    cq_config_free(cfg);
    char bad[2048];
    snprintf(bad, sizeof bad, "%s", CFG);
    char *p = strstr(bad, "channels: [ops]");
    memcpy(p, "channels: [op]\n", 16);
    CHECK(load(bad, &err) == NULL);
    CHECK_CONTAINS(err.msg, "subscriptions[0].channels");
    CHECK_CONTAINS(err.msg, "'op' is not a channel");
    snprintf(bad, sizeof bad, "%s", CFG);
    p = strstr(bad, "fixed]");
    memcpy(p, "fixd] ", 6);
    CHECK(load(bad, &err) == NULL);
    CHECK_CONTAINS(err.msg, "'fixd' is not a status");
}

static char changed_key[64];
static void on_changed(void *arg, const char *key) {
    (void)arg;
    if (!changed_key[0]) snprintf(changed_key, sizeof changed_key, "%s", key);
}

/* events.enabled needs a restart (the worker makes its router at start); subscriptions apply
 * to the next event. */
TEST(reload) {
    struct cq_err err = {0};
    struct cq_config *cur = load(CFG, &err), *next;
    char off[2048];
    const char *on = strstr(CFG, "enabled: true");
    snprintf(off, sizeof off, "%.*senabled: false%s", (int)(on - CFG), CFG,
             on + strlen("enabled: true"));
    char *p = strstr(off, "ops-failures");
    memcpy(p, "ops-failurez", 12);
    next = load(off, &err);
    CHECK(cur && next && !next->events.enabled);
    if (!cur || !next) return;
    CHECK(cq_config_keep_restart_keys(next, cur, on_changed, NULL, &err) == CQ_OK);
    CHECK(next->events.enabled);
    CHECK_STR(changed_key, "events.enabled");
    CHECK_STR(next->subscriptions[0].name, "ops-failurez");
    cq_config_free(cur);
    cq_config_free(next);
}

TEST(ingress_verdict) {
    struct cq_err err = {0};
    struct cq_config *cfg = load(CFG, &err);
    struct ing_verdict o;
    struct cq_event ev;
    CHECK(cfg != NULL);
    if (!cfg) return;
    struct ing_headers h = {.gitlab_event = "Pipeline Hook",
                            .gitlab_token = "self-token-2",
                            .gitlab_uuid = "4c6a1a2e-uuid"};
    ing_gitlab_route(cfg, &h, PIPELINE, strlen(PIPELINE), &o);
    CHECK(o.kind == ING_EVENT);
    CHECK_STR(o.key, "7");
    CHECK_STR(o.track_key, "7:31");
    CHECK(cq_event_decode(o.body, strlen(o.body), 0, &ev, &err) == CQ_OK);
    CHECK_STR(ev.kind, "pipeline");
    CHECK_STR(ev.instance, "self");
    CHECK_STR(ev.uuid, "4c6a1a2e-uuid");
    cq_event_clear(&ev);
    ing_verdict_clear(&o);
    /* the instance-bound token only from its instance */
    h.gitlab_token = "com-token-1";
    ing_gitlab_route(cfg, &h, PIPELINE, strlen(PIPELINE), &o);
    CHECK(o.kind == ING_REJECT && o.status == 401);
    ing_verdict_clear(&o);
    h.gitlab_instance = "https://gitlab.com";
    h.idempotency_key = "idem-9";
    ing_gitlab_route(cfg, &h, PIPELINE, strlen(PIPELINE), &o);
    CHECK(o.kind == ING_EVENT);
    CHECK(cq_event_decode(o.body, strlen(o.body), 0, &ev, &err) == CQ_OK);
    CHECK_STR(ev.instance, "com");
    CHECK_STR(ev.uuid, "idem-9");
    cq_event_clear(&ev);
    ing_verdict_clear(&o);
    h.gitlab_token = "com-token-";
    ing_gitlab_route(cfg, &h, PIPELINE, strlen(PIPELINE), &o);
    CHECK(o.kind == ING_REJECT && o.status == 401);
    ing_verdict_clear(&o);
    /* a system hook: the kind from object_kind; no uuid header: a hash of the body */
    struct ing_headers sh = {.gitlab_event = "System Hook", .gitlab_token = "self-token-2"};
    ing_gitlab_route(cfg, &sh, MR, strlen(MR), &o);
    CHECK(o.kind == ING_EVENT);
    CHECK(cq_event_decode(o.body, strlen(o.body), 0, &ev, &err) == CQ_OK);
    CHECK_STR(ev.kind, "merge_request");
    CHECK(strncmp(ev.uuid, "sha256:", 7) == 0 && strlen(ev.uuid) == 71);
    CHECK(o.track_key[0] == '\0');
    CHECK_STR(o.key, "9");
    cq_event_clear(&ev);
    ing_verdict_clear(&o);
    /* a kind chatops does not route: 200, nothing queued */
    const char *wiki = "{\"object_kind\":\"wiki_page\",\"project\":{\"id\":1}}";
    struct ing_headers wh = {.gitlab_event = "Wiki Page Hook", .gitlab_token = "self-token-2"};
    ing_gitlab_route(cfg, &wh, wiki, strlen(wiki), &o);
    CHECK(o.kind == ING_REPLY && o.status == 200);
    ing_verdict_clear(&o);
    cq_config_free(cfg);
}

TEST(facts) {
    struct w_ev_facts f;
    struct cq_err err = {0};
    CHECK(w_ev_facts_parse("pipeline", PIPELINE, strlen(PIPELINE), &f, &err) == CQ_OK);
    CHECK_STR(f.project, "ops/web");
    CHECK_STR(f.ref, "main");
    CHECK_STR(f.status, "failed");
    CHECK(f.object_id == 31 && f.project_id == 7 && f.duration_s == 192);
    CHECK_STR(f.title, "fix the thing");
    CHECK(f.n_failed == 1);
    CHECK_STR(f.failed[0].name, "unit <tests>");
    CHECK_STR(f.failed[0].url, "https://gitlab.example.com/ops/web/-/jobs/380");
    char *h = w_ev_headline(&f), *t = w_ev_text(&f, 3000);
    CHECK_STR(h, "Pipeline #31 failed · ops/web · main");
    CHECK_CONTAINS(t, "by Alice Admin · 3m 12s");
    CHECK_CONTAINS(t, "• unit <tests> https://gitlab.example.com/ops/web/-/jobs/380");
    free(h);
    free(t);
    f.transition = "fixed";
    h = w_ev_headline(&f);
    CHECK_STR(h, "Pipeline #31 failed — fixed · ops/web · main");
    free(h);
    CHECK(w_ev_updates_in_place(&f));
    w_ev_facts_clear(&f);

    CHECK(w_ev_facts_parse("merge_request", MR, strlen(MR), &f, &err) == CQ_OK);
    CHECK(f.object_id == 12 && f.n_labels == 2);
    CHECK_STR(f.action, "open");
    CHECK_STR(f.source, "feature-x");
    t = w_ev_text(&f, 3000);
    CHECK_CONTAINS(t, "Add X\nfeature-x → main");
    free(t);
    w_ev_facts_clear(&f);

    CHECK(w_ev_facts_parse("deployment", DEPLOY, strlen(DEPLOY), &f, &err) == CQ_OK);
    CHECK_STR(f.environment, "production");
    CHECK_STR(f.status, "success");
    h = w_ev_headline(&f);
    CHECK_STR(h, "Deployment to production success · ops/web");
    free(h);
    w_ev_facts_clear(&f);

    CHECK(w_ev_facts_parse("job", JOB, strlen(JOB), &f, &err) == CQ_OK);
    CHECK_STR(f.project, "ops/web");
    CHECK(f.object_id == 1977);
    CHECK_STR(f.url, "https://gitlab.example.com/ops/web/-/jobs/1977");
    w_ev_facts_clear(&f);

    CHECK(w_ev_facts_parse("release", RELEASE, strlen(RELEASE), &f, &err) == CQ_OK);
    CHECK_STR(f.tag, "v1.1");
    t = w_ev_text(&f, 3000);
    CHECK_CONTAINS(t, "v1.1 has been released");
    free(t);
    CHECK(!w_ev_updates_in_place(&f));
    w_ev_facts_clear(&f);

    CHECK(w_ev_facts_parse("push", PUSH, strlen(PUSH), &f, &err) == CQ_OK);
    CHECK_STR(f.ref, "feature/a");
    CHECK(f.commits == 4);
    CHECK_STR(f.author, "John Smith");
    w_ev_facts_clear(&f);

    CHECK(w_ev_facts_parse("push", "[1]", 3, &f, &err) == CQ_EPARSE);
    CHECK(w_ev_facts_parse("push", "{\"ref\":\"x\"}", 11, &f, &err) == CQ_EPARSE);
    CHECK_CONTAINS(err.msg, "project");
}

TEST(matching) {
    struct w_ev_facts f;
    struct cq_err err = {0};
    CHECK(w_ev_facts_parse("pipeline", PIPELINE, strlen(PIPELINE), &f, &err) == CQ_OK);
    char *ops[] = {"ops/*", NULL}, *group[] = {"ops", NULL}, *other[] = {"dev/*", NULL},
         *pl[] = {"pipeline", NULL}, *fixed[] = {"fixed", NULL}, *failed[] = {"failed", NULL},
         *main_[] = {"main", NULL}, *rel[] = {"release/*", NULL}, *prod[] = {"production", NULL};
    CHECK(w_ev_matches(&(struct w_ev_match){.projects = ops}, &f));
    CHECK(w_ev_matches(&(struct w_ev_match){.projects = group}, &f));
    CHECK(!w_ev_project_match("op", "ops/web"));
    CHECK(!w_ev_matches(&(struct w_ev_match){.projects = other}, &f));
    CHECK(w_ev_matches(&(struct w_ev_match){.kinds = pl, .statuses = failed, .refs = main_}, &f));
    CHECK(!w_ev_matches(&(struct w_ev_match){.statuses = fixed}, &f));
    CHECK(!w_ev_matches(&(struct w_ev_match){.refs = rel}, &f));
    CHECK(!w_ev_matches(&(struct w_ev_match){.environments = prod}, &f));
    free(f.status);
    f.status = strdup("success");
    f.transition = "fixed";
    CHECK(w_ev_matches(&(struct w_ev_match){.statuses = fixed}, &f));
    w_ev_facts_clear(&f);
    CHECK(w_ev_facts_parse("merge_request", MR, strlen(MR), &f, &err) == CQ_OK);
    char *urgent[] = {"urgent", NULL}, *docs[] = {"docs", NULL}, *merge[] = {"merge", NULL};
    CHECK(w_ev_matches(&(struct w_ev_match){.labels = urgent}, &f));
    CHECK(!w_ev_matches(&(struct w_ev_match){.labels = docs}, &f));
    CHECK(!w_ev_matches(&(struct w_ev_match){.actions = merge}, &f));
    CHECK(!w_ev_matches(&(struct w_ev_match){.kinds = pl}, &f));
    w_ev_facts_clear(&f);
    CHECK(w_ev_facts_parse("deployment", DEPLOY, strlen(DEPLOY), &f, &err) == CQ_OK);
    CHECK(w_ev_matches(&(struct w_ev_match){.environments = prod}, &f));
    w_ev_facts_clear(&f);
}

TEST(chat_subscriptions) {
    char why[300] = "";
    const char *w1[] = {"ops/*", "pipeline", "failed", "fixed", "ref=main"};
    char *j = w_subs_parse(w1, 5, "alice", why, sizeof why);
    CHECK(j != NULL);
    struct w_ev_facts f;
    struct cq_err err = {0};
    CHECK(w_ev_facts_parse("pipeline", PIPELINE, strlen(PIPELINE), &f, &err) == CQ_OK);
    CHECK(w_subs_json_matches(j, &f));
    free(f.ref);
    f.ref = strdup("dev");
    CHECK(!w_subs_json_matches(j, &f));
    w_ev_facts_clear(&f);
    free(j);
    const char *w2[] = {"ops/*", "pipelin"};
    CHECK(w_subs_parse(w2, 2, "alice", why, sizeof why) == NULL);
    CHECK_CONTAINS(why, "`pipelin` is neither");
    CHECK(w_subs_parse(w2, 0, "alice", why, sizeof why) == NULL);
    CHECK_CONTAINS(why, "usage: subscribe");
    char p[16], c[16];
    CHECK(w_subs_split_chat("feishu|oc_1", p, sizeof p, c, sizeof c));
    CHECK_STR(p, "feishu");
    CHECK_STR(c, "oc_1");
    CHECK(!w_subs_split_chat("teams|x", p, sizeof p, c, sizeof c));
    CHECK(!w_subs_json_matches("not json", &f));
}

TEST(rendering) {
    struct cq_result r = {.request_id = "ev-1",
                          .step = "progress",
                          .status = "ok",
                          .platform = "slack",
                          .text = "fix <the> thing\nby Alice",
                          .command = "Deployment to production success · ops/web",
                          .seq = 2,
                          .event_kind = "release",
                          .event_status = "fixed",
                          .event_url = "https://gitlab.example.com/ops/web/-/releases/v1",
                          .event_project = "ops/web",
                          .event_ref = "v1",
                          .event_author = "A <b>"},
                     back;
    struct cq_err err = {0};
    char *json = cq_result_encode(&r, &err);
    CHECK(json && strstr(json, "\"event\":{\"kind\":\"release\""));
    CHECK(cq_result_decode(json, strlen(json), 0, &back, &err) == CQ_OK);
    CHECK_STR(back.event_status, "fixed");
    CHECK_STR(back.event_url, r.event_url);
    cq_result_clear(&back);
    free(json);
    struct ntf_slack_msg_opts o = {.target = NTF_SLACK_UPDATE, .channel = "C1", .ts = "1.2"};
    char *body = ntf_slack_format(&r, &o, NULL, &err);
    CHECK_CONTAINS(body, ":white_check_mark: *Fixed* Deployment to production");
    CHECK_CONTAINS(body, "Open in GitLab");
    CHECK_CONTAINS(body, "fix &lt;the&gt; thing");
    CHECK(!strstr(body, "In progress"));
    CHECK_CONTAINS(body, "\"fields\":[{\"type\":\"mrkdwn\",\"text\":\"*Project*\\nops/web\"}");
    CHECK_CONTAINS(body, "*Author*\\nA &lt;b&gt;");
    free(body);
    r.event_status = "failed";
    r.platform = "feishu";
    r.reply.chat_id = "oc_1";
    body = ntf_feishu_body(&r, false, 0, &err);
    CHECK_CONTAINS(body, "\"msg_type\":\"interactive\"");
    CHECK_CONTAINS(body, "Failed");
    CHECK_CONTAINS(body, "Open in GitLab");
    CHECK_CONTAINS(body, "Project: ops/web");
    free(body);
    struct ntf_event_look lk;
    r.event_kind = NULL;
    CHECK(!ntf_event_look(&r, &lk));
}

/* Seeded mutations of every documented payload through the ingress verdict and the router's
 * reader: never a crash (ASan/UBSan in CI), a verdict within its contract, a wrong token always
 * 401, an accepted hook always an event record whose body the router reads or refuses with a
 * reason. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

TEST(mutations) {
    static const char *const seeds[][2] = {{"pipeline", PIPELINE}, {"merge_request", MR},
                                           {"deployment", DEPLOY}, {"job", JOB},
                                           {"release", RELEASE},   {"push", PUSH}};
    static const char junk[] = "{}[]\":,0123456789.-e\\u00\xff\xc3\x80 abc\"object_kind\"";
    struct cq_err err = {0};
    struct cq_config *cfg = load(CFG, &err);
    char buf[4096];
    size_t events = 0, refused = 0;
    CHECK(cfg != NULL);
    if (!cfg) return;
    for (int it = 0; it < 20000; it++) {
        const char *seed = seeds[rnd() % 6][1];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        for (int k = (int)(rnd() % 6); k > 0 && n > 2; k--) {
            size_t at = rnd() % n;
            switch (rnd() % 3) {
            case 0:
                buf[at] = junk[rnd() % (sizeof(junk) - 1)];
                break;
            case 1:
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            default:
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = junk[rnd() % (sizeof(junk) - 1)];
                    n++;
                }
            }
        }
        bool good_token = rnd() % 4 != 0;
        struct ing_headers h = {.gitlab_event = "System Hook",
                                .gitlab_token = good_token ? "self-token-2" : "self-token-3"};
        struct ing_verdict v;
        ing_gitlab_route(cfg, &h, buf, n, &v);
        const char *why = cqt_verdict_violation(&v, "gitlab", 4000);
        CHECK(why == NULL);
        if (!good_token) CHECK(v.kind == ING_REJECT && v.status == 401);
        if (v.kind == ING_EVENT) {
            struct cq_event ev;
            struct w_ev_facts f;
            CHECK(cq_event_decode(v.body, strlen(v.body), 0, &ev, &err) == CQ_OK);
            enum cq_rc rc = w_ev_facts_parse(ev.kind, ev.body, strlen(ev.body), &f, &err);
            CHECK(rc == CQ_OK || (rc == CQ_EPARSE && err.msg[0]));
            if (rc == CQ_OK) {
                char *hl = w_ev_headline(&f), *t = w_ev_text(&f, 3000);
                CHECK(hl && t && cq_utf8_valid(t, strlen(t)) && strlen(t) <= 3000);
                free(hl);
                free(t);
                w_ev_facts_clear(&f);
            }
            cq_event_clear(&ev);
            events++;
        } else if (v.kind == ING_REJECT) {
            refused++;
        }
        ing_verdict_clear(&v);
    }
    printf("  %zu events, %zu refused of 20000 mutated hooks\n", events, refused);
    CHECK(events > 1000 && refused > 1000);
    cq_config_free(cfg);
}

int main(void) {
    printf("worker events: record, ingress verdict, facts, matching, chat subscriptions\n");
    RUN(event_record);
    RUN(config);
    RUN(reload);
    RUN(ingress_verdict);
    RUN(facts);
    RUN(matching);
    RUN(chat_subscriptions);
    RUN(rendering);
    RUN(mutations);
    return cqtest_done();
}
