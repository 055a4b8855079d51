/* fuzz_common: what the libFuzzer targets in tests/fuzz share: the test configs (loaded once,
 * kept for the life of the process), the secrets they sign with, and the contract checks
 * every ingress verdict must pass. A violated contract prints why and abort()s, so libFuzzer
 * and the gcc replay driver (replay_main.c) both report it as a crash. */
#ifndef CQ_FUZZ_COMMON_H
#define CQ_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ingress.h"

/* Secrets of the fuzz configs (set as environment variables before the first load). */
#define FZ_SLACK_SECRET "fz-slack-signing-s3cret"
#define FZ_FS_TOKEN "fz-vtok"
#define FZ_FS_KEY "fz-encrypt-key"
#define FZ_GL_TOKEN "fz-gl-tok"
#define FZ_TRIG_TOKEN "fz-trigger-s3cret"

#define FZ_T0 1700000000LL /* the clock every signed Slack input uses */
#define FZ_T0_STR "1700000000"
#define FZ_MAX_TEXT 200 /* limits.max_text of the ingress config */
#define FZ_MAX_ARGS 8   /* limits.max_args */
#define FZ_MAX_ARG_LEN 64

/* The libFuzzer entry point every target defines (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with file:line and the failed condition when cond is false. */
#define FZ_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) fz_fail(__FILE__, __LINE__, #cond);                                           \
    } while (0)

void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* The main config (Slack, Feishu without encryption, GitLab, the worker's commands) and the
 * Feishu config with an encrypt_key. Loaded on first call; borrowed; never freed (still
 * reachable, so LeakSanitizer does not count it). Aborts when a config does not load. */
const struct cq_config *fz_config_main(void);
const struct cq_config *fz_config_encrypted(void);
/* The YAML of the main config, e.g. as a seed for the config target. */
extern const char fz_main_yaml[];

/* A NUL-terminated copy of data (as the HTTP server hands a body to the platform code).
 * Aborts on ENOMEM (a fuzz harness has no better answer). Caller frees. */
char *fz_dup(const void *data, size_t size);

/* No CR or LF in s (NULL is not one line). */
bool fz_one_line(const char *s);

/* The contract of every ingress verdict: a known kind; REJECT with a 4xx/5xx status and a
 * non-empty one-line reason; REPLY 2xx with a body and content type; REQUEST whose body is
 * the encoded envelope of req (decodes back to equal fields, platform as given, non-empty
 * command and user, dedupe_key "<platform>:...", text within FZ_MAX_TEXT code points);
 * PIPELINE with a "<project>:<pipeline>" key of positive ids. */
void fz_check_verdict(const struct ing_verdict *v, const char *platform);

#endif
