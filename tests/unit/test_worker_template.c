/* Unit tests for worker/template: each placeholder, escaping per context with hostile
 * arguments (../admin, a&b=c, "},"x":1, CRLF, http://evil/), the origin/prefix URL
 * check, JSON pointers and reply templates. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cqtest.h"
#include "template.h"
#include "test_worker_fixture.h"

/* Binds one value to echo's "text" argument and expands tpl in ctx. */
static char *expand_text(const char *value, const char *tpl, enum w_tpl_ctx ctx,
                         struct cq_err *err) {
    struct w_argv av = {0};
    struct w_bound_args b = {0};
    char *v0 = strdup(value);
    av.v = &v0;
    av.n = 1;
    char *r = NULL;
    if (w_args_bind(&fx_commands[4], &av, 0, 0, &b, err) == CQ_OK) {
        struct cq_tpl_vars vars = {.cfg = &fx_cfg,
                                   .args = &b,
                                   .person = &fx_people[0],
                                   .channel = &fx_channels[0],
                                   .request_id = "req-1",
                                   .command = "echo",
                                   .user_id = "UALICE"};
        r = w_template_expand(tpl, ctx, &vars, err);
    }
    w_bound_args_clear(&b);
    free(v0);
    return r;
}

#define EXPECT(value, tpl, ctx, want)                                                              \
    do {                                                                                           \
        struct cq_err e_ = {0};                                                                    \
        char *r_ = expand_text(value, tpl, ctx, &e_);                                              \
        CHECK_STR(r_, want);                                                                       \
        if (!r_) fprintf(stderr, "  err: %s\n", e_.msg);                                           \
        free(r_);                                                                                  \
    } while (0)

TEST(variables) {
    EXPECT("x",
           "{{user.gitlab_login}}/{{user.name}}/{{channel.name}}/{{request.id}}/"
           "{{command.name}}/{{user.id}}/{{ args.text }}",
           CQ_TPL_TEXT, "alice.gl/alice/ops-prod/req-1/echo/UALICE/x");
    EXPECT("x", "Bearer {{secrets.gitlab_token}}", CQ_TPL_HEADER, "Bearer s3cr3t-token");
    struct cq_err err = {0};
    CHECK(expand_text("x", "{{args.nope}}", CQ_TPL_TEXT, &err) == NULL);
    CHECK_STR(err.msg, "template references unknown argument nope");
    CHECK(expand_text("x", "{{secrets.missing}}", CQ_TPL_TEXT, &err) == NULL);
    CHECK_STR(err.msg, "template references secret missing, which is not set");
    CHECK(expand_text("x", "{{bogus}}", CQ_TPL_TEXT, &err) == NULL);
    CHECK_STR(err.msg, "template references unknown variable bogus");
    CHECK(expand_text("x", "{{args.text", CQ_TPL_TEXT, &err) == NULL);
    /* a secret that would break a header is refused without showing it */
    CHECK(expand_text("x", "{{secrets.evil}}", CQ_TPL_HEADER, &err) == NULL);
    CHECK_STR(err.msg, "a secret contains a line break, which a header cannot hold");
}

TEST(path_escaping) {
    EXPECT("../admin", "/features/{{args.text}}", CQ_TPL_PATH, "/features/..%2Fadmin");
    EXPECT("..", "/features/{{args.text}}", CQ_TPL_PATH, "/features/%2E%2E");
    EXPECT(".", "/features/{{args.text}}", CQ_TPL_PATH, "/features/%2E");
    EXPECT("v1.2", "/tags/{{args.text}}", CQ_TPL_PATH, "/tags/v1.2");
    EXPECT("a&b=c", "/f/{{args.text}}", CQ_TPL_PATH, "/f/a%26b%3Dc");
    EXPECT("http://evil/", "/f/{{args.text}}", CQ_TPL_PATH, "/f/http%3A%2F%2Fevil%2F");
    EXPECT("a?b#c d%", "/f/{{args.text}}", CQ_TPL_PATH, "/f/a%3Fb%23c%20d%25");
    EXPECT("a\r\nb", "/f/{{args.text}}", CQ_TPL_PATH, "/f/a%0D%0Ab");
}

