/* test_fuzz_inputs: a deterministic mutation "fuzz smoke" over every parser that sees hostile
 * bytes: the ingress platform functions (Slack commands and events, Feishu plain and
 * encrypted events, GitLab hooks), the request/result envelope decoders, the worker's
 * tokenizer and argument binding, and the YAML config loader. It runs in every CI build, so
 * under ASan+UBSan a crash, leak or undefined behaviour fails it; the CHECKs below also
 * assert each parser's contract (verdict shapes, round trips, one-line reasons).
 *
 * No libFuzzer (the project builds with gcc): a fixed-seed xorshift64* drives mutations of
 * VALID inputs (correctly signed, so mutations get past the signature checks into the form and
 * JSON parsers). Every iteration re-seeds from (seed, target, iteration), so a failure report
 * "seed=S target=T iter=N" reproduces with CQT_FUZZ_SEED=S whatever CQT_FUZZ_ITERS is.
 *   CQT_FUZZ_ITERS  total iterations over all targets (default FUZZ_DEFAULT_ITERS)
 *   CQT_FUZZ_SEED   PRNG seed (decimal or 0x hex; default FUZZ_DEFAULT_SEED) */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "config.h"
#include "cqtest.h"
#include "cqtest_contracts.h"
#include "cqtest_samples.h"
#include "crypto.h"
#include "envelope.h"
#include "ingress.h"
#include "utf8.h"

#define FUZZ_DEFAULT_ITERS 30000
#define FUZZ_DEFAULT_SEED 0x5eedc0ffee123457ULL

/* Secrets of the test configs; a config error message must never contain them. */
#define SLACK_SECRET "fz-slack-signing-s3cret"
#define FS_TOKEN "fz-vtok"
#define FS_KEY "fz-encrypt-key"
#define GL_TOKEN "fz-gl-tok"
#define TRIG_TOKEN "fz-trigger-s3cret"

#define T0 1700000000LL /* the clock every signed Slack input uses */
#define MAX_TEXT 200    /* limits.max_text of the ingress config: long runs go past it */
#define MAX_ARGS 8
#define MAX_ARG_LEN 64

/* ------------------------------------------------------------------------------------------
 * PRNG and failure reporting */

static uint64_t g_seed;
static uint64_t g_rng;
static const char *g_target = "setup";
static size_t g_iter;
static const char *g_in; /* the input of the current iteration, dumped on failure */
static size_t g_in_len;
static const char *g_note; /* e.g. the error message under test, printed on failure */
static int g_reported;

/* What the iterations of one target reached: proof the mutations get past the signature and
 * syntax checks into the deep paths (asserted in main so the test cannot silently go shallow). */
struct reach {
    size_t request, reply, reject400, reject401, reject_other, pipeline, ok;
};
static struct reach g_reach;

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* xorshift64*: test data only, not cryptography. */
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n) {
    return n ? (size_t)(rnd() % n) : 0;
}
static bool one_in(size_t n) {
    return below(n) == 0;
}

/* Each iteration gets its own stream so one can be replayed without the ones before it. */
static void begin_iter(const char *target, unsigned tno, size_t iter) {
    g_target = target;
    g_iter = iter;
    g_rng = splitmix64(g_seed ^ ((uint64_t)tno << 56) ^ (uint64_t)iter);
    if (!g_rng) g_rng = 1;
    g_in = NULL;
    g_in_len = 0;
    g_note = NULL;
}

static void dump_input(void) {
    if (!g_in) return;
    fprintf(stderr, "  input (%zu bytes): \"", g_in_len);
    for (size_t i = 0; i < g_in_len && i < 4000; i++) {
        unsigned char c = (unsigned char)g_in[i];
        if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "%s\"\n", g_in_len > 4000 ? "..." : "");
}

static void fuzz_fail(int line, const char *what) {
    cqtest_failures++;
    if (g_reported++ >= 20) return; /* the first ones are enough to reproduce */
    fprintf(stderr, "FAIL %s:%d: %s [target=%s seed=0x%016llx iter=%zu]\n", __FILE__, line, what,
            g_target, (unsigned long long)g_seed, g_iter);
    dump_input();
    if (g_note) fprintf(stderr, "  message: %s\n", g_note);
}

#define FCHECK(cond)                                                                               \
    do {                                                                                           \
        cqtest_checks++;                                                                           \
        if (!(cond)) fuzz_fail(__LINE__, #cond);                                                   \
    } while (0)

/* A contract from cqtest_contracts: why is NULL when it held, else the broken rule. */
#define FCHECK_WHY(why)                                                                            \
    do {                                                                                           \
        const char *why_ = (why);                                                                  \
        cqtest_checks++;                                                                           \
        if (why_) fuzz_fail(__LINE__, why_);                                                       \
    } while (0)

/* ------------------------------------------------------------------------------------------
 * Byte buffer and mutator */

struct buf {
    char *p; /* always NUL-terminated after len, for the APIs that take C strings */
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t n) {
    if (n + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) cqtest_fatal("out of memory");
    b->p = p;
    b->cap = cap;
}

static void buf_set(struct buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p, s, n);
    b->len = n;
    b->p[n] = '\0';
}

