/* template: placeholder expansion with context-aware escaping for direct-mode HTTP
 * actions, plus the URL check that keeps every call on its configured origin.
 * Arguments are always data: they are escaped for the spot they land in, and the
 * final URL is parsed with curl's URL API and compared with the base URL. */
#include "template.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "template_vars.h"

#define TPL_MAX_OUT (1024 * 1024) /* an expansion never grows past this */

struct buf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void buf_add(struct buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > TPL_MAX_OUT) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 128;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *ns = realloc(b->s, ncap);
        if (!ns) {
            b->failed = true;
            return;
        }
        b->s = ns;
        b->cap = ncap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) {
    buf_add(b, s, strlen(s));
}

static bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void add_pct(struct buf *b, const char *v, bool dots) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (unreserved(*p) && !(dots && *p == '.')) {
            buf_add(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_add(b, e, 3);
        }
    }
}

static bool only_dots(const char *v) {
    if (!*v) return false;
    for (; *v; v++)
        if (*v != '.') return false;
    return true;
}

static bool plain_int(const char *v) {
    size_t n = 0;
    if (*v == '-') v++;
    for (; v[n]; n++)
        if (v[n] < '0' || v[n] > '9') return false;
    return n > 0 && n <= 18 && !(n > 1 && v[0] == '0');
}

/* Adds v escaped as JSON string content (quoted when outside a string literal). */
static void add_json(struct buf *b, const char *v, bool in_string) {
    if (!in_string && plain_int(v)) {
        buf_str(b, v);
        return;
    }
    cJSON *s = cJSON_CreateString(v);
    char *enc = s ? cJSON_PrintUnformatted(s) : NULL;
    if (!enc) {
        b->failed = true;
    } else if (in_string) {
        buf_add(b, enc + 1, strlen(enc) - 2); /* strip the quotes */
    } else {
        buf_str(b, enc);
    }
    cJSON_free(enc);
    cJSON_Delete(s);
}

const cJSON *w_json_pointer(const cJSON *root, const char *pointer) {
    const cJSON *cur = root;
    if (!root || !pointer) return NULL;
    if (*pointer == '\0') return root;
    if (*pointer != '/') return NULL;
    const char *p = pointer + 1;
    for (;;) {
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~' && (*p == '0' || *p == '1')) c = *p++ == '0' ? '~' : '/';
            if (n + 1 >= sizeof(tok)) return NULL;
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (cJSON_IsArray(cur)) {
            char *end = NULL;
            long idx = strtol(tok, &end, 10);
            if (n == 0 || *end != '\0' || idx < 0) return NULL;
            cur = cJSON_GetArrayItem(cur, (int)idx);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else {
            return NULL;
        }
        if (!cur) return NULL;
        if (*p == '\0') return cur;
        p++; /* skip '/' */
    }
}

char *w_json_text(const cJSON *v) {
    if (!v || cJSON_IsNull(v)) return strdup("");
    if (cJSON_IsString(v)) return strdup(v->valuestring ? v->valuestring : "");
    if (cJSON_IsBool(v)) return strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNumber(v)) {
        char num[64];
        double d = v->valuedouble;
        if (d == (double)(long long)d && d < 9e15 && d > -9e15)
            snprintf(num, sizeof(num), "%lld", (long long)d);
        else
            snprintf(num, sizeof(num), "%.17g", d);
        return strdup(num);
    }
    char *s = cJSON_PrintUnformatted(v);
    char *r = s ? strdup(s) : NULL;
    cJSON_free(s);
    return r;
}

static enum cq_rc lookup(const struct cq_tpl_vars *v, const char *name, const char **val,
                         char **owned, struct cq_err *err);

/* One "[FIELD=VALUE]" segment of a dotted response path (the text between the brackets):
 * the first element of the array arr whose FIELD has the text VALUE, where VALUE is a
 * 'quoted literal' or a template variable (args.name, user.gitlab_login, ...). *out is NULL
 * when none matches (the placeholder then expands to ""), as for any absent path. */
