/* clock: the notifier's wall-clock helpers (clock.c). */
#ifndef NTF_CLOCK_H
#define NTF_CLOCK_H

/* Now (CLOCK_REALTIME) in Unix milliseconds. */
long long ntf_wall_ms(void);

/* Parses an RFC 3339 timestamp ("2026-01-02T03:04:05.678Z", offsets allowed) into Unix
 * milliseconds; -1 when malformed. */
long long ntf_rfc3339_ms(const char *s);

#endif
