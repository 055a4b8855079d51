/* backoff: when to try a delivery again. Exponential backoff with jitter for transient
 * failures, the platforms' own 429 hints (Slack Retry-After, Feishu x-ogw-ratelimit-reset),
 * and a per-channel pacer so a burst of results for one chat is spread out (Slack ~1/s per
 * channel, Feishu 5/s per group) instead of getting the bot throttled. Pure, no I/O. */
#ifndef CQ_BACKOFF_H
#define CQ_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

/* Delay before attempt number `attempt` (1 = the first retry): d = min(max_ms,
 * base_ms * 2^(attempt-1)), returned as d/2 + rnd % (d/2 + 1) ("equal jitter": never less
 * than half the step, so copies do not synchronise, and never more than max_ms). */
uint64_t ntf_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t rnd);

/* Parses a 429 hint: delta-seconds ("2", "1.5") or, for Retry-After, an HTTP-date
 * relative to now_unix. Returns milliseconds (capped at cap_ms), or -1 when absent/bad. */
int64_t ntf_retry_after_ms(const char *value, int64_t now_unix, int64_t cap_ms);

/* Per-channel pacing. Each key (e.g. "slack:C123") may send once per interval_ms; entries
 * idle for a minute are dropped so the table stays bounded by active channels. */
struct ntf_pacer;

/* Returns a new pacer or NULL on ENOMEM. interval_ms <= 0 means no pacing. */
struct ntf_pacer *ntf_pacer_new(int interval_ms);
void ntf_pacer_free(struct ntf_pacer *p);

/* Reserves the next send slot of key at or after now_ms and returns its time (== now_ms
 * when the channel is free). On ENOMEM returns now_ms (pacing is best effort). */
uint64_t ntf_pacer_reserve(struct ntf_pacer *p, const char *key, uint64_t now_ms);

/* The platform told us to hold off the channel until until_ms (429): later reservations
 * start no earlier than that. */
void ntf_pacer_hold(struct ntf_pacer *p, const char *key, uint64_t until_ms);

/* Keys currently tracked (tests). */
size_t ntf_pacer_size(const struct ntf_pacer *p);

#endif
