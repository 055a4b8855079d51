/* Unit tests for notifier/platforms.c: the platform table, the Markdown a result becomes and
 * its cut to a platform's limit (bytes or characters, on a character, with a visible note),
 * the reply route's expiry, and the shared HTTP answer classes. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "platforms.h"
#include "utf8.h"

static size_t chars(const char *s) {
    return cq_utf8_len(s, strlen(s));
}

TEST(table) {
    CHECK(ntf_platform_find("dingtalk") == &ntf_dingtalk_platform);
    CHECK(ntf_platform_find("mattermost") == &ntf_mattermost_platform);
    CHECK(ntf_platform_find("discord") == &ntf_discord_platform);
    CHECK(ntf_platform_find("webex") == &ntf_webex_platform);
    CHECK(ntf_platform_find("slack") != NULL && ntf_platform_find("slack")->build == NULL);
    CHECK(ntf_platform_find("feishu") != NULL);
    CHECK(ntf_platform_find("teams") == NULL);
    CHECK(ntf_platform_find(NULL) == NULL);
}

TEST(markdown_and_cut) {
    struct cq_result r = {.request_id = "r",
                          .step = "final",
                          .status = "ok",
                          .platform = "webex",
                          .command = "lb weight blue 30",
                          .text = "blue at 30%"};
    r.pipeline.id = 7;
    r.pipeline.web_url = "https://gl/p/7";
    char *m = ntf_plat_markdown(&r, 0, 0);
    CHECK(m &&
          strcmp(
              m,
              "**lb weight blue 30**: done\n\nblue at 30%\n\n[Open pipeline #7](https://gl/p/7)") ==
              0);
    free(m);
    /* 2500 two-byte characters: cut to 2000 characters */
    char *big = malloc(5001);
    for (int i = 0; i < 2500; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2);
    big[5000] = '\0';
    r.text = big;
    m = ntf_plat_markdown(&r, 0, 2000);
    CHECK(m && chars(m) <= 2000 && chars(m) > 1900);
    CHECK(m && cq_utf8_valid(m, strlen(m)) && strstr(m, "(cut: ") != NULL);
    free(m);
    m = ntf_plat_markdown(&r, 3001, 0);
    CHECK(m && strlen(m) <= 3001 && cq_utf8_valid(m, strlen(m)) && strstr(m, "(cut: "));
    free(m);
    m = ntf_plat_markdown(&r, 0, 16383); /* fits: untouched */
    CHECK(m && !strstr(m, "(cut: "));
    free(m);
    free(big);
}

TEST(expiry) {
    struct cq_result r = {0};
    CHECK(!ntf_plat_expired(&r));
    r.reply.expires_at = "2001-01-01T00:00:00Z";
    CHECK(ntf_plat_expired(&r));
    r.reply.expires_at = "2999-01-01T00:00:00Z";
    CHECK(!ntf_plat_expired(&r));
    r.reply.expires_at = "soon";
    CHECK(ntf_plat_expired(&r)); /* unreadable: do not trust the webhook */
}

TEST(http_class) {
    char why[128];
    struct ntf_attempt_answer a = {CQ_OK, 201, "{}"};
    CHECK(ntf_plat_http_class(&a, why, sizeof why) == NTF_OUT_DELIVERED);
    a.status = 429;
    CHECK(ntf_plat_http_class(&a, why, sizeof why) == NTF_OUT_RETRY);
    a.status = 503;
    CHECK(ntf_plat_http_class(&a, why, sizeof why) == NTF_OUT_RETRY);
    a.status = 404;
    a.body = "{\"message\":\"Unknown Channel\",\"code\":10003}";
    CHECK(ntf_plat_http_class(&a, why, sizeof why) == NTF_OUT_PERMANENT);
    CHECK(strcmp(why, "http_404: Unknown Channel") == 0);
    a.rc = CQ_ETIMEOUT;
    CHECK(ntf_plat_http_class(&a, why, sizeof why) == NTF_OUT_RETRY);
}

int main(void) {
    printf("notifier platforms: table, Markdown and its cut, expiry, answer classes\n");
    RUN(table);
    RUN(markdown_and_cut);
    RUN(expiry);
    RUN(http_class);
    return cqtest_done();
}