TEST(query_form_json_header) {
    EXPECT("a&b=c", "name={{args.text}}&x=1", CQ_TPL_QUERY, "name=a%26b%3Dc&x=1");
    EXPECT("a b+c", "value={{args.text}}", CQ_TPL_FORM, "value=a%20b%2Bc");
    EXPECT("\"},\"x\":1", "{\"value\":\"{{args.text}}\"}", CQ_TPL_JSON,
           "{\"value\":\"\\\"},\\\"x\\\":1\"}");
    /* outside a string literal the value becomes one JSON string (or a plain integer) */
    EXPECT("1,\"x\":2", "{\"value\":{{args.text}}}", CQ_TPL_JSON, "{\"value\":\"1,\\\"x\\\":2\"}");
    EXPECT("42", "{\"value\":{{args.text}}}", CQ_TPL_JSON, "{\"value\":42}");
    EXPECT("a\r\nb\\", "{\"v\":\"{{args.text}}\"}", CQ_TPL_JSON, "{\"v\":\"a\\r\\nb\\\\\"}");
    /* an escaped quote in the template itself does not confuse the string tracking */
    EXPECT("1}", "{\"a\":\"q\\\"{{args.text}}\"}", CQ_TPL_JSON, "{\"a\":\"q\\\"1}\"}");
    struct cq_err err = {0};
    CHECK(expand_text("x\r\nX-Admin: 1", "v={{args.text}}", CQ_TPL_HEADER, &err) == NULL);
    CHECK_STR(err.msg, "args.text contains a line break, which a header cannot hold");
    CHECK(err.code == CQ_EINVAL);
    EXPECT("tab\tok", "{{args.text}}", CQ_TPL_HEADER, "tab\tok");

    /* every hostile JSON value round-trips as data */
    const char *hostile[] = {"\"},\"x\":1", "../admin", "a&b=c", "x\r\ny", "http://evil/"};
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        char *r = expand_text(hostile[i], "{\"value\":\"{{args.text}}\",\"n\":{{args.text}}}",
                              CQ_TPL_JSON, &err);
        cJSON *j = r ? cJSON_Parse(r) : NULL;
        CHECK(j != NULL && cJSON_GetArraySize(j) == 2);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "value")), hostile[i]);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "n")), hostile[i]);
        cJSON_Delete(j);
        free(r);
    }
}

TEST(url_check) {
    struct cq_err err = {0};
    const char *base = "https://gitlab.example.com/api/v4";
    CHECK(w_template_check_url(base, "https://gitlab.example.com/api/v4/features/x", &err) ==
          CQ_OK);
    CHECK(w_template_check_url(base, "https://GITLAB.example.com:443/api/v4/features", &err) ==
          CQ_OK);
    CHECK(w_template_check_url(base, "https://gitlab.example.com/api/v4", &err) == CQ_OK);
    CHECK(w_template_check_url(base, "http://gitlab.example.com/api/v4/x", &err) == CQ_EDENIED);
    CHECK(w_template_check_url(base, "https://evil/api/v4/x", &err) == CQ_EDENIED);
    CHECK_CONTAINS(err.msg, "leaves the action's origin https://gitlab.example.com:443");
    CHECK(w_template_check_url(base, "https://gitlab.example.com:8443/api/v4/x", &err) ==
          CQ_EDENIED);
    CHECK(w_template_check_url(base, "https://gitlab.example.com/api/v40/x", &err) == CQ_EDENIED);
    CHECK(w_template_check_url(base, "https://gitlab.example.com/admin", &err) == CQ_EDENIED);
    CHECK_STR(err.msg, "the expanded URL path leaves the prefix /api/v4");
    CHECK(w_template_check_url(base, "https://gitlab.example.com/api/v4/../admin", &err) ==
          CQ_EDENIED);
    CHECK_STR(err.msg, "the expanded URL path has a dot segment");
    CHECK(w_template_check_url(base, "https://u:p@gitlab.example.com/api/v4/x", &err) ==
          CQ_EDENIED);
    /* percent-encoded dot segments resolve like plain ones on most servers (issue 19) */
    const char *climbs[] = {"%2E%2E",     "%2e%2e",     "%2E.",       ".%2e",  "%2e",
                            "..%2Fadmin", "x%2F..%2Fy", "x%2f%2e%2e", "%5C..", "..%5cadmin"};
    for (size_t i = 0; i < sizeof(climbs) / sizeof(climbs[0]); i++) {
        char u[200];
        snprintf(u, sizeof(u), "https://gitlab.example.com/api/v4/%s/x", climbs[i]);
        err.msg[0] = '\0';
        CHECK(w_template_check_url(base, u, &err) == CQ_EDENIED);
        CHECK_STR(err.msg, "the expanded URL path has a dot segment");
    }
    /* dots that are data stay allowed */
    const char *data[] = {"v1.2",       "...", "%2e%2e%2e", "group%2Fproject",
                          "%252e%252e", ".x",  "a..b",      "%2E%2Ex"};
    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
        char u[200];
        snprintf(u, sizeof(u), "https://gitlab.example.com/api/v4/%s/x", data[i]);
        CHECK(w_template_check_url(base, u, &err) == CQ_OK);
    }
}

