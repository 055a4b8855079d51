/* fuzz_platforms: the config the issue-18 platform targets (fuzz_dingtalk.c, fuzz_mattermost.c,
 * fuzz_discord.c, fuzz_webex.c) share: all four platforms enabled with known secrets and the
 * Discord key of RFC 8032 test 1, the main config's commands. Loaded once, never freed. */
#ifndef CQ_FUZZ_PLATFORMS_H
#define CQ_FUZZ_PLATFORMS_H

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define FZ_DT_SECRET "fz-dingtalk-s3cret"
#define FZ_MM_TOKEN "fz-mm-token"
#define FZ_WX_SECRET "fz-webex-s3cret"
#define FZ_DC_SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define FZ_DC_PUB "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

static inline const struct cq_config *fz_config_platforms(void) {
    static struct cq_config *cfg;
    if (cfg) return cfg;
    static const char more[] =
        "dingtalk: {enabled: true, app_secret: \"${CQT_FZ_DT}\"}\n"
        "mattermost: {enabled: true, tokens: {eng: \"${CQT_FZ_MM}\"}}\n"
        "discord: {enabled: true, public_key: " FZ_DC_PUB ", application_id: \"42\"}\n"
        "webex: {enabled: true, webhook_secret: \"${CQT_FZ_WX}\", bot_person_id: p-bot,\n"
        "  bot_email: bot@webex.bot}\n";
    struct cq_err err = {0};
    fz_config_main(); /* sets the main config's variables */
    setenv("CQT_FZ_DT", FZ_DT_SECRET, 1);
    setenv("CQT_FZ_MM", FZ_MM_TOKEN, 1);
    setenv("CQT_FZ_WX", FZ_WX_SECRET, 1);
    size_t n = strlen(fz_main_yaml) + sizeof(more);
    char *yaml = malloc(n);
    if (!yaml) abort();
    memcpy(yaml, fz_main_yaml, strlen(fz_main_yaml));
    memcpy(yaml + strlen(fz_main_yaml), more, sizeof(more));
    cfg = cq_config_load_string("fuzz-platforms.yaml", yaml, strlen(yaml), &err);
    free(yaml);
    if (!cfg) fz_fail(__FILE__, __LINE__, err.msg);
    return cfg;
}

#endif
