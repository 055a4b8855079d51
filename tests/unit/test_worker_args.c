/* Unit tests for worker/args: tokenizer quoting and limits, command resolution by the
 * longest name, binding positional and --flag arguments, and every rule's reason. */
#include <stdlib.h>

#include "args.h"
#include "cqtest.h"
#include "test_worker_fixture.h"

/* Runs tokenize+resolve+bind on "word text"; returns "ok:<render>" or "err:<reason>". */
static char result[512];
static const char *run(const char *word, const char *text) {
    struct w_argv av = {0};
    struct w_bound_args b = {0};
    struct cq_err err = {0};
    size_t used = 0;
    if (w_args_tokenize(text, fx_cfg.limits.max_args, fx_cfg.limits.max_arg_len, &av, &err) !=
        CQ_OK) {
        snprintf(result, sizeof(result), "err:%s", err.msg);
        return result;
    }
    const struct cq_command *c = w_args_resolve(&fx_cfg, word, &av, &used);
    if (!c) {
        snprintf(result, sizeof(result), "err:no command");
    } else if (w_args_bind(c, &av, used, fx_cfg.limits.max_arg_len, &b, &err) != CQ_OK) {
        snprintf(result, sizeof(result), "err:%s", err.msg);
    } else {
        char *r = w_bound_render(&b);
        snprintf(result, sizeof(result), "ok:%s:%s", c->name, r ? r : "");
        free(r);
    }
    w_bound_args_clear(&b);
    w_argv_clear(&av);
    return result;
}

static void tok_expect(const char *text, int n, const char *const *want) {
    struct w_argv av = {0};
    struct cq_err err = {0};
    CHECK(w_args_tokenize(text, 0, 0, &av, &err) == CQ_OK);
    CHECK(av.n == (size_t)n);
    for (int i = 0; i < n && (size_t)i < av.n; i++)
        CHECK_STR(av.v[i], want[i]);
    w_argv_clear(&av);
}

TEST(tokenizer_quoting) {
    tok_expect("a  b\tc", 3, (const char *[]){"a", "b", "c"});
    tok_expect("'hello world' x", 2, (const char *[]){"hello world", "x"});
    tok_expect("\"say \\\"hi\\\"\" 'it''s'", 2, (const char *[]){"say \"hi\"", "its"});
    tok_expect("a\\ b c\\\\d", 2, (const char *[]){"a b", "c\\d"});
    tok_expect("'' \"\" x", 3, (const char *[]){"", "", "x"});
    tok_expect("pre'mid dle'post", 1, (const char *[]){"premid dlepost"});
    tok_expect("'a\\b'", 1, (const char *[]){"a\\b"});
    tok_expect("   ", 0, NULL);
    tok_expect("\"$HOME `x`\"", 1, (const char *[]){"$HOME `x`"});
}

