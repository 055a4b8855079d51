/* fuzz_common: see fuzz_common.h. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqtest_contracts.h"

/* The ingress and worker config: small limits so long inputs cross them cheaply. */
const char fz_main_yaml[] =
    "kafka: {brokers: \"127.0.0.1:1\"}\n"
    "limits: {max_text: 200, max_args: 8, max_arg_len: 64}\n"
    "slack: {enabled: true, signing_secret: \"${CQT_FZ_SLACK}\"}\n"
    "feishu: {enabled: true, verification_token: \"${CQT_FZ_VT}\", bot_open_id: ou_bot,\n"
    "  require_encrypt_key: false}\n"
    "gitlab: {base_url: \"http://127.0.0.1:1\", webhook_token: \"${CQT_FZ_GL}\"}\n"
    "secrets: {trig: \"${CQT_FZ_TRIG}\"}\n"
    "commands:\n"
    "  flag get:\n"
    "    mode: direct\n"
    "    args:\n"
    "      - {name: name, required: true, regex: \"[a-z][a-z0-9_]*\", max_len: 40}\n"
    "    http: {method: GET, path: \"/f/{{args.name}}\"}\n"
    "  flag set:\n"
    "    mode: direct\n"
    "    args:\n"
    "      - {name: name, required: true, regex: \"[a-z][a-z0-9_]*\", max_len: 40}\n"
    "      - {name: value, type: enum, required: true, values: [\"on\", \"off\"]}\n"
    "    http: {method: POST, path: \"/f/{{args.name}}\", body: \"v={{args.value}}\",\n"
    "           body_type: form}\n"
    "  lb weight:\n"
    "    mode: trigger_and_wait\n"
    "    args:\n"
    "      - {name: pool, type: enum, required: true, values: [blue, green]}\n"
    "      - {name: percent, type: int, required: true, min: 0, max: 100}\n"
    "    pipeline: {project: \"ops%2Flb\", ref: main, trigger_token: trig}\n"
    "  deploy:\n"
    "    mode: trigger_and_return\n"
    "    args:\n"
    "      - {name: service, required: true, regex: \"[a-z]+\"}\n"
    "      - {name: env, type: enum, default: staging, values: [staging, production]}\n"
    "      - {name: tag, flag: tag, max_len: 12}\n"
    "    pipeline: {project: \"7\", ref: \"{{args.env}}\", trigger_token: trig,\n"
    "               manual_job: deploy}\n"
    "  echo:\n"
    "    mode: direct\n"
    "    args:\n"
    "      - {name: text, required: true}\n"
    "      - {name: n, flag: n, type: int, min: 1, max: 5}\n"
    "    http: {method: GET, path: /echo}\n";

static const char enc_yaml[] = "kafka: {brokers: \"127.0.0.1:1\"}\n"
                               "limits: {max_text: 200}\n"
                               "feishu: {enabled: true, verification_token: \"${CQT_FZ_VT}\",\n"
                               "  encrypt_key: \"${CQT_FZ_EK}\", bot_open_id: ou_bot}\n";

void fz_fail(const char *file, int line, const char *what) {
    fprintf(stderr, "FUZZ CONTRACT VIOLATED %s:%d: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

static void set_env(void) {
    setenv("CQT_FZ_SLACK", FZ_SLACK_SECRET, 1);
    setenv("CQT_FZ_VT", FZ_FS_TOKEN, 1);
    setenv("CQT_FZ_EK", FZ_FS_KEY, 1);
    setenv("CQT_FZ_GL", FZ_GL_TOKEN, 1);
    setenv("CQT_FZ_TRIG", FZ_TRIG_TOKEN, 1);
}

static struct cq_config *load(const char *yaml) {
    struct cq_err err = {0};
    set_env();
    struct cq_config *c = cq_config_load_string("fuzz.yaml", yaml, strlen(yaml), &err);
    if (!c) {
        fprintf(stderr, "fuzz config does not load: %s\n", err.msg);
        abort();
    }
    return c;
}

const struct cq_config *fz_config_main(void) {
    static struct cq_config *cfg;
    if (!cfg) cfg = load(fz_main_yaml);
    return cfg;
}

const struct cq_config *fz_config_encrypted(void) {
    static struct cq_config *cfg;
    if (!cfg) cfg = load(enc_yaml);
    return cfg;
}

char *fz_dup(const void *data, size_t size) {
    char *p = malloc(size + 1);
    if (!p) abort();
    if (size) memcpy(p, data, size);
    p[size] = '\0';
    return p;
}

bool fz_one_line(const char *s) {
    return s && !strchr(s, '\n') && !strchr(s, '\r');
}

/* CQ_FUZZ_VERBOSE=1 prints each verdict: which path a corpus entry reaches. */
static void trace_verdict(const struct ing_verdict *v) {
    static int verbose = -1;
    static const char *const kinds[] = {"reject", "reply", "request", "pipeline"};
    if (verbose < 0) verbose = getenv("CQ_FUZZ_VERBOSE") != NULL;
    if (!verbose || (unsigned)v->kind > ING_PIPELINE) return;
    fprintf(stderr, "  verdict: %s %d %s%s%s\n", kinds[v->kind], v->status,
            v->kind == ING_REJECT && v->reason ? v->reason : "",
            v->kind == ING_REQUEST ? v->req.command : "", v->kind == ING_PIPELINE ? v->key : "");
}

void fz_check_verdict(const struct ing_verdict *v, const char *platform) {
    trace_verdict(v);
    const char *why = cqt_verdict_violation(v, platform, FZ_MAX_TEXT);
    if (why) fz_fail(__FILE__, __LINE__, why);
}