TEST(http_call_shape) {
    static struct cq_header_tpl hdrs[] = {
        {.name = "PRIVATE-TOKEN", .value = "{{secrets.gitlab_token}}"},
        {.name = "X-User", .value = "{{user.gitlab_login}}"}};
    struct cq_http_action a = {.method = "POST",
                               .base_url = "http://127.0.0.1:9999/api/v4",
                               .path = "/features/{{args.text}}",
                               .query = "by={{args.text}}",
                               .headers = hdrs,
                               .n_headers = 2,
                               .body = "value={{args.text}}",
                               .body_type = "form"};
    struct w_argv av = {0};
    struct w_bound_args b = {0};
    struct cq_err err = {0};
    struct w_http_call call;
    const char *hostile[] = {"a&b=c", "http://evil/", "x\r\ny", "\"},\"x\":1", "..."};
    const char *want_url[] = {
        "http://127.0.0.1:9999/api/v4/features/a%26b%3Dc?by=a%26b%3Dc",
        "http://127.0.0.1:9999/api/v4/features/http%3A%2F%2Fevil%2F?by=http%3A%2F%2Fevil%2F",
        "http://127.0.0.1:9999/api/v4/features/x%0D%0Ay?by=x%0D%0Ay",
        "http://127.0.0.1:9999/api/v4/features/%22%7D%2C%22x%22%3A1?by=%22%7D%2C%22x%22%3A1",
        "http://127.0.0.1:9999/api/v4/features/%2E%2E%2E?by=...",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        char *v0 = strdup(hostile[i]);
        av.v = &v0;
        av.n = 1;
        CHECK(w_args_bind(&fx_commands[4], &av, 0, 0, &b, &err) == CQ_OK);
        struct cq_tpl_vars vars = {.cfg = &fx_cfg, .args = &b, .person = &fx_people[0]};
        CHECK(w_template_http_call(&a, &vars, &call, &err) == CQ_OK);
        CHECK_STR(call.url, want_url[i]);
        CHECK_STR(call.method, "POST");
        CHECK(call.n_headers == 2);
        if (call.n_headers == 2) {
            CHECK_STR(call.headers[0], "PRIVATE-TOKEN: s3cr3t-token");
            CHECK_STR(call.headers[1], "X-User: alice.gl");
        }
        CHECK_STR(call.content_type, "application/x-www-form-urlencoded");
        w_http_call_clear(&call);
        w_bound_args_clear(&b);
        free(v0);
    }
    /* an argument that is, or decodes to, a dot segment is refused (issue 19): "%2E%2E"
     * and "..%2F" resolve like ".." and "../" on most servers */
    const char *climb[] = {"..", ".", "../admin", "..\\admin", "x/../.."};
    for (size_t i = 0; i < sizeof(climb) / sizeof(climb[0]); i++) {
        char *v0 = strdup(climb[i]);
        av.v = &v0;
        av.n = 1;
        CHECK(w_args_bind(&fx_commands[4], &av, 0, 0, &b, &err) == CQ_OK);
        struct cq_tpl_vars vars = {.cfg = &fx_cfg, .args = &b, .person = &fx_people[0]};
        CHECK(w_template_http_call(&a, &vars, &call, &err) == CQ_EDENIED);
        CHECK_STR(err.msg, "the expanded URL path has a dot segment");
        CHECK(call.url == NULL);
        w_bound_args_clear(&b);
        free(v0);
    }
    /* a template author's own path may not leave the prefix either */
    struct cq_http_action bad = {
        .method = "GET", .base_url = "http://127.0.0.1:9999/api/v4", .path = "/../../admin"};
    struct cq_tpl_vars none = {0};
    CHECK(w_template_http_call(&bad, &none, &call, &err) == CQ_EDENIED);
    /* a path never becomes an authority: "/" is always put between base and path */
    bad.path = "@evil.example/x";
    bad.base_url = "http://127.0.0.1:9999";
    CHECK(w_template_http_call(&bad, &none, &call, &err) == CQ_OK);
    CHECK_STR(call.url, "http://127.0.0.1:9999/@evil.example/x");
    w_http_call_clear(&call);
}

