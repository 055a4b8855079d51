/* fuzz_config: libFuzzer target for the config loader (cq_config_load_string) on hostile
 * YAML (JSON is YAML too). Contract: a rejected config gets a non-empty one-line message that
 * starts with the config's name and never shows a secret value (one of the ${ENV} references
 * resolved, unless the YAML spelled it out itself); an accepted one has brokers and usable
 * limits, and loading the same bytes again gives the same answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

/* The values the configs' ${ENV} references resolve to. */
static const char *const secrets[] = {FZ_SLACK_SECRET, FZ_FS_TOKEN, FZ_FS_KEY, FZ_GL_TOKEN,
                                      FZ_TRIG_TOKEN};

/* msg shows a secret value the YAML did not itself contain (a message may quote the YAML,
 * e.g. an unknown key, and the fuzzer does learn the values from the comparisons here). */
static bool leaks(const char *msg, const char *secret, const char *yaml, size_t size) {
    size_t n = strlen(secret);
    if (!strstr(msg, secret)) return false;
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(yaml + i, secret, n) == 0) return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)fz_config_main(); /* sets the secrets' environment variables */
    char *yaml = fz_dup(data, size);
    struct cq_err err = {0};
    struct cq_config *c = cq_config_load_string("fuzz.yaml", yaml, size, &err);
    if (getenv("CQ_FUZZ_VERBOSE")) fprintf(stderr, "  config: %s\n", c ? "loaded" : err.msg);
    if (!c) {
        FZ_ASSERT(err.code != CQ_OK);
        FZ_ASSERT(err.msg[0] != '\0' && fz_one_line(err.msg));
        FZ_ASSERT(strncmp(err.msg, "fuzz.yaml", 9) == 0);
        for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
            FZ_ASSERT(!leaks(err.msg, secrets[i], yaml, size));
    } else {
        FZ_ASSERT(c->kafka.brokers != NULL && c->kafka.brokers[0] != '\0');
        FZ_ASSERT(c->limits.max_text > 0 && c->limits.replay_window_s > 0);
        struct cq_err err2 = {0};
        struct cq_config *again = cq_config_load_string("fuzz.yaml", yaml, size, &err2);
        FZ_ASSERT(again != NULL);
        cq_config_free(again);
        cq_config_free(c);
    }
    free(yaml);
    return 0;
}
