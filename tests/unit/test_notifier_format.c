/* Unit tests for notifier/slack_format.c and notifier/feishu_format.c: Block Kit layout,
 * splitting within Slack's limits (code fences balanced, UTF-8 and entities intact, a
 * visible cut note), Feishu text/card content as a JSON string, and the dedupe uuid. */
#include <cjson/cJSON.h>

#include "cqtest.h"
#include "feishu_format.h"
#include "slack_format.h"
#include "utf8.h"

static struct cq_result sample(char *text) {
    struct cq_result r = {0};
    r.request_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    r.step = "final";
    r.status = "ok";
    r.platform = "slack";
    r.text = text;
    r.command = "deploy web production";
    r.user_name = "alice";
    return r;
}

static int fences_balanced(const char *s) {
    int k = 0;
    for (const char *p = strstr(s, "```"); p; p = strstr(p + 3, "```"))
        k++;
    return k % 2 == 0;
}

TEST(slack_response_url_layout) {
    struct cq_result r = sample("all good <tag> & done");
    r.pipeline.id = 42;
    r.pipeline.web_url = "https://gitlab.example.com/p/-/pipelines/42";
    r.pipeline.status = "success";
    struct ntf_slack_msg_opts o = {.target = NTF_SLACK_RESPONSE_URL, .replace_original = true};
    struct cq_err err = {0};
    size_t cut = 99;
    char *body = ntf_slack_format(&r, &o, &cut, &err);
    CHECK(body != NULL);
    CHECK(cut == 0);
    cJSON *j = cJSON_Parse(body);
    CHECK(j != NULL);
    CHECK_STR(cJSON_GetObjectItem(j, "response_type")->valuestring, "in_channel");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "replace_original")));
    cJSON *blocks = cJSON_GetObjectItem(j, "blocks");
    CHECK(cJSON_GetArraySize(blocks) == 4); /* header, text, pipeline context, button */
    char *h =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 0), "text"), "text")
            ->valuestring;
    CHECK_CONTAINS(h, ":white_check_mark: *Succeeded*");
    CHECK_CONTAINS(h, "`deploy web production`");
    CHECK_CONTAINS(h, "run by alice");
    char *t =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 1), "text"), "text")
            ->valuestring;
    CHECK_STR(t, "all good &lt;tag&gt; &amp; done");
    cJSON *btn =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 3), "elements"), 0);
    CHECK_STR(cJSON_GetObjectItem(btn, "type")->valuestring, "button");
    CHECK_STR(cJSON_GetObjectItem(btn, "url")->valuestring, r.pipeline.web_url);
    CHECK_CONTAINS(cJSON_GetObjectItem(cJSON_GetObjectItem(btn, "text"), "text")->valuestring,
                   "#42");
    CHECK_CONTAINS(body, "Pipeline #42: success");
    cJSON_Delete(j);
    free(body);
}

TEST(slack_post_and_update_need_channel) {
    struct cq_result r = sample("x");
    r.status = "failed";
    struct cq_err err = {0};
    struct ntf_slack_msg_opts o = {.target = NTF_SLACK_POST_MESSAGE};
    CHECK(ntf_slack_format(&r, &o, NULL, &err) == NULL);
    CHECK(err.code == CQ_EINVAL);
    o.channel = "C1";
    o.thread_ts = "123.456";
    char *b = ntf_slack_format(&r, &o, NULL, &err);
    CHECK_CONTAINS(b, "\"channel\":\"C1\"");
    CHECK_CONTAINS(b, "\"thread_ts\":\"123.456\"");
    CHECK_CONTAINS(b, ":x: *Failed*");
    CHECK(strstr(b ? b : "", "replace_original") == NULL);
    free(b);
    o.target = NTF_SLACK_UPDATE;
    CHECK(ntf_slack_format(&r, &o, NULL, &err) == NULL);
    o.ts = "99.1";
    b = ntf_slack_format(&r, &o, NULL, &err);
    CHECK_CONTAINS(b, "\"ts\":\"99.1\"");
    free(b);
}

