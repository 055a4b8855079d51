/* platform_util: small pieces the issue-18 platform modules (dingtalk.c, mattermost.c,
 * discord.c, webex.c) share: the dedupe key and platform name, and RFC 3339 times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingress.h"

bool ing_set_identity(struct cq_request *r, const char *platform, const char *id,
                      struct ing_verdict *out) {
    size_t n = strlen(platform) + strlen(id) + 2;
    r->platform = strdup(platform);
    r->dedupe_key = malloc(n);
    if (!r->platform || !r->dedupe_key) {
        ing_reject(out, 500, "out of memory", NULL);
        return false;
    }
    snprintf(r->dedupe_key, n, "%s:%s", platform, id);
    return true;
}

void ing_rfc3339_ms(long long ms, char out[32]) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}