TEST(json_pointer_and_reply) {
    cJSON *j = cJSON_Parse("{\"name\":\"new_ui\",\"state\":\"on\",\"gates\":[{\"key\":\"boolean\","
                           "\"value\":true},{\"key\":\"percent\",\"value\":25}],\"a/b\":1,"
                           "\"m~n\":2}");
    CHECK(j != NULL);
    char *s = w_json_text(w_json_pointer(j, "/gates/1/value"));
    CHECK_STR(s, "25");
    free(s);
    s = w_json_text(w_json_pointer(j, "/gates/0/value"));
    CHECK_STR(s, "true");
    free(s);
    s = w_json_text(w_json_pointer(j, "/a~1b"));
    CHECK_STR(s, "1");
    free(s);
    s = w_json_text(w_json_pointer(j, "/m~0n"));
    CHECK_STR(s, "2");
    free(s);
    CHECK(w_json_pointer(j, "/gates/9") == NULL);
    CHECK(w_json_pointer(j, "name") == NULL);
    CHECK(w_json_pointer(j, "") == j);
    struct cq_tpl_vars vars = {.response = j};
    struct cq_err err = {0};
    char *r =
        w_template_expand("{{response./name}} is {{response.state}} ({{response.gates.1.value}}%)",
                          CQ_TPL_TEXT, &vars, &err);
    CHECK_STR(r, "new_ui is on (25%)");
    free(r);
    cJSON_Delete(j);
}

/* GitLab's GET /features lists every flag: a reply picks the asked one with a selector. */
TEST(select_from_array) {
    cJSON *j = cJSON_Parse("[{\"name\":\"dark_mode\",\"state\":\"off\"},"
                           "{\"name\":\"new_ui\",\"state\":\"conditional\",\"gates\":"
                           "[{\"key\":\"boolean\",\"value\":false},"
                           "{\"key\":\"percentage_of_time\",\"value\":30}]},"
                           "{\"name\":7,\"state\":\"seven\"},\"not an object\"]");
    CHECK(j != NULL);
    struct w_argv av = {0};
    struct w_bound_args b = {0};
    char *v0 = strdup("new_ui");
    av.v = &v0;
    av.n = 1;
    struct cq_err err = {0};
    CHECK(w_args_bind(&fx_commands[4], &av, 0, 0, &b, &err) == CQ_OK);
    struct cq_tpl_vars vars = {.args = &b, .response = j, .user_id = "dark_mode"};
    char *r = w_template_expand("`{{args.text}}` is {{response.[name=args.text].state}} "
                                "({{ response.[name=args.text].gates.[key='percentage_of_time']"
                                ".value }}%), {{response.[name=user.id].state}}, "
                                "{{response.[name='7'].state}}",
                                CQ_TPL_TEXT, &vars, &err);
    CHECK_STR(r, "`new_ui` is conditional (30%), off, seven");
    free(r);
    /* no element matches, or the path is not an array: empty, like any absent field */
    r = w_template_expand("[{{response.[name='nope'].state}}][{{response.0.[a='b']}}]"
                          "[{{response.[name=args.text]}}]",
                          CQ_TPL_TEXT, &vars, &err);
    CHECK_STR(r, "[][][{\"name\":\"new_ui\",\"state\":\"conditional\",\"gates\":"
                 "[{\"key\":\"boolean\",\"value\":false},"
                 "{\"key\":\"percentage_of_time\",\"value\":30}]}]");
    free(r);
    /* malformed selectors and unknown variables are config errors, named */
    const char *bad[][2] = {
        {"{{response.[name].state}}", "template selector [name] needs FIELD=VALUE"},
        {"{{response.[=x].state}}", "template selector [=x] needs FIELD=VALUE"},
        {"{{response.[name=args.text.state}}", "template selector in response.[name=args"},
        {"{{response.[name=args.text]state}}", "template selector in response.[name=args"},
        {"{{response.[name=args.nope].state}}", "template references unknown argument nope"},
        {"{{response.[name=response.x].state}}", "template selector [name] may not compare"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof err);
        CHECK(w_template_expand(bad[i][0], CQ_TPL_TEXT, &vars, &err) == NULL);
        CHECK(err.code == CQ_ECONFIG && strncmp(err.msg, bad[i][1], strlen(bad[i][1])) == 0);
        if (strncmp(err.msg, bad[i][1], strlen(bad[i][1])) != 0)
            fprintf(stderr, "  %s -> %s\n", bad[i][0], err.msg);
    }
    w_bound_args_clear(&b);
    free(v0);
    cJSON_Delete(j);
}

int main(void) {
    printf("worker/template: variables, path/query/form/json/header escaping of hostile "
           "arguments, URL origin+prefix check, http call shape, JSON pointer replies\n");
    RUN(variables);
    RUN(path_escaping);
    RUN(query_form_json_header);
    RUN(url_check);
    RUN(http_call_shape);
    RUN(json_pointer_and_reply);
    RUN(select_from_array);
    return cqtest_done();
}
