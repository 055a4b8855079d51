/* args: tokenizer, command resolution, argument binding and rule checks for the
 * worker. Everything a user typed after the command word passes through here
 * before the policy sees it; every rejection is one line that names the argument. */
#include "args.h"
#include "utf8.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable word being built by the tokenizer. */
struct word {
    char *s;
    size_t len, cap;
};

static int word_put(struct word *w, char c) {
    if (w->len + 2 > w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 32;
        char *n = realloc(w->s, ncap);
        if (!n) return -1;
        w->s = n;
        w->cap = ncap;
    }
    w->s[w->len++] = c;
    w->s[w->len] = '\0';
    return 0;
}

void w_argv_clear(struct w_argv *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

static int argv_push(struct w_argv *a, char *s) {
    char **n = realloc(a->v, (a->n + 1) * sizeof(*n));
    if (!n) return -1;
    a->v = n;
    a->v[a->n++] = s;
    return 0;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

enum cq_rc w_args_tokenize(const char *text, int max_args, int max_arg_len, struct w_argv *out,
                           struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    struct word w = {0};
    bool in_word = false;
    const char *p = text ? text : "";

    out->v = NULL;
    out->n = 0;
    for (;;) {
        char c = *p;
        if (c == '\0' || is_space(c)) {
            if (in_word) {
                if (max_args > 0 && out->n >= (size_t)max_args) {
                    rc = cq_err_set(err, CQ_ETOOBIG, "too many arguments (at most %d)", max_args);
                    goto out;
                }
                if (!w.s && word_put(&w, '\0') != 0) { /* empty quoted word "" */
                    rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
                    goto out;
                }
                if (argv_push(out, w.s) != 0) {
                    rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
                    goto out;
                }
                memset(&w, 0, sizeof(w));
                in_word = false;
            }
            if (c == '\0') break;
            p++;
            continue;
        }
        in_word = true;
        if (c == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end) {
                rc = cq_err_set(err, CQ_EPARSE, "unbalanced single quote");
                goto out;
            }
            for (const char *q = p + 1; q < end; q++)
                if (word_put(&w, *q) != 0) {
                    rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
                    goto out;
                }
            if (w.s == NULL && word_put(&w, '\0') == 0) w.len = 0; /* keep '' as an empty word */
            p = end + 1;
        } else if (c == '"') {
            p++;
            for (;;) {
                char d = *p;
                if (d == '\0') {
                    rc = cq_err_set(err, CQ_EPARSE, "unbalanced double quote");
                    goto out;
                }
                if (d == '"') {
                    p++;
                    break;
                }
                if (d == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`')) {
                    d = p[1];
                    p++;
                }
                if (word_put(&w, d) != 0) {
                    rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
                    goto out;
                }
                p++;
            }
            if (w.s == NULL && word_put(&w, '\0') == 0) w.len = 0;
        } else if (c == '\\') {
            if (p[1] == '\0') {
                rc = cq_err_set(err, CQ_EPARSE, "trailing backslash");
                goto out;
            }
            if (word_put(&w, p[1]) != 0) {
                rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
                goto out;
            }
            p += 2;
        } else {
            if (word_put(&w, c) != 0) {
                rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
                goto out;
            }
            p++;
        }
        if (max_arg_len > 0 && w.len > (size_t)max_arg_len) {
            rc = cq_err_set(err, CQ_ETOOBIG, "argument %zu is longer than %d characters",
                            out->n + 1, max_arg_len);
            goto out;
        }
    }
out:
    if (rc != CQ_OK) {
        free(w.s);
        w_argv_clear(out);
    }
    return rc;
}

const char *w_args_rest(const char *text, size_t words) {
    const char *p = text ? text : "";
    while (is_space(*p))
        p++;
    for (size_t i = 0; i < words && *p; i++) {
        while (*p && !is_space(*p)) { /* one word, quotes and escapes as the tokenizer */
            if (*p == '\'') {
                const char *end = strchr(p + 1, '\'');
                p = end ? end + 1 : p + strlen(p);
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"')
                    p += (*p == '\\' && p[1]) ? 2 : 1;
                if (*p) p++;
            } else if (*p == '\\' && p[1]) {
                p += 2;
            } else {
                p++;
            }
        }
        while (is_space(*p))
            p++;
    }
    return p;
}

/* Number of words in name if they equal word, tokens[0..]; 0 when they do not. */
static size_t name_match(const char *name, const char *word, const struct w_argv *tokens) {
    size_t nwords = 0;
    const char *p = name;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        const char *cand;
        if (nwords == 0)
            cand = word;
        else if (tokens && nwords - 1 < tokens->n)
            cand = tokens->v[nwords - 1];
        else
            return 0;
        if (!cand || strlen(cand) != (size_t)(e - p) || strncmp(cand, p, (size_t)(e - p)) != 0)
            return 0;
        nwords++;
        p = e;
    }
    return nwords;
}

const struct cq_command *w_args_resolve(const struct cq_config *cfg, const char *word,
                                        const struct w_argv *tokens, size_t *consumed) {
    const struct cq_command *best = NULL;
    size_t best_words = 0;
    if (consumed) *consumed = 0;
    if (!cfg || !word) return NULL;
    for (size_t i = 0; i < cfg->n_commands; i++) {
        size_t k = name_match(cfg->commands[i].name, word, tokens);
        if (k > best_words) {
            best_words = k;
            best = &cfg->commands[i];
        }
    }
    if (best && consumed) *consumed = best_words - 1;
    return best;
}

void w_bound_args_clear(struct w_bound_args *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++)
        free(b->values[i]);
    free(b->values);
    b->values = NULL;
    b->n = 0;
    b->cmd = NULL;
}

const char *w_bound_get(const struct w_bound_args *b, const char *name) {
    if (!b || !b->cmd || !name) return NULL;
    for (size_t i = 0; i < b->n && i < b->cmd->n_args; i++)
        if (strcmp(b->cmd->args[i].name, name) == 0) return b->values[i];
    return NULL;
}

/* A short printable rendering of user input for a reason line (no control chars), cut on a
 * character with "…" (a reason goes back to chat in a result envelope: valid UTF-8). */
static void show(const char *v, char *buf, size_t size) {
    cq_utf8_copy(buf, size, v, strlen(v), NULL);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
}

static enum cq_rc check_rule(const struct cq_arg_spec *s, const char *v, int max_arg_len,
                             struct cq_err *err) {
    char sv[64];
    show(v, sv, sizeof(sv));
    int limit = s->max_len > 0 ? s->max_len : max_arg_len;
    if (limit > 0 && strlen(v) > (size_t)limit)
        return cq_err_set(err, CQ_EINVAL, "%s: longer than the maximum %d characters (%zu)",
                          s->name, limit, strlen(v));
    if (s->type == CQ_ARG_ENUM || s->enum_values) {
        bool found = false;
        size_t used = 0;
        char list[160] = "";
        for (char **e = s->enum_values; e && *e; e++) {
            if (strcmp(*e, v) == 0) found = true;
            int w = snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", *e);
            if (w > 0 && (size_t)w < sizeof(list) - used) used += (size_t)w;
        }
        if (!found) return cq_err_set(err, CQ_EINVAL, "%s: %s is not one of %s", s->name, sv, list);
    }
    if (s->type == CQ_ARG_INT) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (*v == '\0' || is_space(*v) || *end != '\0')
            return cq_err_set(err, CQ_EINVAL, "%s: %s is not an integer", s->name, sv);
        /* out of long long's range, strtoll saturates: LLONG_MIN means too small */
        bool too_big = errno == ERANGE && n > 0, too_small = errno == ERANGE && n < 0;
        if (too_big || n > s->max)
            return cq_err_set(err, CQ_EINVAL, "%s: %s is above the maximum %lld", s->name, sv,
                              s->max);
        if (too_small || n < s->min)
            return cq_err_set(err, CQ_EINVAL, "%s: %s is below the minimum %lld", s->name, sv,
                              s->min);
    }
    if (s->regex) {
        size_t plen = strlen(s->regex) + 5;
        char *pat = malloc(plen);
        if (!pat) return cq_err_set(err, CQ_ENOMEM, "out of memory");
        snprintf(pat, plen, "^(%s)$", s->regex);
        regex_t re;
        int rc = regcomp(&re, pat, REG_EXTENDED | REG_NOSUB);
        free(pat);
        if (rc != 0)
            return cq_err_set(err, CQ_ECONFIG, "%s: the configured pattern does not compile",
                              s->name);
        rc = regexec(&re, v, 0, NULL, 0);
        regfree(&re);
        if (rc != 0)
            return cq_err_set(err, CQ_EINVAL, "%s: %s does not match the pattern %s", s->name, sv,
                              s->regex);
    }
    return CQ_OK;
}

static const struct cq_arg_spec *find_flag(const struct cq_command *cmd, const char *name,
                                           size_t len, size_t *idx) {
    for (size_t i = 0; i < cmd->n_args; i++) {
        const char *f = cmd->args[i].flag;
        if (f && strlen(f) == len && strncmp(f, name, len) == 0) {
            *idx = i;
            return &cmd->args[i];
        }
    }
    return NULL;
}

static enum cq_rc set_value(struct w_bound_args *b, size_t i, const char *v, size_t len,
                            struct cq_err *err) {
    if (b->values[i])
        return cq_err_set(err, CQ_EINVAL, "%s: given more than once", b->cmd->args[i].name);
    b->values[i] = strndup(v, len);
    if (!b->values[i]) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    return CQ_OK;
}

enum cq_rc w_args_bind(const struct cq_command *cmd, const struct w_argv *tokens, size_t start,
                       int max_arg_len, struct w_bound_args *out, struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    size_t next_pos = 0;
    bool options_done = false;
    char sv[64];

    memset(out, 0, sizeof(*out));
    out->cmd = cmd;
    if (cmd->n_args > 0) {
        out->values = calloc(cmd->n_args, sizeof(char *));
        if (!out->values) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    }
    out->n = cmd->n_args;

    for (size_t t = start; tokens && t < tokens->n; t++) {
        const char *tok = tokens->v[t];
        if (!options_done && strcmp(tok, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && strncmp(tok, "--", 2) == 0 && tok[2] != '\0') {
            const char *name = tok + 2, *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name), idx = 0;
            if (!find_flag(cmd, name, nlen, &idx)) {
                show(tok, sv, sizeof(sv));
                rc = cq_err_set(err, CQ_EINVAL, "unknown option %s", sv);
                goto out;
            }
            if (eq) {
                rc = set_value(out, idx, eq + 1, strlen(eq + 1), err);
            } else if (t + 1 < tokens->n) {
                t++;
                rc = set_value(out, idx, tokens->v[t], strlen(tokens->v[t]), err);
            } else {
                rc = cq_err_set(err, CQ_EINVAL, "--%s needs a value", cmd->args[idx].flag);
            }
            if (rc != CQ_OK) goto out;
            continue;
        }
        while (next_pos < cmd->n_args && cmd->args[next_pos].flag)
            next_pos++;
        if (next_pos >= cmd->n_args) {
            show(tok, sv, sizeof(sv));
            rc = cq_err_set(err, CQ_EINVAL, "unexpected argument %s", sv);
            goto out;
        }
        rc = set_value(out, next_pos, tok, strlen(tok), err);
        if (rc != CQ_OK) goto out;
        next_pos++;
    }

    for (size_t i = 0; i < cmd->n_args; i++) {
        const struct cq_arg_spec *s = &cmd->args[i];
        if (!out->values[i]) {
            if (s->default_value) {
                rc = set_value(out, i, s->default_value, strlen(s->default_value), err);
                if (rc != CQ_OK) goto out;
            } else if (s->required) {
                rc = cq_err_set(err, CQ_EINVAL, "%s: missing (required)", s->name);
                goto out;
            } else {
                continue;
            }
        }
        rc = check_rule(s, out->values[i], max_arg_len, err);
        if (rc != CQ_OK) goto out;
    }
out:
    if (rc != CQ_OK) w_bound_args_clear(out);
    return rc;
}

static void upper(const char *in, char *buf, size_t size) {
    size_t i = 0;
    for (; in[i] && i + 1 < size; i++)
        buf[i] = (in[i] >= 'a' && in[i] <= 'z') ? (char)(in[i] - 32) : in[i];
    buf[i] = '\0';
}

char *w_args_usage(const struct cq_command *cmd, char *buf, size_t size) {
    size_t used;
    int w;
    if (!buf || size == 0) return buf;
    buf[0] = '\0';
    if (!cmd) return buf;
    if (cmd->usage && cmd->usage[0]) {
        bool has = strncmp(cmd->usage, "usage:", 6) == 0;
        w = snprintf(buf, size, "%s%s", has ? "" : "usage: ", cmd->usage);
        if (w > 0 && (size_t)w >= size) /* cut: on a character, with "…" */
            cq_utf8_mark_cut(buf, size);
        return buf;
    }
    w = snprintf(buf, size, "usage: %s", cmd->name);
    if (w > 0 && (size_t)w >= size) cq_utf8_mark_cut(buf, size);
    used = strlen(buf);
    for (size_t i = 0; i < cmd->n_args && used + 1 < size; i++) {
        const struct cq_arg_spec *s = &cmd->args[i];
        char up[64];
        upper(s->name, up, sizeof(up));
        bool opt = !s->required || s->default_value;
        if (s->flag)
            w = snprintf(buf + used, size - used, " %s--%s %s%s", opt ? "[" : "", s->flag, up,
                         opt ? "]" : "");
        else
            w = snprintf(buf + used, size - used, " %s%s%s", opt ? "[" : "", up, opt ? "]" : "");
        if (w < 0 || (size_t)w >= size - used) {
            cq_utf8_mark_cut(buf, size);
            break;
        }
        used += (size_t)w;
    }
    return buf;
}

char *w_bound_render(const struct w_bound_args *b) {
    size_t len = 1;
    for (size_t i = 0; b && b->cmd && i < b->n; i++)
        if (b->values[i]) len += strlen(b->cmd->args[i].name) + strlen(b->values[i]) + 2;
    char *s = malloc(len);
    if (!s) return NULL;
    s[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; b && b->cmd && i < b->n; i++) {
        if (!b->values[i]) continue;
        int w = snprintf(s + used, len - used, "%s%s=%s", used ? " " : "", b->cmd->args[i].name,
                         b->values[i]);
        if (w > 0) used += (size_t)w;
    }
    return s;
}