TEST(split_respects_limits_fences_utf8) {
    /* a log tail inside a fence, long enough for several chunks, with multibyte chars */
    size_t cap = 20000;
    char *s = malloc(cap);
    strcpy(s, "Job failed:\n```\n");
    for (int i = 0; i < 300; i++) {
        char line[80];
        snprintf(line, sizeof line, "line %03d héllo wörld — &amp; done\n", i);
        strcat(s, line);
    }
    strcat(s, "```\nend");
    size_t n = 0;
    char **ch = ntf_slack_split(s, 500, &n);
    CHECK(ch != NULL && n > 10);
    size_t total = 0;
    int bad = 0;
    for (size_t i = 0; ch && i < n; i++) {
        size_t c = cq_utf8_len(ch[i], strlen(ch[i]));
        if (c > 500 || !fences_balanced(ch[i])) bad++;
        total += c;
    }
    CHECK(bad == 0);
    CHECK(total >= cq_utf8_len(s, strlen(s)));
    CHECK(ch && strncmp(ch[1], "```\n", 4) == 0); /* continuation re-opens the fence */
    ntf_slack_chunks_free(ch);

    /* one very long line: hard split, never mid UTF-8 or mid entity */
    char *lng = malloc(5000);
    size_t p = 0;
    for (int i = 0; i < 600; i++)
        p += (size_t)sprintf(lng + p, i % 2 ? "é&amp;" : "ab");
    ch = ntf_slack_split(lng, 100, &n);
    CHECK(ch != NULL && n > 1);
    for (size_t i = 0; ch && i < n; i++) {
        size_t l = strlen(ch[i]);
        CHECK(cq_utf8_len(ch[i], l) <= 100);
        CHECK(((unsigned char)ch[i][0] & 0xC0) != 0x80);
        const char *amp = strrchr(ch[i], '&');
        CHECK(!amp || strchr(amp, ';') != NULL);
    }
    ntf_slack_chunks_free(ch);
    CHECK(ntf_slack_split("abc", 5, &n) == NULL);
    free(lng);
    free(s);
}

TEST(slack_cuts_with_note_at_block_limit) {
    size_t len = 200000;
    char *big = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        big[i] = (i % 100 == 99) ? '\n' : 'a' + (char)(i % 26);
    big[len] = '\0';
    struct cq_result r = sample(big);
    struct ntf_slack_msg_opts o = {.target = NTF_SLACK_POST_MESSAGE, .channel = "C1"};
    struct cq_err err = {0};
    size_t cut = 0;
    char *b = ntf_slack_format(&r, &o, &cut, &err);
    CHECK(b != NULL);
    cJSON *j = cJSON_Parse(b);
    cJSON *blocks = cJSON_GetObjectItem(j, "blocks");
    int nb = cJSON_GetArraySize(blocks);
    CHECK(nb <= NTF_SLACK_MAX_BLOCKS);
    size_t chars = 0;
    cJSON *blk;
    cJSON_ArrayForEach(blk, blocks) {
        cJSON *t = cJSON_GetObjectItem(blk, "text");
        if (t) {
            size_t c = cq_utf8_len(cJSON_GetObjectItem(t, "text")->valuestring,
                                   strlen(cJSON_GetObjectItem(t, "text")->valuestring));
            CHECK(c <= NTF_SLACK_SECTION_CHARS);
            chars += c;
        }
    }
    CHECK(chars <= NTF_SLACK_MESSAGE_CHARS);
    CHECK(cut > 150000 && cut < len);
    CHECK_CONTAINS(b, "Output cut");
    cJSON_Delete(j);
    free(b);

    /* custom small block limit: the note appears and the limit holds */
    struct ntf_slack_limits lim = {.section_chars = 100, .max_blocks = 6};
    o.limits = &lim;
    b = ntf_slack_format(&r, &o, &cut, &err);
    j = cJSON_Parse(b);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "blocks")) <= 6);
    CHECK_CONTAINS(b, "Output cut");
    cJSON_Delete(j);
    free(b);
    free(big);
}

TEST(slack_status_looks) {
    struct cq_result r = sample("");
    struct ntf_slack_msg_opts o = {.target = NTF_SLACK_RESPONSE_URL};
    const char *st[][3] = {{"ok", "progress", "In progress"},
                           {"ok", "ack", "Accepted"},
                           {"denied", "final", "Denied"},
                           {"timeout", "final", "Timed out"},
                           {"invalid", "final", "Invalid"}};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        r.status = (char *)st[i][0];
        r.step = (char *)st[i][1];
        r.response_type = "ephemeral";
        char *b = ntf_slack_format(&r, &o, NULL, NULL);
        CHECK_CONTAINS(b, st[i][2]);
        CHECK_CONTAINS(b, "\"response_type\":\"ephemeral\"");
        cJSON *j = cJSON_Parse(b);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "blocks")) ==
              1); /* empty text: header only */
        cJSON_Delete(j);
        free(b);
    }
}

/* A long command of 4-byte characters is cut at 200 characters with an ellipsis, never in
 * the middle of a character (the buffer once held only 127 of them). */
static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0) return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xC0) != 0x80) return false;
    }
    return true;
}