static void buf_insert(struct buf *b, size_t at, const char *s, size_t n) {
    buf_reserve(b, b->len + n);
    memmove(b->p + at + n, b->p + at, b->len - at);
    memcpy(b->p + at, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_erase(struct buf *b, size_t at, size_t n) {
    memmove(b->p + at, b->p + at + n, b->len - at - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

static void buf_free(struct buf *b) {
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Bytes that matter to some parser: separators of forms, JSON, YAML and shell quoting, NUL,
 * and UTF-8 lead/continuation/overlong/surrogate bytes. */
static const unsigned char interesting[] = {
    0x00, 0xff, '%',  '&',  '=',  '"',  '\\', '{',  '}',  '[',  ']',  '\n', '\r', '\t',
    ' ',  '\'', '+',  ':',  '-',  '#',  '$',  ',',  '0',  '9',  '<',  '@',  '*',  '!',
    0x80, 0xbf, 0xc0, 0xc3, 0xdf, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf8, 0x7f, 0x01, 0x1b,
};

/* Tokens that are more likely to reach interesting states than single bytes. */
static const char *const dict[] = {
    "%00",
    "%2",
    "%ZZ",
    "%C3%A9",
    "%E2%82%AC",
    "%FF",
    "%C0%80",
    "%ED%A0%80",
    "+",
    "&&",
    "==",
    "\\u0000",
    "\\ud800",
    "\\uDFFF",
    "\\\"",
    "\\",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "[[[[",
    "{{",
    "}}",
    "1e999",
    "-1",
    "0",
    "9007199254740993",
    "-9223372036854775809",
    "1.5",
    "\xC0\x80",
    "\xED\xA0\x80",
    "\xF4\x90\x80\x80",
    "\xE2\x9C\x93",
    "${",
    "{{args.x}}",
    "--",
    "--tag=",
    "--n",
    "'",
    "\"",
    "''",
    "\"\"",
    "<@UBOT>",
    "@_user_1",
    "- ",
    ": ",
    "\n  ",
    "~",
    "&a ",
    "*a",
    "!!str ",
    "---\n",
    "...\n",
    "? ",
    "|\n  ",
    "0x7fffffff",
    "99999999999",
    "{\"a\":",
    "\"v\":2",
    "\"v\":1",
    "\"v\":\"1\"",
    "\"text\":null",
    "\"id\":1",
};

/* A run of one byte, up to `cap` long: the limits of the parsers are crossed here. */
static void op_long_run(struct buf *b, size_t cap) {
    size_t n = 1 + (one_in(4) ? below(cap) : below(cap / 16 + 1));
    char c = one_in(2) ? (char)interesting[below(sizeof(interesting))] : (char)('a' + below(26));
    char *tmp = malloc(n);
    if (!tmp) cqtest_fatal("out of memory");
    memset(tmp, c, n);
    buf_insert(b, below(b->len + 1), tmp, n);
    free(tmp);
}

/* One to eight stacked mutations of b; `other` is a second input for splicing; `cap` bounds
 * long runs (a few times the limit the target enforces). */
static void mutate(struct buf *b, const char *other, size_t other_len, size_t cap) {
    size_t rounds = 1 + (one_in(3) ? below(8) : below(2));
    for (size_t r = 0; r < rounds; r++) {
        size_t at = below(b->len + 1);
        switch (below(11)) {
        case 0: /* bit flip */
            if (b->len) b->p[below(b->len)] ^= (char)(1u << below(8));
            break;
        case 1: /* replace with an interesting byte */
        case 2:
            if (b->len) b->p[below(b->len)] = (char)interesting[below(sizeof(interesting))];
            break;
        case 3: { /* insert interesting bytes */
            char tmp[4];
            size_t n = 1 + below(sizeof(tmp));
            for (size_t i = 0; i < n; i++)
                tmp[i] = (char)interesting[below(sizeof(interesting))];
            buf_insert(b, at, tmp, n);
            break;
        }
        case 4: /* delete a range */
            if (at < b->len)
                buf_erase(b, at, 1 + below(one_in(4) ? b->len - at : 8) % (b->len - at));
            break;
        case 5: { /* duplicate a range */
            if (!b->len) break;
            size_t from = below(b->len), n = 1 + below(b->len - from);
            char *tmp = malloc(n);
            if (!tmp) cqtest_fatal("out of memory");
            memcpy(tmp, b->p + from, n);
            buf_insert(b, below(b->len + 1), tmp, n);
            free(tmp);
            break;
        }
        case 6: /* truncate */
            if (b->len) {
                b->len = below(b->len);
                b->p[b->len] = '\0';
            }
            break;
        case 7: { /* splice: a prefix of b then a suffix of other */
            if (!other_len) break;
            size_t from = below(other_len);
            b->len = at;
            b->p[b->len] = '\0';
            buf_insert(b, b->len, other + from, other_len - from);
            break;
        }
        case 8: /* long run */
            op_long_run(b, cap);
            break;
        case 9: { /* insert or overwrite with a dictionary token */
            const char *t = dict[below(sizeof(dict) / sizeof(dict[0]))];
            size_t n = strlen(t);
            if (one_in(2) && at + n <= b->len) buf_erase(b, at, n);
            buf_insert(b, at, t, n);
            break;
        }
        default: /* random byte */
            if (b->len) b->p[below(b->len)] = (char)rnd();
            break;
        }
    }
    g_in = b->p;
    g_in_len = b->len;
}

/* ------------------------------------------------------------------------------------------
 * Shared checks */

static bool one_line(const char *s) {
    return s && !strchr(s, '\n') && !strchr(s, '\r');
}

static bool request_empty(const struct cq_request *r) {
    return !r->id && !r->received_at && !r->platform && !r->tenant && !r->channel_id &&
           !r->channel_name && !r->user_id && !r->user_name && !r->command && !r->text &&
           !r->reply.response_url && !r->reply.message_id && !r->reply.chat_id &&
           !r->reply.thread_ts && !r->dedupe_key && r->retry_num == 0;
}

static bool result_empty(const struct cq_result *r) {
    return !r->request_id && !r->step && !r->status && !r->platform && !r->reply.response_url &&
           !r->reply.message_id && !r->reply.chat_id && !r->reply.thread_ts && !r->text &&
           !r->command && !r->user_name && !r->response_type && r->seq == 0 &&
           r->pipeline.id == 0 && !r->pipeline.web_url && !r->pipeline.status && !r->produced_at;
}

/* Counts which path a verdict reached and checks the contract every verdict keeps, whatever
 * the input (cqt_verdict_violation, shared with the libFuzzer targets). */
static void check_verdict(const struct ing_verdict *v, const char *platform) {
    switch (v->kind) {
    case ING_REJECT:
        if (v->status == 400)
            g_reach.reject400++;
        else if (v->status == 401)
            g_reach.reject401++;
        else
            g_reach.reject_other++;
        break;
    case ING_REPLY:
        g_reach.reply++;
        break;
    case ING_REQUEST:
        g_reach.request++;
        break;
    case ING_PIPELINE:
    case ING_EVENT: /* a GitLab event (events.enabled), counted with the pipeline hooks */
        g_reach.pipeline++;
        break;
    }
    const char *why = cqt_verdict_violation(v, platform, MAX_TEXT);
    FCHECK_WHY(why);
}

static struct cq_config *load(const char *yaml) {
    struct cq_err err = {0};
    struct cq_config *c = cq_config_load_string("fuzz.yaml", yaml, strlen(yaml), &err);
    if (!c) cqtest_fatal("config: %s", err.msg);
    return c;
}

/* The ingress and worker config: small limits so long runs cross them cheaply. */
#define COMMANDS_YAML                                                                              \
    "commands:\n"                                                                                  \
    "  flag get:\n"                                                                                \
    "    mode: direct\n"                                                                           \
    "    args:\n"                                                                                  \
    "      - {name: name, required: true, regex: \"[a-z][a-z0-9_]*\", max_len: 40}\n"              \
    "    http: {method: GET, path: \"/f/{{args.name}}\"}\n"                                        \
    "  flag set:\n"                                                                                \
    "    mode: direct\n"                                                                           \
    "    args:\n"                                                                                  \
    "      - {name: name, required: true, regex: \"[a-z][a-z0-9_]*\", max_len: 40}\n"              \
    "      - {name: value, type: enum, required: true, values: [\"on\", \"off\"]}\n"               \
    "    http: {method: POST, path: \"/f/{{args.name}}\", body: \"v={{args.value}}\",\n"           \
    "           body_type: form}\n"                                                                \
    "  lb weight:\n"                                                                               \
    "    mode: trigger_and_wait\n"                                                                 \
    "    args:\n"                                                                                  \
    "      - {name: pool, type: enum, required: true, values: [blue, green]}\n"                    \
    "      - {name: percent, type: int, required: true, min: 0, max: 100}\n"                       \
    "    pipeline: {project: \"ops%2Flb\", ref: main, trigger_token: trig}\n"                      \
    "  deploy:\n"                                                                                  \
    "    mode: trigger_and_return\n"                                                               \
    "    args:\n"                                                                                  \
    "      - {name: service, required: true, regex: \"[a-z]+\"}\n"                                 \
    "      - {name: env, type: enum, default: staging, values: [staging, production]}\n"           \
    "      - {name: tag, flag: tag, max_len: 12}\n"                                                \
    "    pipeline: {project: \"7\", ref: \"{{args.env}}\", trigger_token: trig,\n"                 \
    "               manual_job: deploy}\n"                                                         \
    "  echo:\n"                                                                                    \
    "    mode: direct\n"                                                                           \
    "    args:\n"                                                                                  \
    "      - {name: text, required: true}\n"                                                       \
    "      - {name: n, flag: n, type: int, min: 1, max: 5}\n"                                      \
    "    http: {method: GET, path: /echo}\n"

static const char main_yaml[] =
    "kafka: {brokers: \"127.0.0.1:1\"}\n"
    "limits: {max_text: 200, max_args: 8, max_arg_len: 64}\n"
    "slack: {enabled: true, signing_secret: \"${CQT_FZ_SLACK}\"}\n"
    "feishu: {enabled: true, verification_token: \"${CQT_FZ_VT}\", bot_open_id: ou_bot,\n"
    "  require_encrypt_key: false}\n"
    "gitlab: {base_url: \"http://127.0.0.1:1\", webhook_token: \"${CQT_FZ_GL}\"}\n"
    "secrets: {trig: \"${CQT_FZ_TRIG}\"}\n" COMMANDS_YAML;

static const char enc_yaml[] = "kafka: {brokers: \"127.0.0.1:1\"}\n"
                               "limits: {max_text: 200}\n"
                               "feishu: {enabled: true, verification_token: \"${CQT_FZ_VT}\",\n"
                               "  encrypt_key: \"${CQT_FZ_EK}\", bot_open_id: ou_bot}\n";

static struct cq_config *cfg, *enc_cfg;

/* ------------------------------------------------------------------------------------------
 * Target 1a: Slack slash commands */

static const char *const slack_cmd_seeds[] = {
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fops&text="
    "deploy+web+production&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c",
    ("user_id=U1&trigger_id=t.1&team_id=T9&channel_id=C9&channel_name=ops&user_name=bob&text="
     "%20+lb+weight+blue+30%E2%9C%93+&response_url=https%3A%2F%2Fhooks.slack.com%2Fx"),
    "user_id=U2&trigger_id=9.9&text=echo+%22two+words%22+--n+3",
    "ssl_check=1&token=abc",
    "user_id=U3&trigger_id=1&text=",
};

/* Strings a hostile client may put in X-Slack-Request-Timestamp. */
static const char *const bad_ts[] = {
    "",
    "0",
    "-1",
    "1e9",
    " 1700000000",
    "1700000000x",
    "+1700000000",
    "9999999999999",
    "99999999999999999999",
    "0x6553F100",
    "1700000000\n",
    "\xff",
};

static size_t seed_len(const char *const *seeds, size_t i) {
    return strlen(seeds[i]);
}

static void fuzz_slack_command(size_t iters) {
    const size_t nseeds = sizeof(slack_cmd_seeds) / sizeof(slack_cmd_seeds[0]);
    struct buf b = {0};
    for (size_t it = 0; it < iters; it++) {
        begin_iter("slack_command", 1, it);
        size_t s = below(nseeds), o = below(nseeds);
        buf_set(&b, slack_cmd_seeds[s], seed_len(slack_cmd_seeds, s));
        char orig_sig[68], sig[68], ts[32], want[68];
        long long t = T0 + (long long)below(1000);
        snprintf(ts, sizeof(ts), "%lld", t);
        cq_slack_signature(SLACK_SECRET, ts, b.p, b.len, orig_sig);
        if (!one_in(16)) mutate(&b, slack_cmd_seeds[o], seed_len(slack_cmd_seeds, o), 4 * MAX_TEXT);
        g_in = b.p;
        g_in_len = b.len;

        struct ing_headers h = {0};
        const char *use_ts = ts;
        time_t now = (time_t)t;
        size_t mode = below(16);
        /* Mostly re-signed, so the mutation is judged by the form parser, not the HMAC. */
        cq_slack_signature(SLACK_SECRET, ts, b.p, b.len, sig);
        if (mode >= 11 && mode <= 12) {
            memcpy(sig, orig_sig, sizeof(sig)); /* signed before the mutation */
        } else if (mode == 13) {
            sig[3 + below(64)] ^= (char)(1 + below(15));
        } else if (mode == 14) {
            use_ts = bad_ts[below(sizeof(bad_ts) / sizeof(bad_ts[0]))];
            cq_slack_signature(SLACK_SECRET, use_ts, b.p, b.len, sig);
        } else if (mode == 15) {
            now += one_in(2) ? 301 + (time_t)below(100000) : -301 - (time_t)below(100000);
        }
        h.slack_ts = one_in(64) ? NULL : use_ts;
        h.slack_sig = one_in(32) ? NULL : sig;

        struct ing_verdict v;
        ing_slack_command(cfg, &h, b.p, b.len, now, &v);
        check_verdict(&v, "slack");
        /* Security property: nothing unsigned or wrongly signed is ever produced. */
        bool signed_ok = false;
        if (h.slack_ts && h.slack_sig) {
            cq_slack_signature(SLACK_SECRET, h.slack_ts, b.p, b.len, want);
            signed_ok = strcmp(want, h.slack_sig) == 0;
        }
        if (!signed_ok) FCHECK(v.kind != ING_REQUEST && (v.kind == ING_REPLY || v.status == 401));
        if (signed_ok && h.slack_ts == ts && (now - t > 300 || t - now > 300))
            FCHECK(v.kind == ING_REJECT && v.status == 401 &&
                   strcmp(v.reason, "stale timestamp") == 0);
        if (v.kind == ING_REQUEST) FCHECK(cq_utf8_len(v.req.text, strlen(v.req.text)) <= MAX_TEXT);
        ing_verdict_clear(&v);
    }
    buf_free(&b);
}

/* ------------------------------------------------------------------------------------------
 * Target 1b: Slack Events API */

static const char *const slack_ev_seeds[] = {
    "{\"token\":\"x\",\"challenge\":\"3eZbrw1aB\",\"type\":\"url_verification\"}",
    "{\"type\":\"event_callback\",\"team_id\":\"T1\",\"event_id\":\"Ev123\",\"event\":{\"type\":"
    "\"app_mention\",\"user\":\"U7\",\"text\":\"<@UBOT> flag get beta\",\"channel\":\"C5\","
    "\"ts\":\"1.2\"}}",
    "{\"type\":\"event_callback\",\"team_id\":\"T1\",\"event_id\":\"Ev9\",\"event\":{\"type\":"
    "\"app_mention\",\"user\":\"U7\",\"text\":\"<@UBOT|ops>  lb weight \\\"blue\\\" 30 \\u2713\","
    "\"channel\":\"C5\",\"ts\":\"1.2\",\"thread_ts\":\"1.1\"}}",
    ("{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":{\"type\":\"app_mention\","
     "\"bot_id\":\"B1\",\"user\":\"U7\",\"text\":\"x\"}}"),
    "{\"type\":\"event_callback\",\"event_id\":\"Ev2\",\"event\":{\"type\":\"message\"}}",
};

static const char *const retry_nums[] = {"1",   "2", "-5", "1000", "1001", "99999999999999999999",
                                         "abc", "",  " 7"};

static void fuzz_slack_event(size_t iters) {
    const size_t nseeds = sizeof(slack_ev_seeds) / sizeof(slack_ev_seeds[0]);
    struct buf b = {0};
    for (size_t it = 0; it < iters; it++) {
        begin_iter("slack_event", 2, it);
        size_t s = below(nseeds), o = below(nseeds);
        buf_set(&b, slack_ev_seeds[s], seed_len(slack_ev_seeds, s));
        if (!one_in(16)) mutate(&b, slack_ev_seeds[o], seed_len(slack_ev_seeds, o), 4 * MAX_TEXT);
        char sig[68], ts[32], want[68];
        snprintf(ts, sizeof(ts), "%lld", T0);
        cq_slack_signature(SLACK_SECRET, ts, b.p, b.len, sig);
        if (one_in(8)) sig[3 + below(64)] ^= 1;
        struct ing_headers h = {.slack_ts = ts, .slack_sig = sig};
        if (one_in(3))
            h.slack_retry_num = retry_nums[below(sizeof(retry_nums) / sizeof(retry_nums[0]))];

        struct ing_verdict v;
        ing_slack_event(cfg, &h, b.p, b.len, (time_t)T0, &v);
        check_verdict(&v, "slack");
        cq_slack_signature(SLACK_SECRET, ts, b.p, b.len, want);
        if (strcmp(want, sig) != 0) FCHECK(v.kind == ING_REJECT && v.status == 401);
        ing_verdict_clear(&v);
    }
    buf_free(&b);
}

/* ------------------------------------------------------------------------------------------
 * Target 1c: Feishu events, plain (token only) and encrypted (AES body + signature) */

static const char feishu_msg[] = CQT_FEISHU_MESSAGE(FS_TOKEN);

static const char *const feishu_seeds[] = {
    feishu_msg,
    "{\"challenge\":\"ajls384kdjx98XX\",\"token\":\"" FS_TOKEN "\",\"type\":\"url_verification\"}",
    "{\"schema\":\"2.0\",\"header\":{\"event_id\":\"e2\",\"event_type\":\"im.message.receive_v1\","
    "\"token\":\"" FS_TOKEN "\"},\"event\":{\"sender\":{\"sender_id\":{\"open_id\":\"ou_1\"}},"
    "\"message\":{\"chat_type\":\"p2p\",\"chat_id\":\"oc_1\",\"message_type\":\"text\","
    "\"content\":\"{\\\"text\\\":\\\"echo 'a b' --n 2\\\"}\"}}}",
    "{\"schema\":\"2.0\",\"header\":{\"event_id\":\"e3\",\"event_type\":"
    "\"contact.user.created_v3\","
    "\"token\":\"" FS_TOKEN "\"},\"event\":{}}",
};

/* {"encrypt":"<base64(IV + AES-256-CBC(plain))>"} as Feishu sends it. Not
 * cq_aes256cbc_encrypt: its IV comes from RAND_bytes, and an IV from the seeded PRNG keeps a
 * mutated ciphertext reproducible from (seed, iteration). Caller frees. */
static char *feishu_encrypt(const char *plain, size_t len) {
    uint8_t key[32];
    uint8_t *ct = malloc(16 + len + 16);
    int n1 = 0, n2 = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ct || !ctx) cqtest_fatal("out of memory");
    cq_sha256(FS_KEY, strlen(FS_KEY), key);
    for (int i = 0; i < 16; i++)
        ct[i] = (uint8_t)rnd();
    if (!EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, ct) ||
        !EVP_EncryptUpdate(ctx, ct + 16, &n1, (const uint8_t *)plain, (int)len) ||
        !EVP_EncryptFinal_ex(ctx, ct + 16 + n1, &n2))
        cqtest_fatal("feishu_encrypt failed");
    EVP_CIPHER_CTX_free(ctx);
    char *b64 = cq_base64_encode(ct, 16 + (size_t)n1 + (size_t)n2);
    char *out = b64 ? malloc(strlen(b64) + 16) : NULL;
    if (!out) cqtest_fatal("out of memory");
    sprintf(out, "{\"encrypt\":\"%s\"}", b64);
    free(ct);
    free(b64);
    return out;
}

static void fuzz_feishu(size_t iters) {
    const size_t nseeds = sizeof(feishu_seeds) / sizeof(feishu_seeds[0]);
    struct buf b = {0};
    for (size_t it = 0; it < iters; it++) {
        begin_iter("feishu_event", 3, it);
        size_t s = below(nseeds), o = below(nseeds);
        buf_set(&b, feishu_seeds[s], strlen(feishu_seeds[s]));
        struct ing_verdict v;
        struct ing_headers h = {0};
        if (one_in(2)) { /* plain: the mutated JSON goes straight to the parser */
            if (!one_in(16)) mutate(&b, feishu_seeds[o], strlen(feishu_seeds[o]), 4 * MAX_TEXT);
            ing_feishu_event(cfg, &h, b.p, b.len, 0, &v);
            check_verdict(&v, "feishu");
            ing_verdict_clear(&v);
            continue;
        }
        /* Encrypted: either the plaintext is mutated then encrypted (reaching the inner JSON),
         * or the encrypted envelope itself is mutated (reaching base64/AES/padding). */
        bool mutate_outer = one_in(3);
        if (!mutate_outer) mutate(&b, feishu_seeds[o], strlen(feishu_seeds[o]), 4 * MAX_TEXT);
        char *body = feishu_encrypt(b.p, b.len);
        buf_set(&b, body, strlen(body));
        free(body);
        if (mutate_outer) mutate(&b, NULL, 0, 256);
        g_in = b.p;
        g_in_len = b.len;
        char sig[65], want[65];
        cq_feishu_signature("1700000000", "nonce1", FS_KEY, b.p, b.len, sig);
        h.lark_ts = "1700000000";
        h.lark_nonce = "nonce1";
        h.lark_sig = sig;
        size_t mode = below(8);
        if (mode == 0)
            sig[below(64)] ^= 1;
        else if (mode == 1)
            h.lark_sig = NULL;
        else if (mode == 2)
            h.lark_nonce = "nonce2";
        ing_feishu_event(enc_cfg, &h, b.p, b.len, 0, &v);
        check_verdict(&v, "feishu");
        bool signed_ok = false;
        if (h.lark_sig) {
            cq_feishu_signature(h.lark_ts, h.lark_nonce, FS_KEY, b.p, b.len, want);
            signed_ok = strcmp(want, h.lark_sig) == 0;
        }
        /* url_verification is unsigned by design; nothing else passes a bad signature. */
        if (!signed_ok) FCHECK(v.kind != ING_REQUEST && v.kind != ING_PIPELINE);
        ing_verdict_clear(&v);
    }
    buf_free(&b);
}

/* ------------------------------------------------------------------------------------------
 * Target 1d: GitLab pipeline hooks */

static const char *const gitlab_seeds[] = {
    "{\"object_kind\":\"pipeline\",\"object_attributes\":{\"id\":31,\"status\":\"success\","
    "\"ref\":\"main\"},\"project\":{\"id\":7,\"name\":\"p\"},\"builds\":[{\"id\":1}]}",
    "{\"object_kind\":\"pipeline\",\"object_attributes\":{\"id\":9007199254740991},"
    "\"project\":{\"id\":1.5e3}}",
};

static void fuzz_gitlab(size_t iters) {
    const size_t nseeds = sizeof(gitlab_seeds) / sizeof(gitlab_seeds[0]);
    static const char *const events[] = {"Pipeline Hook", "Push Hook", "pipeline hook", ""};
    static const char *const tokens[] = {GL_TOKEN, GL_TOKEN "x", "", "fz-gl-toK"};
    struct buf b = {0};
    for (size_t it = 0; it < iters; it++) {
        begin_iter("gitlab_hook", 4, it);
        size_t s = below(nseeds), o = below(nseeds);
        buf_set(&b, gitlab_seeds[s], strlen(gitlab_seeds[s]));
        if (!one_in(16)) mutate(&b, gitlab_seeds[o], strlen(gitlab_seeds[o]), 1024);
        struct ing_headers h = {
            .gitlab_event = one_in(4) ? events[below(4)] : events[0],
            .gitlab_token = one_in(4) ? (one_in(4) ? NULL : tokens[below(4)]) : tokens[0],
        };
        struct ing_verdict v;
        ing_gitlab_hook(cfg, &h, b.p, b.len, &v);
        check_verdict(&v, "gitlab");
        bool tok_ok = h.gitlab_token && strcmp(h.gitlab_token, GL_TOKEN) == 0;
        if (!tok_ok) FCHECK(v.kind == ING_REJECT && v.status == 401);
        if (v.kind == ING_PIPELINE) FCHECK(tok_ok && strcmp(h.gitlab_event, "Pipeline Hook") == 0);
        ing_verdict_clear(&v);
    }
    buf_free(&b);
}

/* ------------------------------------------------------------------------------------------
 * Target 2: envelope decoders */

/* The shared full request, with text that needs escaping in JSON (quotes, a newline, a
 * backslash) and a multi-byte UTF-8 name, so the seeds start where decoders are busiest. */
static void fill_request(struct cq_request *r) {
    cqt_fill_request(r);
    r->user_name = "alice \xE2\x9C\x93";
    r->text = "web \"production\"\n\\x";
}

/* Decodes in as both kinds. Success must re-encode and decode to the same fields (nothing a
 * decoder accepts is unreadable downstream); failure must name a reason and leave out zeroed. */
static void decode_both(const char *in, size_t len) {
    size_t max_len = one_in(8) ? below(len + 64) + 1 : 0;
    struct cq_err err = {0};
    struct cq_request rq = {0}, rq2 = {0};
    enum cq_rc rc = cq_request_decode(in, len, max_len, &rq, &err);
    if (rc == CQ_OK) {
        g_reach.ok++;
        FCHECK(max_len == 0 || len <= max_len);
        char *again = cq_request_encode(&rq, &err);
        FCHECK(again != NULL);
        if (again) {
            FCHECK(cq_request_decode(again, strlen(again), 0, &rq2, &err) == CQ_OK);
            FCHECK(cqt_request_equal(&rq, &rq2));
            cq_request_clear(&rq2);
            free(again);
        }
    } else {
        FCHECK(err.msg[0] != '\0' && one_line(err.msg));
        FCHECK(request_empty(&rq));
        if (max_len && len > max_len) FCHECK(rc == CQ_ETOOBIG);
    }
    cq_request_clear(&rq);

    struct cq_result rs = {0}, rs2 = {0};
    cq_err_clear(&err);
    rc = cq_result_decode(in, len, max_len, &rs, &err);
    if (rc == CQ_OK) {
        g_reach.ok++;
        FCHECK(max_len == 0 || len <= max_len);
        char *again = cq_result_encode(&rs, &err);
        FCHECK(again != NULL);
        if (again) {
            FCHECK(cq_result_decode(again, strlen(again), 0, &rs2, &err) == CQ_OK);
            FCHECK(cqt_result_equal(&rs, &rs2));
            cq_result_clear(&rs2);
            free(again);
        }
    } else {
        FCHECK(err.msg[0] != '\0' && one_line(err.msg));
        FCHECK(result_empty(&rs));
        if (max_len && len > max_len) FCHECK(rc == CQ_ETOOBIG);
    }
    cq_result_clear(&rs);
}

/* A random field value: mostly printable, with quotes, escapes, controls and UTF-8 (sometimes
 * invalid), sometimes longer than the envelope allows. Caller frees. */
static char *gen_str(size_t limit) {
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         " ",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\t",
                                         "/",
                                         "\x01",
                                         "\x7f",
                                         "\xC3\xA9",
                                         "\xE2\x9C\x93",
                                         "\xF0\x9F\x98\x80",
                                         "\xC3",
                                         "\xED\xA0\x80",
                                         "\xC0\x80",
                                         "\xff",
                                         "{",
                                         "%"};
    size_t n = one_in(16) ? limit - 4 + below(8) : below(24);
    char *s = malloc(n * 4 + 1);
    size_t o = 0;
    if (!s) cqtest_fatal("out of memory");
    bool ascii = one_in(2);
    for (size_t i = 0; i < n && o < n; i++) {
        size_t k = ascii ? below(4) : below(sizeof(pieces) / sizeof(pieces[0]));
        const char *p = pieces[k];
        size_t pl = strlen(p);
        memcpy(s + o, p, pl);
        o += pl;
    }
    s[o] = '\0';
    return s;
}

static char *maybe_str(size_t limit) {
    return one_in(4) ? NULL : gen_str(limit);
}

/* Generated structs: whatever encodes must decode to the same fields. */
static void envelope_generated(void) {
    struct cq_request r = {0}, back = {0};
    struct cq_err err = {0};
    r.id = gen_str(CQ_ENV_MAX_ID);
    r.received_at = gen_str(CQ_ENV_MAX_TIME);
    r.platform = strdup(one_in(8) ? "irc" : one_in(2) ? "slack" : "feishu");
    r.tenant = maybe_str(CQ_ENV_MAX_ID);
    r.channel_id = maybe_str(CQ_ENV_MAX_ID);
    r.channel_name = maybe_str(CQ_ENV_MAX_NAME);
    r.user_id = gen_str(CQ_ENV_MAX_ID);
    r.user_name = maybe_str(CQ_ENV_MAX_NAME);
    r.command = gen_str(CQ_ENV_MAX_COMMAND);
    r.text = maybe_str(1024);
    r.reply.response_url = maybe_str(CQ_ENV_MAX_URL);
    r.reply.thread_ts = maybe_str(CQ_ENV_MAX_ID);
    r.dedupe_key = gen_str(CQ_ENV_MAX_KEY);
    r.retry_num = one_in(8) ? (int)below(3000) - 1000 : (int)below(5);
    char *json = cq_request_encode(&r, &err);
    if (json) {
        g_in = json;
        g_in_len = strlen(json);
        FCHECK(cq_request_decode(json, strlen(json), 0, &back, &err) == CQ_OK);
        if (!r.text) { /* encode writes a NULL text as "" */
            r.text = strdup("");
        }
        FCHECK(cqt_request_equal(&r, &back));
        cq_request_clear(&back);
        free(json);
    } else {
        FCHECK(err.msg[0] != '\0' && one_line(err.msg));
    }
    g_in = NULL;
    cq_request_clear(&r);

    struct cq_result s = {0}, sback = {0};
    static const char *const steps[] = {"ack", "progress", "final", "done"};
    static const char *const statuses[] = {"ok", "denied", "invalid", "failed", "timeout", "?"};
    cq_err_clear(&err);
    s.request_id = gen_str(CQ_ENV_MAX_ID);
    s.step = strdup(steps[below(4)]);
    s.status = strdup(statuses[below(6)]);
    s.platform = strdup(one_in(2) ? "slack" : "feishu");
    s.reply.chat_id = maybe_str(CQ_ENV_MAX_ID);
    s.text = maybe_str(4096);
    s.command = maybe_str(CQ_ENV_MAX_COMMAND_LINE);
    s.user_name = maybe_str(CQ_ENV_MAX_NAME);
    s.seq = (int)below(100);
    s.pipeline.id = one_in(2) ? 0 : (long long)below(1000000);
    s.pipeline.web_url = one_in(2) ? NULL : gen_str(CQ_ENV_MAX_URL);
    s.produced_at = maybe_str(CQ_ENV_MAX_TIME);
    json = cq_result_encode(&s, &err);
    if (json) {
        g_in = json;
        g_in_len = strlen(json);
        FCHECK(cq_result_decode(json, strlen(json), 0, &sback, &err) == CQ_OK);
        if (!s.text) s.text = strdup("");
        FCHECK(cqt_result_equal(&s, &sback));
        cq_result_clear(&sback);
        free(json);
    } else {
        FCHECK(err.msg[0] != '\0' && one_line(err.msg));
    }
    g_in = NULL;
    cq_result_clear(&s);
}

static void fuzz_envelope(size_t iters) {
    struct cq_request rq;
    struct cq_result rs;
    struct cq_err err = {0};
    char *seeds[4];
    fill_request(&rq);
    cqt_fill_result(&rs);
    seeds[0] = cq_request_encode(&rq, &err);
    seeds[1] = cq_result_encode(&rs, &err);
    rq.tenant = rq.channel_id = rq.channel_name = rq.user_name = NULL;
    rq.reply.response_url = rq.reply.message_id = rq.reply.thread_ts = NULL;
    seeds[2] = cq_request_encode(&rq, &err);
    rs.command = rs.user_name = rs.response_type = rs.produced_at = NULL;
    rs.pipeline.id = 0;
    rs.pipeline.web_url = rs.pipeline.status = NULL;
    seeds[3] = cq_result_encode(&rs, &err);
    for (int i = 0; i < 4; i++)
        if (!seeds[i]) cqtest_fatal("envelope seed %d does not encode: %s", i, err.msg);

    /* The seeds themselves round-trip the fields set above. */
    struct cq_request back = {0};
    CHECK(cq_request_decode(seeds[2], strlen(seeds[2]), 0, &back, &err) == CQ_OK);
    CHECK(cqt_request_equal(&rq, &back));
    cq_request_clear(&back);
    struct cq_result rback = {0};
    CHECK(cq_result_decode(seeds[3], strlen(seeds[3]), 0, &rback, &err) == CQ_OK);
    CHECK(cqt_result_equal(&rs, &rback));
    cq_result_clear(&rback);

    struct buf b = {0};
    for (size_t it = 0; it < iters; it++) {
        begin_iter("envelope", 5, it);
        if (one_in(5)) {
            envelope_generated();
            continue;
        }
        size_t s = below(4), o = below(4);
        buf_set(&b, seeds[s], strlen(seeds[s]));
        mutate(&b, seeds[o], strlen(seeds[o]), 3 * CQ_ENV_MAX_URL);
        decode_both(b.p, b.len);
    }
    buf_free(&b);
    for (int i = 0; i < 4; i++)
        free(seeds[i]);
}

/* ------------------------------------------------------------------------------------------
 * Target 3: worker argument tokenizing, resolution and binding */

static const char *const arg_seeds[] = {
    "flag get new_ui",
    "flag set new_ui on",
    "lb weight blue 30",
    "deploy web production --tag v1.2",
    "deploy --tag=v2 web",
    "echo 'two words' --n 3",
    "echo \"say \\\"hi\\\" \\$HOME\" -- --n",
    "echo a\\ b 'it''s' \"\"",
};

static const char *const arg_words[] = {
    "flag",  "get",     "set",   "lb",    "weight",   "deploy", "echo",    "web",
    "blue",  "green",   "on",    "off",   "30",       "-1",     "101",     "99999999999999999999",
    "--tag", "--tag=x", "--n",   "--n=2", "--",       "-",      "staging", "production",
    "'a b'", "\"c d\"", "x\\ y", "''",    "\xC3\xA9", "new_ui", "--color",
};

static void random_line(struct buf *b) {
    size_t n = below(12);
    b->len = 0;
    b->p[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *w = arg_words[below(sizeof(arg_words) / sizeof(arg_words[0]))];
        if (i) buf_insert(b, b->len, one_in(8) ? "\t " : " ", one_in(8) ? 2 : 1);
        buf_insert(b, b->len, w, strlen(w));
    }
}

static void fuzz_args(size_t iters) {
    const size_t nseeds = sizeof(arg_seeds) / sizeof(arg_seeds[0]);
    struct buf b = {0};
    buf_reserve(&b, 64);
    for (size_t it = 0; it < iters; it++) {
        begin_iter("worker_args", 6, it);
        size_t s = below(nseeds), o = below(nseeds);
        if (one_in(4)) {
            random_line(&b);
            if (one_in(2)) mutate(&b, arg_seeds[o], strlen(arg_seeds[o]), 3 * MAX_ARG_LEN);
        } else {
            buf_set(&b, arg_seeds[s], strlen(arg_seeds[s]));
            mutate(&b, arg_seeds[o], strlen(arg_seeds[o]), 3 * MAX_ARG_LEN);
        }
        g_in = b.p;
        g_in_len = b.len;
        /* As the worker sees it: the ingress split the first word off (NUL ends the text). */
        char *word = NULL, *rest = NULL;
        if (ing_split(b.p, &word, &rest) != CQ_OK) cqtest_fatal("out of memory");
        struct w_argv av = {0};
        struct cq_err err = {0};
        enum cq_rc rc = w_args_tokenize(rest, MAX_ARGS, MAX_ARG_LEN, &av, &err);
        if (rc != CQ_OK) {
            FCHECK(rc == CQ_EPARSE || rc == CQ_ETOOBIG);
            FCHECK(err.msg[0] != '\0' && one_line(err.msg));
            FCHECK(av.n == 0 && av.v == NULL);
        } else {
            FCHECK(av.n <= MAX_ARGS);
            for (size_t i = 0; i < av.n; i++)
                FCHECK(av.v[i] && strlen(av.v[i]) <= MAX_ARG_LEN);
            size_t used = 0;
            const struct cq_command *c = w_args_resolve(cfg, word, &av, &used);
            if (c) {
                struct w_bound_args bd = {0};
                FCHECK(used <= av.n);
                rc = w_args_bind(c, &av, used, MAX_ARG_LEN, &bd, &err);
                if (rc == CQ_OK) {
                    g_reach.ok++;
                    FCHECK_WHY(cqt_bound_violation(&bd, c, MAX_ARG_LEN));
                    char *r = w_bound_render(&bd);
                    FCHECK(r != NULL);
                    free(r);
                } else {
                    FCHECK(rc == CQ_EINVAL);
                    /* Reasons go to chat as one line: control characters never raw. */
                    FCHECK(err.msg[0] != '\0' && one_line(err.msg));
                }
                char usage[200];
                FCHECK(strncmp(w_args_usage(c, usage, sizeof(usage)), "usage: ", 7) == 0);
                w_bound_args_clear(&bd);
            }
        }
        w_argv_clear(&av);
        free(word);
        free(rest);
    }
    buf_free(&b);
}

/* ------------------------------------------------------------------------------------------
 * Target 4: the config loader on mutated YAML (and JSON, which is YAML too) */

static const char cfg_seed_yaml[] =
    "log: {level: info}\n"
    "kafka:\n"
    "  brokers: \"127.0.0.1:9092\"\n"
    "  partitions: 6\n"
    "  topics: {requests: chatops.requests}\n"
    "redis: {host: 127.0.0.1, port: 6379, prefix: \"chatops:\"}\n"
    "limits: {max_body: 64k, max_text: 4000, max_args: 32}\n"
    "slack:\n"
    "  enabled: true\n"
    "  signing_secret: \"${CQT_FZ_SLACK}\"\n"
    "gitlab: {base_url: \"http://127.0.0.1:1\", webhook_token: \"${CQT_FZ_GL}\"}\n"
    "secrets:\n"
    "  trig: \"${CQT_FZ_TRIG}\"\n"
    "people:\n"
    "  alice: {gitlab_login: alice, slack: [U1], roles: [sre]}\n"
    "channels:\n"
    "  ops: {platform: slack, id: C1}\n" COMMANDS_YAML "policy:\n"
    "  - name: sre\n"
    "    roles: [sre]\n"
    "    commands: [\"*\"]\n"
    "    channels: [ops]\n"
    "  - name: deploy-staging\n"
    "    people: [alice]\n"
    "    commands: [deploy]\n"
    "    args: {env: [staging]}\n";

static const char cfg_seed_json[] =
    "{\"kafka\": {\"brokers\": \"127.0.0.1:9092\"}, \"limits\": {\"max_text\": 100},\n"
    " \"slack\": {\"enabled\": true, \"signing_secret\": \"${CQT_FZ_SLACK}\"},\n"
    " \"secrets\": {\"trig\": \"${CQT_FZ_TRIG}\"},\n"
    " \"commands\": {\"lb weight\": {\"mode\": \"trigger_and_wait\", \"args\": [\n"
    "   {\"name\": \"percent\", \"type\": \"int\", \"min\": 0, \"max\": 100}],\n"
    "   \"pipeline\": {\"project\": \"1\", \"ref\": \"main\", \"trigger_token\": \"trig\"}}}}\n";

static void fuzz_config(size_t iters) {
    const char *seeds[2] = {cfg_seed_yaml, cfg_seed_json};
    struct cq_err err = {0};
    /* Both seeds are valid: the mutations start from a config the loader accepts. */
    for (int i = 0; i < 2; i++) {
        struct cq_config *c = cq_config_load_string("fuzz.yaml", seeds[i], strlen(seeds[i]), &err);
        if (!c) fprintf(stderr, "  seed %d: %s\n", i, err.msg);
        CHECK(c != NULL);
        cq_config_free(c);
    }
    struct buf b = {0};
    for (size_t it = 0; it < iters; it++) {
        begin_iter("config", 7, it);
        size_t s = one_in(4), o = below(2);
        buf_set(&b, seeds[s], strlen(seeds[s]));
        mutate(&b, seeds[o], strlen(seeds[o]), 2048);
        cq_err_clear(&err);
        struct cq_config *c = cq_config_load_string("fuzz.yaml", b.p, b.len, &err);
        if (!c) {
            g_note = err.msg;
            /* Errors are expected; an empty or secret-bearing message is not. */
            FCHECK(err.code != CQ_OK);
            FCHECK(err.msg[0] != '\0');
            /* One line even when the YAML's keys or values carry "\n"/"\r" (found by this
             * test: keys and template names were echoed raw; cq_err_set now replaces control
             * bytes). */
            FCHECK(one_line(err.msg));
            FCHECK(strncmp(err.msg, "fuzz.yaml", 9) == 0);
            FCHECK(strstr(err.msg, SLACK_SECRET) == NULL && strstr(err.msg, GL_TOKEN) == NULL &&
                   strstr(err.msg, TRIG_TOKEN) == NULL);
        } else {
            g_reach.ok++;
            FCHECK(c->kafka.brokers != NULL && c->kafka.brokers[0] != '\0');
            cq_config_free(c);
        }
    }
    buf_free(&b);
}

/* ------------------------------------------------------------------------------------------ */

static size_t env_size(const char *name, size_t def) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 0);
    if (*end) cqtest_fatal("%s: not a number: %s", name, v);
    return (size_t)n;
}

/* Which reach counter must be non-zero after a target's run: the deep path it exists for. */
enum deep { DEEP_REQUEST, DEEP_PIPELINE, DEEP_OK };

struct target {
    const char *name;
    void (*fn)(size_t iters);
    unsigned share; /* percent of the total iterations */
    enum deep deep;
};

int main(void) {
    setenv("CQT_FZ_SLACK", SLACK_SECRET, 1);
    setenv("CQT_FZ_VT", FS_TOKEN, 1);
    setenv("CQT_FZ_EK", FS_KEY, 1);
    setenv("CQT_FZ_GL", GL_TOKEN, 1);
    setenv("CQT_FZ_TRIG", TRIG_TOKEN, 1);
    size_t total = env_size("CQT_FUZZ_ITERS", FUZZ_DEFAULT_ITERS);
    g_seed = (uint64_t)env_size("CQT_FUZZ_SEED", (size_t)FUZZ_DEFAULT_SEED);
    printf("fuzz_inputs: seed=0x%016llx iterations=%zu (CQT_FUZZ_SEED, CQT_FUZZ_ITERS)\n",
           (unsigned long long)g_seed, total);
    cfg = load(main_yaml);
    enc_cfg = load(enc_yaml);

    static const struct target targets[] = {
        {"slack_command", fuzz_slack_command, 18, DEEP_REQUEST},
        {"slack_event", fuzz_slack_event, 12, DEEP_REQUEST},
        {"feishu_event", fuzz_feishu, 14, DEEP_REQUEST},
        {"gitlab_hook", fuzz_gitlab, 6, DEEP_PIPELINE},
        {"envelope", fuzz_envelope, 20, DEEP_OK},
        {"worker_args", fuzz_args, 20, DEEP_OK},
        {"config", fuzz_config, 10, DEEP_OK},
    };
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        const struct target *t = &targets[i];
        size_t n = total * t->share / 100;
        int before = cqtest_failures;
        memset(&g_reach, 0, sizeof(g_reach));
        clock_t t0 = clock();
        t->fn(n);
        double ms = (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC;
        const struct reach *r = &g_reach;
        /* Too few iterations prove nothing about reach (e.g. CQT_FUZZ_ITERS=10 for a smoke). */
        if (n >= 500) {
            g_target = t->name;
            g_iter = n;
            g_in = NULL;
            FCHECK(t->deep != DEEP_REQUEST || (r->request > 0 && r->reject400 > 0));
            FCHECK(t->deep != DEEP_PIPELINE || (r->pipeline > 0 && r->reject400 > 0));
            FCHECK(t->deep != DEEP_OK || r->ok > 0);
        }
        printf("%s %s (%zu iterations, %.0f ms; request=%zu reply=%zu reject400=%zu "
               "reject401=%zu reject_other=%zu pipeline=%zu ok=%zu)\n",
               cqtest_failures == before ? "ok  " : "FAIL", t->name, n, ms, r->request, r->reply,
               r->reject400, r->reject401, r->reject_other, r->pipeline, r->ok);
        fflush(stdout);
    }
    cq_config_free(enc_cfg);
    cq_config_free(cfg);
    return cqtest_done();
}
