/* config_secret: secrets in the config. While loading, a "${ENV}" or "file:path" reference
 * is resolved (config.c's F_SECRET fields and the secrets: section); on a loaded config, a
 * named secret is looked up and every known secret value can be cut out of a text
 * (cq_config_redact). Messages name the reference, never the value. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

#define MAX_SECRET_BYTES 65536

static bool env_name_ok(const char *s, size_t n) {
    if (n == 0 || (!isalpha((unsigned char)s[0]) && s[0] != '_')) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') return false;
    return true;
}

/* Reads a secret file into a new string with trailing newlines removed.
 * On failure returns NULL with errno (0 = too big or holds a NUL byte). */
static char *read_secret_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) return NULL;
    buf = malloc(MAX_SECRET_BYTES + 1);
    if (!buf) goto out;
    size_t n = fread(buf, 1, MAX_SECRET_BYTES + 1, f);
    if (ferror(f)) goto out;
    if (n > MAX_SECRET_BYTES || memchr(buf, '\0', n)) {
        errno = 0;
        goto out;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *len = n;
    fclose(f);
    return buf;
out:;
    int e = errno;
    if (buf) memset(buf, 0, MAX_SECRET_BYTES + 1);
    free(buf);
    fclose(f);
    errno = e;
    return NULL;
}

void cq_cfg_secret_clear(struct cq_secret *s) {
    free(s->ref);
    if (s->value) {
        volatile char *p = s->value;
        while (*p)
            *p++ = '\0';
    }
    free(s->value);
    s->ref = s->value = NULL;
}

static enum cq_rc resolve_secret_now(struct ctx *c, const struct cq_ynode *v,
                                     struct cq_secret *out);

/* Resolves "${ENV}" or "file:path" (relative to the config's directory). Messages
 * name the reference, never what it resolves to. In a lenient load a secret that is not
 * there (unset or empty variable, unreadable or empty file) is reported and left
 * unresolved; a malformed reference is still an error. */
enum cq_rc cq_cfg_resolve_secret(struct ctx *c, const struct cq_ynode *v, struct cq_secret *out) {
    enum cq_rc rc = resolve_secret_now(c, v, out);
    bool syntax = !(v->value[0] == '$' || strncmp(v->value, "file:", 5) == 0) ||
                  strcmp(v->value, "file:") == 0;
    if (rc != CQ_ECONFIG || !c->unresolved || syntax || strstr(c->err->msg, "too long") ||
        strstr(c->err->msg, "must be"))
        return rc;
    c->unresolved(c->unresolved_arg, c->err->msg);
    cq_err_clear(c->err);
    cq_cfg_secret_clear(out);
    return (out->ref = strdup(v->value)) ? CQ_OK : cq_cfg_nomem(c);
}

static enum cq_rc resolve_secret_now(struct ctx *c, const struct cq_ynode *v,
                                     struct cq_secret *out) {
    const char *ref = v->value;
    size_t rl = v->len;
    char *value = NULL;
    enum cq_rc rc = CQ_OK;

    if (rl >= 3 && ref[0] == '$' && ref[1] == '{' && ref[rl - 1] == '}' &&
        env_name_ok(ref + 2, rl - 3)) {
        char name[128];
        if (rl - 3 >= sizeof(name))
            return cq_cfg_fail(c, v, "environment variable name is too long");
        memcpy(name, ref + 2, rl - 3);
        name[rl - 3] = '\0';
        const char *e = getenv(name);
        if (!e) return cq_cfg_fail(c, v, "environment variable %s is not set", name);
        if (!*e) return cq_cfg_fail(c, v, "environment variable %s is empty", name);
        value = strdup(e);
        if (!value) return cq_cfg_nomem(c);
    } else if (strncmp(ref, "file:", 5) == 0) {
        const char *p = ref + 5;
        char full[PATH_MAX];
        size_t len = 0;
        if (!*p) return cq_cfg_fail(c, v, "file: needs a path");
        if (p[0] == '/' || !c->dir)
            snprintf(full, sizeof(full), "%s", p);
        else
            snprintf(full, sizeof(full), "%s/%s", c->dir, p);
        value = read_secret_file(full, &len);
        if (!value) {
            if (errno == ENOMEM) return cq_cfg_nomem(c);
            return cq_cfg_fail(c, v, "cannot read secret file %s: %s", full,
                               errno ? strerror(errno) : "too big or not text");
        }
        if (len == 0) {
            free(value);
            return cq_cfg_fail(c, v, "secret file %s is empty", full);
        }
    } else {
        return cq_cfg_fail(c, v, "secrets must be ${ENV_VAR} or file:/path");
    }
    cq_cfg_secret_clear(out);
    out->value = value;
    out->ref = strdup(ref);
    if (!out->ref) rc = cq_cfg_nomem(c);
    return rc;
}