TEST(tokenizer_errors_and_limits) {
    struct w_argv av = {0};
    struct cq_err err = {0};
    CHECK(w_args_tokenize("a 'b c", 0, 0, &av, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "unbalanced single quote");
    CHECK(av.n == 0 && av.v == NULL);
    CHECK(w_args_tokenize("a \"b c", 0, 0, &av, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "unbalanced double quote");
    CHECK(w_args_tokenize("a b\\", 0, 0, &av, &err) == CQ_EPARSE);
    CHECK_STR(err.msg, "trailing backslash");
    CHECK(w_args_tokenize("1 2 3 4", 3, 0, &av, &err) == CQ_ETOOBIG);
    CHECK_STR(err.msg, "too many arguments (at most 3)");
    CHECK(w_args_tokenize("1 2 3", 3, 0, &av, &err) == CQ_OK);
    w_argv_clear(&av);
    CHECK(w_args_tokenize("ok 'abcdefghijk'", 0, 10, &av, &err) == CQ_ETOOBIG);
    CHECK_STR(err.msg, "argument 2 is longer than 10 characters");
}

/* {{chat.input}} / CHAT_INPUT: the text after the command's full name, quoting kept. */
TEST(arguments_text_after_the_name) {
    CHECK_STR(w_args_rest("weight blue 30", 1), "blue 30");
    CHECK_STR(w_args_rest("  weight \t blue  30 ", 1), "blue  30 ");
    CHECK_STR(w_args_rest("web production", 0), "web production");
    CHECK_STR(w_args_rest("'weight' \"a b\" c", 1), "\"a b\" c");
    CHECK_STR(w_args_rest("\"we\\\"ight\" x", 1), "x");
    CHECK_STR(w_args_rest("we\\ ight x", 1), "x");
    CHECK_STR(w_args_rest("a b c", 2), "c");
    CHECK_STR(w_args_rest("weight", 1), "");
    CHECK_STR(w_args_rest(NULL, 1), "");
}

TEST(resolve_longest_prefix) {
    CHECK_STR(run("flag", "get new_ui"), "ok:flag get:name=new_ui");
    CHECK_STR(run("flag", "set new_ui on"), "ok:flag set:name=new_ui value=on");
    CHECK_STR(run("lb", "weight blue 30"), "ok:lb weight:pool=blue percent=30");
    CHECK_STR(run("deploy", "web production"), "ok:deploy:service=web env=production");
    CHECK_STR(run("flag", "unset x"), "err:no command");
    CHECK_STR(run("nope", ""), "err:no command");
    struct w_argv av = {0};
    size_t used = 9;
    CHECK(w_args_resolve(&fx_cfg, "flag", &av, &used) == NULL); /* "flag" alone is no command */
}

TEST(binding_flags_defaults) {
    CHECK_STR(run("deploy", "web"), "ok:deploy:service=web env=staging");
    CHECK_STR(run("deploy", "web --tag v1.2"), "ok:deploy:service=web env=staging tag=v1.2");
    CHECK_STR(run("deploy", "--tag=v2 web production"),
              "ok:deploy:service=web env=production tag=v2");
    CHECK_STR(run("deploy", "web --tag"), "err:--tag needs a value");
    CHECK_STR(run("deploy", "web --color red"), "err:unknown option --color");
    CHECK_STR(run("deploy", "web --tag a --tag b"), "err:tag: given more than once");
    CHECK_STR(run("deploy", "web staging extra"), "err:unexpected argument extra");
    CHECK_STR(run("echo", "-- --n"), "ok:echo:text=--n");
    CHECK_STR(run("echo", "'two words' --n 3"), "ok:echo:text=two words n=3");
}

TEST(every_rule_rejects_with_reason) {
    CHECK_STR(run("lb", "weight blue 130"), "err:percent: 130 is above the maximum 100");
    CHECK_STR(run("lb", "weight blue -1"), "err:percent: -1 is below the minimum 0");
    CHECK_STR(run("lb", "weight blue 3x"), "err:percent: 3x is not an integer");
    CHECK_STR(run("lb", "weight blue 99999999999999999999"),
              "err:percent: 99999999999999999999 is above the maximum 100");
    CHECK_STR(run("lb", "weight blue -99999999999999999999"),
              "err:percent: -99999999999999999999 is below the minimum 0");
    CHECK_STR(run("lb", "weight red 30"), "err:pool: red is not one of blue, green");
    CHECK_STR(run("lb", "weight blue"), "err:percent: missing (required)");
    CHECK_STR(run("flag", "get New-UI"),
              "err:name: New-UI does not match the pattern [a-z][a-z0-9_]*");
    /* the pattern is anchored: a valid prefix does not pass */
    CHECK_STR(run("flag", "get ok;rm"),
              "err:name: ok;rm does not match the pattern [a-z][a-z0-9_]*");
    CHECK_STR(run("deploy", "web --tag 0123456789abc"),
              "err:tag: longer than the maximum 12 characters (13)");
    CHECK_STR(run("echo", "hi --n 9"), "err:n: 9 is above the maximum 5");
    /* the global max_arg_len applies when a spec has none */
    CHECK_STR(run("echo", "0123456789012345678901234567890123456789012345678901234567890123456789"),
              "err:argument 1 is longer than 64 characters");
    /* control characters never reach a reason line raw */
    CHECK_STR(run("lb", "weight \"bl\nue\" 1"), "err:pool: bl?ue is not one of blue, green");
}

TEST(usage_lines) {
    char buf[200];
    CHECK_STR(w_args_usage(&fx_commands[2], buf, sizeof(buf)), "usage: lb weight POOL PERCENT");
    CHECK_STR(w_args_usage(&fx_commands[3], buf, sizeof(buf)),
              "usage: deploy SERVICE [ENV] [--tag TAG]");
    /* a cut is marked with "…" and never splits a character */
    CHECK_STR(w_args_usage(&fx_commands[3], buf, 12), "usage: d\xe2\x80\xa6");
    struct cq_command c = fx_commands[3];
    c.usage = "d\xc3\xa9ploie SERVICE";                         /* "déploie" */
    CHECK_STR(w_args_usage(&c, buf, 10), "usage:\xe2\x80\xa6"); /* snprintf split the "é" */
    CHECK_STR(w_args_usage(&c, buf, 13), "usage: d\xe2\x80\xa6");
    CHECK_STR(w_args_usage(&c, buf, 14), "usage: d\xc3\xa9\xe2\x80\xa6");
    CHECK_STR(w_args_usage(&c, buf, 15), "usage: d\xc3\xa9p\xe2\x80\xa6");
}

int main(void) {
    printf("worker/args: tokenizer quoting/errors/limits, longest-prefix resolution, "
           "flag/positional binding, enum/regex/int/max_len/required reasons, usage\n");
    RUN(tokenizer_quoting);
    RUN(tokenizer_errors_and_limits);
    RUN(arguments_text_after_the_name);
    RUN(resolve_longest_prefix);
    RUN(binding_flags_defaults);
    RUN(every_rule_rejects_with_reason);
    RUN(usage_lines);
    return cqtest_done();
}