static enum cq_rc select_item(const struct cq_tpl_vars *v, const cJSON *arr, const char *sel,
                              size_t n, const cJSON **out, struct cq_err *err) {
    char field[128], want[200];
    const char *eq = memchr(sel, '=', n);
    *out = NULL;
    if (!eq || eq == sel || (size_t)(eq - sel) >= sizeof(field) ||
        n - (size_t)(eq - sel) - 1 >= sizeof(want) || eq + 1 == sel + n)
        return cq_err_set(err, CQ_ECONFIG,
                          "template selector [%.*s] needs FIELD=VALUE (VALUE: 'text' or a "
                          "variable such as args.name)",
                          (int)n, sel);
    memcpy(field, sel, (size_t)(eq - sel));
    field[eq - sel] = '\0';
    size_t wn = n - (size_t)(eq - sel) - 1;
    memcpy(want, eq + 1, wn);
    want[wn] = '\0';
    const char *wv = NULL;
    char *wowned = NULL;
    if (want[0] == '\'' && wn >= 2 && want[wn - 1] == '\'') {
        want[wn - 1] = '\0';
        wv = want + 1;
    } else if (strncmp(want, "response", 8) == 0) {
        return cq_err_set(err, CQ_ECONFIG, "template selector [%s] may not compare with response",
                          field);
    } else {
        enum cq_rc rc = lookup(v, want, &wv, &wowned, err);
        if (rc != CQ_OK) return rc;
    }
    for (const cJSON *it = cJSON_IsArray(arr) ? arr->child : NULL; it; it = it->next) {
        char *t = w_json_text(cJSON_GetObjectItemCaseSensitive(it, field));
        bool match = t && cJSON_IsObject(it) && cJSON_HasObjectItem(it, field) && !strcmp(t, wv);
        free(t);
        if (match) {
            *out = it;
            break;
        }
    }
    free(wowned);
    return CQ_OK;
}

/* A dotted response path with selectors: "items.[name=args.name].state". Segments are
 * object keys or array indexes as in the dotted form, or a "[FIELD=VALUE]" selector. */
static enum cq_rc select_path(const struct cq_tpl_vars *v, const char *path, const cJSON **out,
                              struct cq_err *err) {
    const cJSON *cur = v->response;
    const char *q = path;
    while (cur && *q) {
        if (*q == '[') {
            const char *close = strchr(q, ']');
            if (!close || (close[1] && close[1] != '.'))
                return cq_err_set(err, CQ_ECONFIG,
                                  "template selector in response.%s: [FIELD=VALUE] ends with ] "
                                  "and is followed by . or the end",
                                  path);
            enum cq_rc rc = select_item(v, cur, q + 1, (size_t)(close - q - 1), &cur, err);
            if (rc != CQ_OK) return rc;
            q = close[1] ? close + 2 : close + 1;
            continue;
        }
        size_t n = strcspn(q, ".");
        char tok[256];
        if (n >= sizeof(tok)) {
            cur = NULL;
            break;
        }
        memcpy(tok, q, n);
        tok[n] = '\0';
        if (cJSON_IsArray(cur)) {
            char *end = NULL;
            long idx = strtol(tok, &end, 10);
            cur =
                n && !*end && idx >= 0 && idx <= 1000000 ? cJSON_GetArrayItem(cur, (int)idx) : NULL;
        } else {
            cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, tok) : NULL;
        }
        q += n;
        if (*q == '.') q++;
    }
    *out = *q ? NULL : cur;
    return CQ_OK;
}