const char *cq_config_secret(const struct cq_config *cfg, const char *name) {
    for (size_t i = 0; cfg && name && i < cfg->n_secrets; i++)
        if (strcmp(cfg->secrets[i].name, name) == 0) return cfg->secrets[i].secret.value;
    return NULL;
}

static char *redact_one(char *text, const char *secret) {
    static const char mark[] = "[redacted]";
    size_t sl = secret ? strlen(secret) : 0, n = 0;
    if (!text || sl == 0) return text;
    for (const char *p = strstr(text, secret); p; p = strstr(p + sl, secret))
        n++;
    if (n == 0) return text;
    size_t tl = strlen(text), ml = sizeof(mark) - 1;
    char *out = malloc(tl - n * sl + n * ml + 1), *o = out;
    if (!out) {
        free(text);
        return NULL;
    }
    const char *p = text;
    for (const char *h = strstr(p, secret); h; h = strstr(p, secret)) {
        memcpy(o, p, (size_t)(h - p));
        o += h - p;
        memcpy(o, mark, ml);
        o += ml;
        p = h + sl;
    }
    strcpy(o, p);
    free(text);
    return out;
}

char *cq_config_redact(const struct cq_config *cfg, char *text) {
    if (!cfg) return text;
    for (size_t i = 0; text && i < cfg->n_secrets; i++)
        text = redact_one(text, cfg->secrets[i].secret.value);
    const char *fixed[] = {cfg->slack.signing_secret.value, cfg->slack.bot_token.value,
                           cfg->feishu.app_secret.value,    cfg->feishu.verification_token.value,
                           cfg->feishu.encrypt_key.value,   cfg->gitlab.api_token.value,
                           cfg->gitlab.webhook_token.value, cfg->redis.password.value};
    for (size_t i = 0; text && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        text = redact_one(text, fixed[i]);
    text = redact_one(redact_one(text, cfg->kafka.sasl_password.value),
                      cfg->kafka.ssl_key_password.value);
    const char *more[] = {cfg->dingtalk.app_secret.value, cfg->webex.webhook_secret.value,
                          cfg->webex.bot_token.value, cfg->discord.bot_token.value}; /* issue 18 */
    for (size_t i = 0; text && i < sizeof(more) / sizeof(more[0]); i++)
        text = redact_one(text, more[i]);
    for (size_t i = 0; text && i < cfg->mattermost.n_tokens; i++)
        text = redact_one(text, cfg->mattermost.tokens[i].secret.value);
    text = redact_one(text, cfg->identity.gitlab_token.value);
    text = redact_one(text, cfg->mattermost.bot_token.value); /* issue 18, notifier */
    for (size_t i = 0; text && i < cfg->kafka.n_properties; i++)
        if (cfg->kafka.properties[i].value.ref) /* secret-valued property */
            text = redact_one(text, cfg->kafka.properties[i].value.value);
    for (size_t i = 0; text && i < cfg->gitlab.n_hooks; i++)
        text = redact_one(text, cfg->gitlab.hooks[i].token.value);
    return text;
}