TEST(slack_long_wide_command_cut_on_a_character) {
    static const char emoji[] = "\xF0\x9F\x98\x80"; /* U+1F600 */
    char cmd[250 * 4 + 1] = "", cut[200 * 4 + 8] = "", want[sizeof cut + 2];
    for (int i = 0; i < 250; i++)
        strcat(cmd, emoji);
    for (int i = 0; i < 200; i++)
        strcat(cut, emoji);
    strcat(cut, "\xE2\x80\xA6"); /* "…" */
    snprintf(want, sizeof want, "`%s`", cut);
    struct cq_result r = sample("done");
    r.command = cmd;
    struct ntf_slack_msg_opts o = {.target = NTF_SLACK_RESPONSE_URL};
    struct cq_err err = {0};
    char *body = ntf_slack_format(&r, &o, NULL, &err);
    CHECK(body != NULL);
    cJSON *j = cJSON_Parse(body ? body : "");
    CHECK(j != NULL);
    cJSON *blocks = cJSON_GetObjectItem(j, "blocks");
    cJSON *h = cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 0), "text");
    const char *ht = cJSON_IsString(cJSON_GetObjectItem(h, "text"))
                         ? cJSON_GetObjectItem(h, "text")->valuestring
                         : "";
    CHECK_CONTAINS(ht, want);
    CHECK(utf8_valid(ht));
    cJSON *t = cJSON_GetObjectItem(j, "text");
    CHECK(cJSON_IsString(t) && utf8_valid(t->valuestring));
    CHECK(cJSON_IsString(t) && strstr(t->valuestring, cut) != NULL);
    cJSON_Delete(j);
    free(body);
}

TEST(feishu_uuid) {
    struct cq_result r = sample("x");
    char u[NTF_FEISHU_UUID_MAX + 1];
    CHECK(ntf_feishu_uuid(&r, u) == CQ_OK);
    CHECK_STR(u, "0f8fad5b-d9cb-469f-a165-70867728950e-f-0");
    r.step = "progress";
    r.seq = 12;
    CHECK(ntf_feishu_uuid(&r, u) == CQ_OK);
    CHECK_STR(u, "0f8fad5b-d9cb-469f-a165-70867728950e-p-12");
    char u2[NTF_FEISHU_UUID_MAX + 1];
    r.seq = 13;
    ntf_feishu_uuid(&r, u2);
    CHECK(strcmp(u, u2) != 0);
    r.request_id = "a-very-long-request-identifier-that-does-not-fit-in-fifty-characters";
    CHECK(ntf_feishu_uuid(&r, u) == CQ_OK);
    CHECK(strlen(u) <= 50 && strncmp(u, "h-", 2) == 0);
    ntf_feishu_uuid(&r, u2);
    CHECK_STR(u, u2); /* stable */
    r.step = NULL;
    CHECK(ntf_feishu_uuid(&r, u) == CQ_EINVAL);
}

TEST(feishu_text_and_card) {
    struct cq_result r = sample("line1\nline2 \"quoted\"");
    r.platform = "feishu";
    r.reply.message_id = "om_1";
    r.reply.chat_id = "oc_9";
    struct cq_err err = {0};
    char *b = ntf_feishu_body(&r, true, 0, &err);
    cJSON *j = cJSON_Parse(b);
    CHECK(j != NULL);
    CHECK_STR(cJSON_GetObjectItem(j, "msg_type")->valuestring, "text");
    CHECK(cJSON_GetObjectItem(j, "receive_id") == NULL);
    CHECK_STR(cJSON_GetObjectItem(j, "uuid")->valuestring,
              "0f8fad5b-d9cb-469f-a165-70867728950e-f-0");
    cJSON *content = cJSON_GetObjectItem(j, "content");
    CHECK(cJSON_IsString(content)); /* a JSON string, parsed a second time */
    cJSON *c = cJSON_Parse(content->valuestring);
    CHECK_CONTAINS(cJSON_GetObjectItem(c, "text")->valuestring,
                   "Succeeded · deploy web production");
    CHECK_CONTAINS(cJSON_GetObjectItem(c, "text")->valuestring, "line2 \"quoted\"");
    cJSON_Delete(c);
    cJSON_Delete(j);
    free(b);

    r.pipeline.id = 7;
    r.pipeline.web_url = "https://gl/p/7";
    r.pipeline.status = "failed";
    r.status = "failed";
    b = ntf_feishu_body(&r, false, 0, &err);
    j = cJSON_Parse(b);
    CHECK_STR(cJSON_GetObjectItem(j, "receive_id")->valuestring, "oc_9");
    CHECK_STR(cJSON_GetObjectItem(j, "msg_type")->valuestring, "interactive");
    c = cJSON_Parse(cJSON_GetObjectItem(j, "content")->valuestring);
    CHECK(c != NULL);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "header"), "template")->valuestring,
              "red");
    char *cs = cJSON_PrintUnformatted(c);
    CHECK_CONTAINS(cs, "\"url\":\"https://gl/p/7\"");
    CHECK_CONTAINS(cs, "Open pipeline #7");
    CHECK_CONTAINS(cs, "Run by alice");
    free(cs);
    cJSON_Delete(c);
    cJSON_Delete(j);
    free(b);

    r.reply.chat_id = NULL;
    CHECK(ntf_feishu_body(&r, false, 0, &err) == NULL);
    CHECK(err.code == CQ_EINVAL);
}