/* Resolves one variable name. *val is borrowed unless *owned gets a new string. */
static enum cq_rc lookup(const struct cq_tpl_vars *v, const char *name, const char **val,
                         char **owned, struct cq_err *err) {
    *val = NULL;
    *owned = NULL;
    if (strncmp(name, "args.", 5) == 0) {
        const char *an = name + 5;
        const struct w_bound_args *b = v->args;
        bool known = false;
        for (size_t i = 0; b && b->cmd && i < b->cmd->n_args; i++)
            if (strcmp(b->cmd->args[i].name, an) == 0) known = true;
        if (!known)
            return cq_err_set(err, CQ_ECONFIG, "template references unknown argument %s", an);
        *val = w_bound_get(b, an);
    } else if (cq_tpl_var_index(name) >= 0) {
        switch ((enum cq_tpl_var)cq_tpl_var_index(name)) {
        case CQ_TPL_USER_GITLAB_LOGIN:
            *val = v->person ? v->person->gitlab_login : NULL;
            break;
        case CQ_TPL_USER_NAME:
            *val = v->person && v->person->name ? v->person->name : v->user_name;
            break;
        case CQ_TPL_USER_ID:
            *val = v->user_id;
            break;
        case CQ_TPL_CHANNEL_NAME:
            *val = v->channel && v->channel->name ? v->channel->name : v->channel_name;
            break;
        case CQ_TPL_CHANNEL_ID:
            *val = v->channel_id;
            break;
        case CQ_TPL_REQUEST_ID:
            *val = v->request_id;
            break;
        case CQ_TPL_COMMAND_NAME:
            *val = v->command;
            break;
        case CQ_TPL_CHAT_INPUT:
            *val = v->input;
            break;
        case CQ_TPL_N_VARS:
            break;
        }
    } else if (strncmp(name, "secrets.", 8) == 0) {
        const char *sn = name + 8;
        for (size_t i = 0; v->cfg && i < v->cfg->n_secrets; i++)
            if (strcmp(v->cfg->secrets[i].name, sn) == 0) *val = v->cfg->secrets[i].secret.value;
        if (!*val)
            return cq_err_set(err, CQ_ECONFIG, "template references secret %s, which is not set",
                              sn);
    } else if (strncmp(name, "response", 8) == 0 && (name[8] == '.' || name[8] == '\0')) {
        const char *ptr = name[8] ? name + 9 : "";
        const cJSON *node = NULL;
        if (*ptr == '/' || *ptr == '\0') {
            node = w_json_pointer(v->response, ptr);
        } else if (strchr(ptr, '[')) { /* response.list.[name=args.name].state */
            enum cq_rc rc = select_path(v, ptr, &node, err);
            if (rc != CQ_OK) return rc;
        } else { /* dotted form: response.a.b == response./a/b */
            char p2[300];
            size_t n = 0;
            p2[n++] = '/';
            for (const char *q = ptr; *q && n + 1 < sizeof(p2); q++)
                p2[n++] = *q == '.' ? '/' : *q;
            p2[n] = '\0';
            node = w_json_pointer(v->response, p2);
        }
        *owned = w_json_text(node);
        if (!*owned) return cq_err_set(err, CQ_ENOMEM, "out of memory");
        *val = *owned;
    } else {
        return cq_err_set(err, CQ_ECONFIG, "template references unknown variable %s", name);
    }
    if (!*val) *val = "";
    return CQ_OK;
}

char *w_template_expand(const char *tpl, enum w_tpl_ctx ctx, const struct cq_tpl_vars *vars,
                        struct cq_err *err) {
    struct buf b = {0};
    bool in_str = false, esc = false;
    static const struct cq_tpl_vars none;
    const char *p = tpl ? tpl : "";

    if (!vars) vars = &none;
    buf_add(&b, "", 0);
    while (*p && !b.failed) {
        if (p[0] == '{' && p[1] == '{') {
            const char *end = strstr(p + 2, "}}");
            if (!end) {
                cq_err_set(err, CQ_ECONFIG, "template has an unclosed {{");
                goto out;
            }
            const char *s = p + 2, *e = end;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            char name[200];
            if ((size_t)(e - s) >= sizeof(name)) {
                cq_err_set(err, CQ_ECONFIG, "template variable name too long");
                goto out;
            }
            memcpy(name, s, (size_t)(e - s));
            name[e - s] = '\0';
            const char *val;
            char *owned;
            if (lookup(vars, name, &val, &owned, err) != CQ_OK) goto out;
            switch (ctx) {
            case CQ_TPL_TEXT:
                buf_str(&b, val);
                break;
            case CQ_TPL_PATH:
                add_pct(&b, val, only_dots(val));
                break;
            case CQ_TPL_QUERY:
            case CQ_TPL_FORM:
                add_pct(&b, val, false);
                break;
            case CQ_TPL_JSON:
                add_json(&b, val, in_str);
                break;
            case CQ_TPL_HEADER:
                for (const unsigned char *q = (const unsigned char *)val; *q; q++)
                    if ((*q < 0x20 && *q != '\t') || *q == 0x7f) {
                        free(owned);
                        cq_err_set(err, CQ_EINVAL, "%s contains a %s, which a header cannot hold",
                                   strncmp(name, "secrets.", 8) == 0 ? "a secret" : name,
                                   (*q == '\r' || *q == '\n') ? "line break" : "control character");
                        goto out;
                    }
                buf_str(&b, val);
                break;
            }
            free(owned);
            p = end + 2;
            continue;
        }
        if (ctx == CQ_TPL_JSON) { /* track string literals of the template itself */
            if (esc)
                esc = false;
            else if (*p == '\\' && in_str)
                esc = true;
            else if (*p == '"')
                in_str = !in_str;
        }
        buf_add(&b, p, 1);
        p++;
    }
    if (b.failed) {
        cq_err_set(err, b.len + 1 > TPL_MAX_OUT / 2 ? CQ_ETOOBIG : CQ_ENOMEM,
                   "template expansion failed (too large or out of memory)");
        goto out;
    }
    return b.s;
out:
    free(b.s);
    return NULL;
}

