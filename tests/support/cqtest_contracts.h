/* cqtest_contracts: the contracts the mutation smoke test (tests/unit/test_fuzz_inputs.c) and
 * the libFuzzer targets (tests/fuzz/) assert on every parser result, written once. Each
 * returns NULL when the result keeps its contract, else the rule it broke (one line). */
#ifndef CQTEST_CONTRACTS_H
#define CQTEST_CONTRACTS_H

#include <stddef.h>

#include "args.h"
#include "ingress.h"

/* An ingress verdict: a known kind; REJECT with a 4xx/5xx status and a non-empty one-line
 * reason; REPLY 2xx with a body and content type; REQUEST whose body is the encoded envelope
 * of req (valid JSON with a non-empty id, decodes back to equal fields, platform as given,
 * non-empty command and user, retry_num in range, dedupe_key "<platform>:...", command and
 * text within max_text code points); PIPELINE with a "<project>:<pipeline>" key of positive
 * ids. */
const char *cqt_verdict_violation(const struct ing_verdict *v, const char *platform,
                                  size_t max_text);

/* Bound arguments of c: one value per spec, required ones present, each within its max_len
 * (default_max_len when the spec has none), ints in range, enum values from the list. */
const char *cqt_bound_violation(const struct w_bound_args *bd, const struct cq_command *c,
                                int default_max_len);

#endif
