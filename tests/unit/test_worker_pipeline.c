/* Unit tests for the pipeline modes' pure parts: the trigger form (no argument can add a
 * variable or field), ref validation, GitLab error sentences, and job log tails. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "gitlab.h"
#include "pipeline.h"

/* Counts '&'-separated fields and checks every one decodes to one name and one value. */
static int count_fields(const char *form) {
    int n = 1;
    for (const char *p = form; *p; p++)
        if (*p == '&') n++;
    return n;
}

TEST(form_escapes_every_value) {
    const char *vars[] = {"CHAT_INPUT", "blue 30&variables[EVIL]=1", "X", "a=b\r\nc", NULL};
    char *f = w_gitlab_trigger_form("tok&en", "main", vars);
    CHECK(f != NULL);
    CHECK_STR(f, "token=tok%26en&ref=main&variables%5BCHAT_INPUT%5D=blue%2030%26variables%5BEVIL"
                 "%5D%3D1&variables%5BX%5D=a%3Db%0D%0Ac");
    CHECK(count_fields(f) == 4);
    CHECK(strstr(f, "EVIL]") == NULL);
    free(f);
}

TEST(form_empty_values) {
    const char *vars[] = {"GITLAB_USER_LOGIN", "", NULL};
    char *f = w_gitlab_trigger_form("t", "v1.2", vars);
    CHECK_STR(f, "token=t&ref=v1.2&variables%5BGITLAB_USER_LOGIN%5D=");
    free(f);
}

TEST(ref_rules) {
    CHECK(w_gitlab_ref_valid("main"));
    CHECK(w_gitlab_ref_valid("release/1.2"));
    CHECK(w_gitlab_ref_valid("feature_x-9"));
    CHECK(!w_gitlab_ref_valid(""));
    CHECK(!w_gitlab_ref_valid(NULL));
    CHECK(!w_gitlab_ref_valid("-rf"));
    CHECK(!w_gitlab_ref_valid("a..b"));
    CHECK(!w_gitlab_ref_valid("a//b"));
    CHECK(!w_gitlab_ref_valid("/abs"));
    CHECK(!w_gitlab_ref_valid("x.lock"));
    CHECK(!w_gitlab_ref_valid("a b"));
    CHECK(!w_gitlab_ref_valid("main&variables[X]=1"));
    CHECK(!w_gitlab_ref_valid("a/.hidden"));
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(!w_gitlab_ref_valid(big));
}

TEST(error_sentences) {
    struct w_gitlab_reply r = {.rc = CQ_OK, .status = 401, .body = "", .errmsg = ""};
    char *s = w_gitlab_error_text(&r, "trigger the pipeline");
    CHECK_CONTAINS(s, "rejected the token (HTTP 401)");
    free(s);
    cJSON *j = cJSON_Parse("{\"message\":{\"base\":[\"Reference not found\"]}}");
    r.status = 422;
    r.json = j;
    s = w_gitlab_error_text(&r, "trigger the pipeline");
    CHECK_CONTAINS(s, "HTTP 422");
    CHECK_CONTAINS(s, "Reference not found");
    free(s);
    cJSON_Delete(j);
    r.json = NULL;
    r.status = 404;
    s = w_gitlab_error_text(&r, "trigger the pipeline");
    CHECK_CONTAINS(s, "not found (HTTP 404)");
    free(s);
    r.status = 403;
    s = w_gitlab_error_text(&r, "x");
    CHECK_CONTAINS(s, "HTTP 403");
    free(s);
    r.status = 503;
    r.attempts = 3;
    s = w_gitlab_error_text(&r, "x");
    CHECK_CONTAINS(s, "HTTP 503) after 3 attempts");
    free(s);
    r.status = 429;
    s = w_gitlab_error_text(&r, "x");
    CHECK_CONTAINS(s, "rate limiting (HTTP 429) after 3 attempts");
    free(s);
    r.rc = CQ_ETIMEOUT;
    s = w_gitlab_error_text(&r, "x");
    CHECK_CONTAINS(s, "did not answer in time");
    free(s);
}

TEST(log_tail_lines_and_bytes) {
    char log[4096] = "";
    for (int i = 1; i <= 50; i++) {
        char line[64];
        snprintf(line, sizeof(line), "\x1b[32mline %d\x1b[0m\r\n", i);
        strcat(log, line);
    }
    char *t = w_gitlab_log_tail(log, strlen(log), 3, 4000);
    CHECK_STR(t, "line 48\nline 49\nline 50");
    free(t);
    t = w_gitlab_log_tail(log, strlen(log), 20, 16); /* "line 49\nline 50" is 15 bytes */
    CHECK_STR(t, "line 49\nline 50");
    free(t);
    /* One line longer than the byte bound keeps its end. */
    t = w_gitlab_log_tail("abcdefghij", 10, 5, 6);
    CHECK_STR(t, "\xe2\x80\xa6hij"); /* "…hij": the ellipsis counts in the bound */
    free(t);
    /* A cut inside a character starts after it; invalid bytes become U+FFFD; NULs go. */
    t = w_gitlab_log_tail("x\xe2\x82\xac\xe2\x82\xacz", 8, 5, 6);
    CHECK_STR(t, "\xe2\x80\xa6z"); /* "…z": the cut fell inside the second "€" */
    free(t);
    t = w_gitlab_log_tail("ok\n\xff bad\0 byte", 15, 5, 100);
    CHECK_STR(t, "ok\n\xef\xbf\xbd bad byte");
    free(t);
    const char *sec = "\x1b[0Ksection_start:1700000000:step_script\r\x1b[0Kdoing it\n"
                      "ERROR: boom\n";
    t = w_gitlab_log_tail(sec, strlen(sec), 5, 100);
    CHECK_STR(t, "doing it\nERROR: boom");
    free(t);
}

TEST(privileged_roles) {
    char *cancel_roles[] = {"sre", NULL};
    char *roles_sre[] = {"dev", "sre", NULL};
    char *roles_dev[] = {"dev", NULL};
    struct cq_config cfg = {0};
    cfg.worker.cancel_roles = cancel_roles;
    struct cq_person sre = {.name = "a", .roles = roles_sre};
    struct cq_person dev = {.name = "b", .roles = roles_dev};
    CHECK(w_pipeline_privileged(&cfg, &sre));
    CHECK(!w_pipeline_privileged(&cfg, &dev));
    CHECK(!w_pipeline_privileged(&cfg, NULL));
}

int main(void) {
    RUN(form_escapes_every_value);
    RUN(form_empty_values);
    RUN(ref_rules);
    RUN(error_sentences);
    RUN(log_tail_lines_and_bytes);
    RUN(privileged_roles);
    printf("checked: trigger form escaping (no injected variables/fields), ref rules, GitLab "
           "error texts, log tails (lines, bytes, ANSI/section markers), cancel roles\n");
    return cqtest_done();
}
