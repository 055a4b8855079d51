/* template: expands {{args.NAME}}, {{user.*}}, {{channel.*}}, {{request.id}},
 * {{command.name}}, {{secrets.NAME}} and {{response.<pointer>}} in action templates
 * ({{response.[name=args.name].state}}: the element of a JSON array whose field has a
 * variable's value or a 'literal', e.g. one flag of GitLab's GET /features list),
 * escaping each value for where it lands (URL path segment, query, JSON string, form,
 * header) so that no argument can change the shape of the request, and checks the
 * final URL stays on the action's base URL (origin and path prefix: no SSRF). */
#ifndef CQ_WORKER_TEMPLATE_H
#define CQ_WORKER_TEMPLATE_H

#include <cjson/cJSON.h>

#include "args.h"
#include "config.h"

enum w_tpl_ctx {
    CQ_TPL_TEXT,   /* reply text: no escaping */
    CQ_TPL_PATH,   /* URL path: percent-encode all but unreserved; "." / ".." as %2E */
    CQ_TPL_QUERY,  /* URL query / form value: percent-encode all but unreserved */
    CQ_TPL_FORM,   /* application/x-www-form-urlencoded body: same as QUERY */
    CQ_TPL_JSON,   /* JSON body: escaped inside a string literal, quoted outside one */
    CQ_TPL_HEADER, /* header value: CR, LF and other control characters are rejected */
};

/* Everything a template may reference; all borrowed, any may be NULL. */
struct cq_tpl_vars {
    const struct cq_config *cfg; /* for secrets */
    const struct w_bound_args *args;
    const struct cq_person *person;
    const char *user_id, *user_name; /* from the request (fallback for unknown users) */
    const struct cq_channel *channel;
    const char *channel_id, *channel_name;
    const char *request_id;
    const char *command;   /* resolved command name */
    const char *input;     /* the raw argument text */
    const cJSON *response; /* parsed response body (reply templates) */
};

/* Expands tpl for ctx. Returns a new string (caller frees), or NULL with err: CQ_ECONFIG
 * for an unknown variable or missing secret (the name, never the value), CQ_EINVAL when
 * a value cannot be placed safely (a line break in a header), CQ_ENOMEM. */
char *w_template_expand(const char *tpl, enum w_tpl_ctx ctx, const struct cq_tpl_vars *vars,
                        struct cq_err *err);

/* Checks that url has base_url's scheme, host and port, no user info or fragment, a
 * path under base_url's path prefix and no literal "." or ".." segment. CQ_EDENIED with
 * the reason otherwise. */
enum cq_rc w_template_check_url(const char *base_url, const char *url, struct cq_err *err);

/* The request an http action expands to; all strings owned. */
struct w_http_call {
    char *method;
    char *url;
    char **headers; /* "Name: value", n_headers of them */
    size_t n_headers;
    char *body;               /* NULL when the action has none */
    const char *content_type; /* static; NULL without body */
};

/* Expands every part of a (path, query, headers, body) and checks the URL.
 * Caller calls w_http_call_clear. */
enum cq_rc w_template_http_call(const struct cq_http_action *a, const struct cq_tpl_vars *vars,
                                struct w_http_call *out, struct cq_err *err);
void w_http_call_clear(struct w_http_call *c);

/* RFC 6901 JSON pointer ("" = root, "/a/0/b", ~0 ~1 escapes). Borrowed; NULL if absent. */
const cJSON *w_json_pointer(const cJSON *root, const char *pointer);
/* Text of a JSON value for a reply: strings as is, numbers/bools printed, null as "",
 * objects/arrays as compact JSON. Returns a new string; caller frees. */
char *w_json_text(const cJSON *v);

#endif
