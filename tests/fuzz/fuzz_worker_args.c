/* fuzz_worker_args: libFuzzer target for the worker's argument handling (worker/args.h): the
 * input is the chat text as the worker sees it (up to the first NUL), split into the command
 * word and the rest like the ingress does, then tokenized, resolved against the fuzz config's
 * commands and bound. Contract: the limits hold (tokens, lengths), errors are one line and
 * leave nothing behind, limits only ever turn a success into CQ_ETOOBIG (the same words
 * otherwise), and bound values satisfy their specs (required, max_len, int range, enum); for
 * text that a request envelope can carry (valid UTF-8), every reason fits a result envelope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cqtest_contracts.h"
#include "envelope.h"
#include "fuzz_common.h"

/* text fits in a result envelope (valid UTF-8, no NUL): what the worker does with a reason. */
static bool encodable(const char *text) {
    struct cq_result r;
    struct cq_err err = {0};
    memset(&r, 0, sizeof(r));
    r.request_id = (char *)"r1";
    r.step = (char *)"final";
    r.status = (char *)"invalid";
    r.platform = (char *)"slack";
    r.text = (char *)text;
    char *json = cq_result_encode(&r, &err);
    free(json);
    return json != NULL;
}

/* CQ_FUZZ_VERBOSE=1 prints what each input reached. */
static bool verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("CQ_FUZZ_VERBOSE") != NULL;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct cq_config *cfg = fz_config_main();
    char *text = fz_dup(data, size);
    char *word = NULL, *rest = NULL;
    struct w_argv av = {0}, all = {0};
    struct cq_err err = {0};
    if (ing_split(text, &word, &rest) != CQ_OK) abort();
    /* What reaches the worker came in a request envelope: valid UTF-8. Reasons about such
     * text must go back out in a result envelope (chat gets the reason, not silence). */
    bool text_ok = encodable(text);

    enum cq_rc rc_all = w_args_tokenize(rest, 0, 0, &all, &err);
    cq_err_clear(&err);
    enum cq_rc rc = w_args_tokenize(rest, FZ_MAX_ARGS, FZ_MAX_ARG_LEN, &av, &err);
    if (verbose()) fprintf(stderr, "  tokenize: %s\n", rc ? err.msg : "ok");
    if (rc != CQ_OK) {
        FZ_ASSERT(rc == CQ_EPARSE || rc == CQ_ETOOBIG);
        FZ_ASSERT(err.msg[0] != '\0' && fz_one_line(err.msg));
        FZ_ASSERT(!text_ok || encodable(err.msg));
        FZ_ASSERT(av.n == 0 && av.v == NULL);
        /* a syntax error does not depend on the limits; a limit only on them */
        if (rc == CQ_EPARSE) FZ_ASSERT(rc_all == CQ_EPARSE);
        if (rc == CQ_ETOOBIG) FZ_ASSERT(rc_all == CQ_OK || rc_all == CQ_EPARSE);
        goto out;
    }
    FZ_ASSERT(rc_all == CQ_OK && all.n == av.n);
    FZ_ASSERT(av.n <= FZ_MAX_ARGS);
    for (size_t i = 0; i < av.n; i++) {
        FZ_ASSERT(av.v[i] && strlen(av.v[i]) <= FZ_MAX_ARG_LEN);
        FZ_ASSERT(strcmp(av.v[i], all.v[i]) == 0);
    }
    size_t used = 0;
    const struct cq_command *c = w_args_resolve(cfg, word, &av, &used);
    if (!c) goto out;
    FZ_ASSERT(used <= av.n);
    struct w_bound_args bd = {0};
    cq_err_clear(&err);
    rc = w_args_bind(c, &av, used, FZ_MAX_ARG_LEN, &bd, &err);
    if (verbose()) fprintf(stderr, "  bind %s: %s\n", c->name, rc ? err.msg : "ok");
    if (rc == CQ_OK) {
        const char *why = cqt_bound_violation(&bd, c, FZ_MAX_ARG_LEN);
        if (why) fz_fail(__FILE__, __LINE__, why);
        char *r = w_bound_render(&bd);
        FZ_ASSERT(r != NULL);
        free(r);
    } else {
        FZ_ASSERT(rc == CQ_EINVAL);
        /* reasons go to chat as one line: control characters never raw */
        FZ_ASSERT(err.msg[0] != '\0' && fz_one_line(err.msg));
        FZ_ASSERT(!text_ok || encodable(err.msg));
    }
    char usage[200];
    FZ_ASSERT(strncmp(w_args_usage(c, usage, sizeof(usage)), "usage: ", 7) == 0);
    w_bound_args_clear(&bd);
out:
    w_argv_clear(&av);
    w_argv_clear(&all);
    free(word);
    free(rest);
    free(text);
    return 0;
}