static char *url_part(CURLU *u, CURLUPart part, unsigned flags) {
    char *s = NULL;
    if (curl_url_get(u, part, &s, flags) != CURLUE_OK) return NULL;
    return s;
}

static bool same(const char *a, const char *b, bool nocase) {
    if (!a || !b) return a == b;
    return nocase ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* True when the path segment s[0..n) is, or once percent-decoded holds, a "." or ".."
 * piece: servers and proxies decode %2e (and often %2f, %5c) before resolving the path,
 * so "%2e%2E" or "..%2f.." would climb out of the action's base path. */
static bool dot_segment(const char *s, size_t n) {
    size_t run = 0;   /* characters in the current piece */
    bool dots = true; /* the current piece is dots only */
    for (size_t i = 0; i <= n; i++) {
        char c = '/';
        if (i < n) {
            c = s[i];
            if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                i += 2;
            }
        }
        if (c == '/' || c == '\\') {
            if (dots && (run == 1 || run == 2)) return true;
            run = 0;
            dots = true;
            continue;
        }
        run++;
        if (c != '.') dots = false;
    }
    return false;
}

enum cq_rc w_template_check_url(const char *base_url, const char *url, struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    CURLU *bu = curl_url(), *uu = curl_url();
    char *bs = NULL, *bh = NULL, *bp = NULL, *bpath = NULL;
    char *us = NULL, *uh = NULL, *up = NULL, *upath = NULL, *uuser = NULL, *ufrag = NULL;

    if (!bu || !uu) {
        rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    if (curl_url_set(bu, CURLUPART_URL, base_url, CURLU_PATH_AS_IS) != CURLUE_OK) {
        rc = cq_err_set(err, CQ_ECONFIG, "base_url is not a valid URL");
        goto out;
    }
    if (curl_url_set(uu, CURLUPART_URL, url, CURLU_PATH_AS_IS) != CURLUE_OK) {
        rc = cq_err_set(err, CQ_EDENIED, "the expanded URL is not valid");
        goto out;
    }
    bs = url_part(bu, CURLUPART_SCHEME, 0);
    bh = url_part(bu, CURLUPART_HOST, 0);
    bp = url_part(bu, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    bpath = url_part(bu, CURLUPART_PATH, 0);
    us = url_part(uu, CURLUPART_SCHEME, 0);
    uh = url_part(uu, CURLUPART_HOST, 0);
    up = url_part(uu, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    upath = url_part(uu, CURLUPART_PATH, 0);
    uuser = url_part(uu, CURLUPART_USER, 0);
    ufrag = url_part(uu, CURLUPART_FRAGMENT, 0);
    if (!same(bs, us, true) || !same(bh, uh, true) || !same(bp, up, false)) {
        rc = cq_err_set(err, CQ_EDENIED, "the expanded URL leaves the action's origin %s://%s:%s",
                        bs ? bs : "?", bh ? bh : "?", bp ? bp : "?");
        goto out;
    }
    if (uuser || ufrag) {
        rc = cq_err_set(err, CQ_EDENIED, "the expanded URL has user info or a fragment");
        goto out;
    }
    const char *path = upath ? upath : "/";
    for (const char *s = path; *s;) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        if (dot_segment(s, (size_t)(e - s))) {
            rc = cq_err_set(err, CQ_EDENIED, "the expanded URL path has a dot segment");
            goto out;
        }
        s = e;
    }
    size_t plen = bpath ? strlen(bpath) : 0;
    while (plen > 0 && bpath[plen - 1] == '/')
        plen--;
    if (plen > 0 &&
        (strncmp(path, bpath, plen) != 0 || (path[plen] != '\0' && path[plen] != '/'))) {
        rc = cq_err_set(err, CQ_EDENIED, "the expanded URL path leaves the prefix %.*s", (int)plen,
                        bpath);
        goto out;
    }
out:
    curl_free(bs);
    curl_free(bh);
    curl_free(bp);
    curl_free(bpath);
    curl_free(us);
    curl_free(uh);
    curl_free(up);
    curl_free(upath);
    curl_free(uuser);
    curl_free(ufrag);
    curl_url_cleanup(bu);
    curl_url_cleanup(uu);
    return rc;
}

void w_http_call_clear(struct w_http_call *c) {
    if (!c) return;
    free(c->method);
    free(c->url);
    for (size_t i = 0; i < c->n_headers; i++)
        free(c->headers[i]);
    free(c->headers);
    free(c->body);
    memset(c, 0, sizeof(*c));
}

enum cq_rc w_template_http_call(const struct cq_http_action *a, const struct cq_tpl_vars *vars,
                                struct w_http_call *out, struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    char *path = NULL, *query = NULL;
    struct buf u = {0};

    memset(out, 0, sizeof(*out));
    if (!a->base_url) {
        rc = cq_err_set(err, CQ_ECONFIG, "the action has no base_url");
        goto out;
    }
    out->method = strdup(a->method ? a->method : "GET");
    if (!out->method) {
        rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    path = w_template_expand(a->path ? a->path : "", CQ_TPL_PATH, vars, err);
    if (!path) {
        rc = err ? err->code : CQ_EINVAL;
        goto out;
    }
    if (a->query && a->query[0]) {
        query = w_template_expand(a->query, CQ_TPL_QUERY, vars, err);
        if (!query) {
            rc = err ? err->code : CQ_EINVAL;
            goto out;
        }
    }
    size_t bl = strlen(a->base_url);
    buf_str(&u, a->base_url);
    if (path[0] && path[0] != '/' && (bl == 0 || a->base_url[bl - 1] != '/')) buf_str(&u, "/");
    if (path[0] == '/' && bl > 0 && a->base_url[bl - 1] == '/')
        buf_str(&u, path + 1);
    else
        buf_str(&u, path);
    if (query) {
        buf_str(&u, "?");
        buf_str(&u, query);
    }
    if (u.failed) {
        rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    out->url = u.s;
    u.s = NULL;
    rc = w_template_check_url(a->base_url, out->url, err);
    if (rc != CQ_OK) goto out;

    if (a->n_headers) {
        out->headers = calloc(a->n_headers, sizeof(char *));
        if (!out->headers) {
            rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < a->n_headers; i++) {
        char *v = w_template_expand(a->headers[i].value, CQ_TPL_HEADER, vars, err);
        if (!v) {
            rc = err ? err->code : CQ_EINVAL;
            goto out;
        }
        size_t n = strlen(a->headers[i].name) + strlen(v) + 3;
        out->headers[i] = malloc(n);
        if (out->headers[i]) snprintf(out->headers[i], n, "%s: %s", a->headers[i].name, v);
        free(v);
        if (!out->headers[i]) {
            rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
            goto out;
        }
        out->n_headers = i + 1;
    }
    if (a->body && a->body[0]) {
        bool form = a->body_type && strcmp(a->body_type, "form") == 0;
        out->body = w_template_expand(a->body, form ? CQ_TPL_FORM : CQ_TPL_JSON, vars, err);
        if (!out->body) {
            rc = err ? err->code : CQ_EINVAL;
            goto out;
        }
        out->content_type = form ? "application/x-www-form-urlencoded" : "application/json";
    }
out:
    free(path);
    free(query);
    free(u.s);
    if (rc != CQ_OK) w_http_call_clear(out);
    return rc;
}