TEST(feishu_cut_utf8) {
    char t[64];
    strcpy(t, "ééééééééé"); /* 18 bytes */
    struct cq_result r = sample(t);
    const char *type = NULL;
    size_t cut = 0;
    char *c = ntf_feishu_content(&r, 7, &type, &cut, NULL);
    CHECK_STR(type, "text");
    CHECK(cut == 12); /* 7 bytes -> 3 whole characters (6 bytes) kept */
    cJSON *j = cJSON_Parse(c);
    CHECK(j != NULL); /* valid UTF-8/JSON after the cut */
    CHECK_CONTAINS(cJSON_GetObjectItem(j, "text")->valuestring,
                   "ééé\n… (output cut: 12 of 18 bytes");
    cJSON_Delete(j);
    free(c);
}

/* Feishu parses tags in text messages and lark_md (<at user_id="all"> mentions everyone):
 * what a user typed is shown, never interpreted (issue 19). */
TEST(feishu_markup_escaped) {
    struct cq_result r = sample("<at user_id=\"all\">all</at> & <b>x</b>");
    r.command = "echo <at user_id=\"all\"></at>";
    r.user_name = "<at id=all>";
    const char *type = NULL;
    char *c = ntf_feishu_content(&r, 0, &type, NULL, NULL);
    CHECK_STR(type, "text");
    cJSON *j = cJSON_Parse(c);
    const char *t = j ? cJSON_GetObjectItem(j, "text")->valuestring : "";
    CHECK(strchr(t, '<') == NULL && strchr(t, '>') == NULL);
    CHECK_CONTAINS(t, "&lt;at user_id=\"all\"&gt;all&lt;/at&gt; &amp; &lt;b&gt;x&lt;/b&gt;");
    CHECK_CONTAINS(t, "echo &lt;at user_id=\"all\"&gt;&lt;/at&gt;");
    CHECK_CONTAINS(t, "run by &lt;at id=all&gt;");
    cJSON_Delete(j);
    free(c);
    /* the card's lark_md too */
    r.pipeline.web_url = "https://gl/p/7";
    c = ntf_feishu_content(&r, 0, &type, NULL, NULL);
    CHECK_STR(type, "interactive");
    j = cJSON_Parse(c); /* elements[0] is the div with the lark_md text (plain_text is literal) */
    cJSON *md = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "elements"), 0), "text"),
        "content");
    CHECK(cJSON_IsString(md) && strchr(md->valuestring, '<') == NULL);
    CHECK_CONTAINS(cJSON_IsString(md) ? md->valuestring : "",
                   "&lt;at user_id=\"all\"&gt;all&lt;/at&gt;");
    cJSON_Delete(j);
    free(c);
    /* a cut never leaves half an entity */
    r = sample("aaaa<");
    size_t cut = 0;
    c = ntf_feishu_content(&r, 6, &type, &cut, NULL);
    j = cJSON_Parse(c);
    t = j ? cJSON_GetObjectItem(j, "text")->valuestring : "";
    CHECK_CONTAINS(t, "\naaaa\n… (output cut");
    CHECK(strstr(t, "&l\n") == NULL);
    cJSON_Delete(j);
    free(c);
}

int main(void) {
    printf("notifier format: Slack Block Kit layout, limits, cut notes; Feishu text/card, uuid\n");
    RUN(slack_response_url_layout);
    RUN(slack_post_and_update_need_channel);
    RUN(split_respects_limits_fences_utf8);
    RUN(slack_cuts_with_note_at_block_limit);
    RUN(slack_status_looks);
    RUN(slack_long_wide_command_cut_on_a_character);
    RUN(feishu_uuid);
    RUN(feishu_text_and_card);
    RUN(feishu_cut_utf8);
    RUN(feishu_markup_escaped);
    return cqtest_done();
}
