/* chatopsctl send: plays the chat platform. Builds a Slack slash command (form, v0 signature)
 * or a Feishu im.message.receive_v1 event (encrypted and signed when an encrypt key is set),
 * posts it to the ingress, prints the ingress's answer, then follows the replies the notifier
 * posts to the platform (read back from the demo sink's GET /_log) until the final one. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "chatopsctl.h"
#include "chatopsctl_send.h"
#include "crypto.h"
#include "httpc.h"
#include "strutil.h"

struct send_opts {
    struct cq_ctl_target_opts t;
    const char *text;
};

/* ------------------------------------------------------------------ http */

struct buf {
    char *p;
    size_t len;
    int oom;
};

static size_t on_data(char *data, size_t size, size_t n, void *opaque) {
    struct buf *b = opaque;
    size_t add = size * n;
    if (b->len + add > (16u << 20)) return 0; /* 16 MiB is more than any sink log we read */
    char *np = realloc(b->p, b->len + add + 1);
    if (!np) {
        b->oom = 1;
        return 0;
    }
    memcpy(np + b->len, data, add);
    b->p = np;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

int cq_ctl_http_do(const char *method, const char *url, const char *const *headers,
                   const char *body, size_t body_len, int timeout_ms, struct cq_ctl_http *out) {
    struct buf b = {0};
    struct curl_slist *hl = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(out->err, sizeof out->err, "out of memory");
        return -1;
    }
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(hl, headers[i]);
        if (!n) {
            snprintf(out->err, sizeof out->err, "out of memory");
            goto out;
        }
        hl = n;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(out->err, sizeof out->err, "%s", b.oom ? "out of memory" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (!b.p && !(b.p = calloc(1, 1))) {
        snprintf(out->err, sizeof out->err, "out of memory");
        goto out;
    }
    out->body = b.p;
    out->len = b.len;
    b.p = NULL;
    rc = 0;
out:
    free(b.p);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc;
}

/* ------------------------------------------------------------------ helpers */

static char *xstrdup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void random_hex(char *out, size_t nbytes) {
    unsigned char r[32];
    if (nbytes > sizeof r) nbytes = sizeof r;
    if (cq_random_bytes(r, nbytes) != CQ_OK) memset(r, 0x5a, nbytes);
    cq_hex(r, nbytes, out);
}

/* base URL minus a trailing suffix such as "/api" (new string; caller frees). */
static char *strip_suffix(const char *url, const char *suffix) {
    size_t n = strlen(url), s = strlen(suffix);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= s && strncmp(url + n - s, suffix, s) == 0) n -= s;
    return xstrdup_n(url, n);
}

static int append(char **dst, size_t *len, const char *s) {
    size_t add = strlen(s);
    char *np = realloc(*dst, *len + add + 1);
    if (!np) return -1;
    memcpy(np + *len, s, add + 1);
    *dst = np;
    *len += add;
    return 0;
}

static int form_add(char **dst, size_t *len, const char *k, const char *v) {
    char *e = cq_url_escape(v, strlen(v));
    int rc = -1;
    if (!e) return -1;
    if ((*len && append(dst, len, "&")) || append(dst, len, k) || append(dst, len, "=") ||
        append(dst, len, e))
        goto out;
    rc = 0;
out:
    free(e);
    return rc;
}

/* Resolves --as/--channel/--platform against the config. Returns 0 or 2 (usage). */
static int resolve(const struct cq_config *cfg, const struct send_opts *o, struct target *t) {
    const struct cq_channel *ch = NULL;
    t->platform = o->t.platform;
    if (o->t.channel) {
        for (size_t i = 0; i < cfg->n_channels && !ch; i++)
            if (!strcmp(cfg->channels[i].name, o->t.channel) ||
                !strcmp(cfg->channels[i].id, o->t.channel))
                ch = &cfg->channels[i];
        if (ch && !t->platform) t->platform = ch->platform;
    }
    if (!t->platform) t->platform = "slack"; /* o->t.platform checked by parse_opts */
    if (ch && strcmp(ch->platform, t->platform) != 0) {
        fprintf(stderr, "chatopsctl: send: channel %s is a %s channel, not %s\n", ch->name,
                ch->platform, t->platform);
        return 2;
    }
    if (!o->t.channel) { /* the platform's first channel */
        for (size_t i = 0; i < cfg->n_channels && !ch; i++)
            if (!strcmp(cfg->channels[i].platform, t->platform)) ch = &cfg->channels[i];
        if (!ch) {
            fprintf(stderr, "chatopsctl: send: the config has no %s channel; use --channel ID\n",
                    t->platform);
            return 2;
        }
    }
    t->channel_id = ch ? ch->id : o->t.channel;
    t->channel_name = ch ? ch->name : o->t.channel;

    const struct cq_person *p = NULL;
    if (o->t.as) {
        for (size_t i = 0; i < cfg->n_people && !p; i++)
            if (!strcmp(cfg->people[i].name, o->t.as)) p = &cfg->people[i];
    } else { /* the person with the most roles who has an id on this platform */
        size_t best = 0;
        for (size_t i = 0; i < cfg->n_people; i++) {
            const struct cq_person *c = &cfg->people[i];
            char **ids = cq_person_ids(c, t->platform);
            size_t nr = 0;
            while (c->roles && c->roles[nr])
                nr++;
            if (ids && ids[0] && (!p || nr > best)) p = c, best = nr;
        }
        if (!p) {
            fprintf(stderr, "chatopsctl: send: nobody in the config has a %s id; use --as ID\n",
                    t->platform);
            return 2;
        }
    }
    if (p) {
        char **ids = cq_person_ids(p, t->platform);
        if (!ids || !ids[0]) {
            fprintf(stderr, "chatopsctl: send: %s has no %s id in the config\n", p->name,
                    t->platform);
            return 2;
        }
        t->user_id = ids[0];
        t->user_name = p->name;
    } else { /* a raw platform id: an unknown user */
        t->user_id = o->t.as;
        t->user_name = o->t.as;
    }
    return 0;
}

/* ------------------------------------------------------------------ requests */

static void outgoing_free(struct outgoing *g) {
    free(g->url);
    free(g->body);
    for (size_t i = 0; i < 6; i++)
        free(g->headers[i]);
    free(g->match);
}

/* Splits "/ops deploy web" into command "/ops" and text "deploy web" (Slack), or, for
 * text without a leading slash, the configured command and the whole text. */
static void split_command(const struct cq_config *cfg, const char *in, char **cmd, char **text) {
    while (*in == ' ')
        in++;
    if (*in == '/') {
        size_t n = strcspn(in, " ");
        *cmd = xstrdup_n(in, n);
        in += n;
        while (*in == ' ')
            in++;
    } else {
        *cmd = strdup(cfg->slack.command ? cfg->slack.command : "/ops");
    }
    *text = strdup(in);
}

static int build_slack(const struct cq_config *cfg, const struct send_opts *o,
                       const struct target *t, const char *ingress, const char *sink,
                       struct outgoing *g) {
    char *cmd = NULL, *text = NULL, *form = NULL;
    size_t flen = 0;
    int rc = 1;
    char hex[65], ts[32], sig[68], trigger[160], num[24];
    if (!cfg->slack.enabled || !cfg->slack.signing_secret.value) {
        fprintf(stderr, "chatopsctl: send: slack is not enabled in %s\n", cfg->path);
        return 1;
    }
    split_command(cfg, o->text, &cmd, &text);
    if (!cmd || !text) goto out;
    random_hex(hex, 16);
    snprintf(num, sizeof num, "%lld", (long long)time(NULL) * 1000 + (long long)(clock() % 1000));
    snprintf(trigger, sizeof trigger, "%s.%s.%s", num, "4744562912", hex);
    g->match = cq_strprintf("/response/commands/T0DEMO0001/%s/%s", num, hex);
    char *resp_url = g->match ? cq_strprintf("%s%s", sink, g->match) : NULL;
    if (!resp_url) goto out;
    int bad = form_add(&form, &flen, "token", "chatopsctl-legacy-token") ||
              form_add(&form, &flen, "team_id", "T0DEMO0001") ||
              form_add(&form, &flen, "team_domain", "chatops-demo") ||
              form_add(&form, &flen, "channel_id", t->channel_id) ||
              form_add(&form, &flen, "channel_name", t->channel_name) ||
              form_add(&form, &flen, "user_id", t->user_id) ||
              form_add(&form, &flen, "user_name", t->user_name) ||
              form_add(&form, &flen, "command", cmd) || form_add(&form, &flen, "text", text) ||
              form_add(&form, &flen, "api_app_id", "A0DEMO0001") ||
              form_add(&form, &flen, "is_enterprise_install", "false") ||
              form_add(&form, &flen, "response_url", resp_url) ||
              form_add(&form, &flen, "trigger_id", trigger);
    free(resp_url);
    if (bad) goto out;
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    cq_slack_signature(cfg->slack.signing_secret.value, ts, form, flen, sig);
    g->url = cq_strprintf("%s%s", ingress, cfg->ingress.slack_commands_path);
    g->headers[0] = strdup("Content-Type: application/x-www-form-urlencoded");
    g->headers[1] = cq_strprintf("X-Slack-Request-Timestamp: %s", ts);
    g->headers[2] = cq_strprintf("X-Slack-Signature: %s", sig);
    g->headers[3] = strdup("User-Agent: Slackbot 1.0 (+https://api.slack.com/robots)");
    if (!g->url || !g->headers[0] || !g->headers[1] || !g->headers[2] || !g->headers[3]) goto out;
    g->body = form;
    g->body_len = flen;
    form = NULL;
    rc = 0;
out:
    if (rc) fprintf(stderr, "chatopsctl: send: out of memory\n");
    free(cmd);
    free(text);
    free(form);
    return rc;
}

static int build_feishu(const struct cq_config *cfg, const struct send_opts *o,
                        const struct target *t, const char *ingress, struct outgoing *g) {
    char *cmd = NULL, *text = NULL, *content = NULL, *plain = NULL, *b64 = NULL;
    uint8_t *enc = NULL;
    cJSON *root = NULL;
    int rc = 1;
    const char *why = "out of memory"; /* what a failure prints */
    char event_id[33], msg_hex[33], ms[32], ts[32], nonce[33], sig[65];
    const char *vt = cfg->feishu.verification_token.value;
    const char *ek = cfg->feishu.encrypt_key.value;
    if (!cfg->feishu.enabled || !vt) {
        fprintf(stderr, "chatopsctl: send: feishu is not enabled in %s\n", cfg->path);
        return 1;
    }
    /* In Feishu the user @mentions the bot instead of typing a slash command. */
    split_command(cfg, o->text, &cmd, &text);
    if (!cmd || !text) goto out;
    random_hex(event_id, 16);
    random_hex(msg_hex, 16);
    snprintf(ms, sizeof ms, "%lld", (long long)time(NULL) * 1000);
    g->match = cq_strprintf("om_%s", msg_hex);
    content = cq_strprintf("@_user_1 %s", text);
    if (!g->match || !content) goto out;
    cJSON *ctext = cJSON_CreateObject();
    if (!ctext || !cJSON_AddStringToObject(ctext, "text", content)) {
        cJSON_Delete(ctext);
        goto out;
    }
    char *content_json = cJSON_PrintUnformatted(ctext);
    cJSON_Delete(ctext);
    if (!content_json) goto out;

    root = cJSON_CreateObject();
    cJSON *h = cJSON_AddObjectToObject(root, "header");
    cJSON *ev = cJSON_AddObjectToObject(root, "event");
    cJSON *sender = cJSON_AddObjectToObject(ev, "sender");
    cJSON *sid = cJSON_AddObjectToObject(sender, "sender_id");
    cJSON *msg = cJSON_AddObjectToObject(ev, "message");
    cJSON *mentions = cJSON_AddArrayToObject(msg, "mentions");
    cJSON *m1 = cJSON_CreateObject();
    cJSON *m1id = m1 ? cJSON_AddObjectToObject(m1, "id") : NULL;
    bool ok = root && h && ev && sender && sid && msg && mentions && m1 && m1id;
    if (ok) {
        cJSON_AddItemToArray(mentions, m1);
        m1 = NULL;
        cJSON_AddStringToObject(root, "schema", "2.0");
        cJSON_AddStringToObject(h, "event_id", event_id);
        cJSON_AddStringToObject(h, "event_type", "im.message.receive_v1");
        cJSON_AddStringToObject(h, "create_time", ms);
        cJSON_AddStringToObject(h, "token", vt);
        cJSON_AddStringToObject(h, "app_id", cfg->feishu.app_id ? cfg->feishu.app_id : "");
        cJSON_AddStringToObject(h, "tenant_key", "demo_tenant");
        cJSON_AddStringToObject(sid, "open_id", t->user_id);
        cJSON_AddStringToObject(sid, "user_id", t->user_name);
        cJSON_AddStringToObject(sid, "union_id", "");
        cJSON_AddStringToObject(sender, "sender_type", "user");
        cJSON_AddStringToObject(sender, "tenant_key", "demo_tenant");
        cJSON_AddStringToObject(msg, "message_id", g->match);
        cJSON_AddStringToObject(msg, "root_id", "");
        cJSON_AddStringToObject(msg, "parent_id", "");
        cJSON_AddStringToObject(msg, "create_time", ms);
        cJSON_AddStringToObject(msg, "chat_id", t->channel_id);
        cJSON_AddStringToObject(msg, "chat_type", "group");
        cJSON_AddStringToObject(msg, "message_type", "text");
        cJSON_AddStringToObject(msg, "content", content_json);
        cJSON *last = cJSON_GetArrayItem(mentions, 0);
        cJSON_AddStringToObject(last, "key", "@_user_1");
        cJSON *lid = cJSON_GetObjectItemCaseSensitive(last, "id");
        cJSON_AddStringToObject(lid, "open_id",
                                cfg->feishu.bot_open_id ? cfg->feishu.bot_open_id : "ou_bot");
        cJSON_AddStringToObject(lid, "union_id", "");
        cJSON_AddStringToObject(lid, "user_id", "");
        cJSON_AddStringToObject(last, "name", "ChatOps");
        cJSON_AddStringToObject(last, "tenant_key", "demo_tenant");
    }
    free(content_json);
    cJSON_Delete(m1);
    if (!ok || !(plain = cJSON_PrintUnformatted(root))) goto out;

    g->url = cq_strprintf("%s%s", ingress, cfg->ingress.feishu_events_path);
    g->headers[0] = strdup("Content-Type: application/json; charset=utf-8");
    if (!g->url || !g->headers[0]) goto out;
    if (ek) {
        uint8_t key[CQ_SHA256_LEN];
        size_t enc_len = 0;
        if (cq_sha256(ek, strlen(ek), key) != CQ_OK ||
            !(enc = cq_aes256cbc_encrypt(key, (const uint8_t *)plain, strlen(plain), &enc_len)) ||
            !(b64 = cq_base64_encode(enc, enc_len))) {
            why = "could not encrypt the Feishu event";
            goto out;
        }
        g->body = cq_strprintf("{\"encrypt\":\"%s\"}", b64);
        if (!g->body) goto out;
        g->body_len = strlen(g->body);
        snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
        random_hex(nonce, 16);
        cq_feishu_signature(ts, nonce, ek, g->body, g->body_len, sig);
        g->headers[1] = cq_strprintf("X-Lark-Request-Timestamp: %s", ts);
        g->headers[2] = cq_strprintf("X-Lark-Request-Nonce: %s", nonce);
        g->headers[3] = cq_strprintf("X-Lark-Signature: %s", sig);
        if (!g->headers[1] || !g->headers[2] || !g->headers[3]) goto out;
    } else {
        g->body = plain;
        g->body_len = strlen(plain);
        plain = NULL;
    }
    rc = 0;
out:
    if (rc) fprintf(stderr, "chatopsctl: send: %s\n", why);
    cJSON_Delete(root);
    free(cmd);
    free(text);
    free(content);
    free(plain);
    free(enc);
    free(b64);
    return rc;
}

/* ------------------------------------------------------------------ replies */

static void print_indented(const char *s) {
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, "\n");
        printf("  %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n') p++;
    }
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Prints a Slack message body (Block Kit section/context texts and buttons, else text).
 * Returns true when it is a final reply (not "Accepted" / "In progress"). */
static bool show_slack(const cJSON *msg) {
    const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(msg, "blocks");
    const cJSON *b;
    bool final = true, first = true;
    if (!cJSON_IsArray(blocks) || cJSON_GetArraySize(blocks) == 0) {
        const char *t = jstr(msg, "text");
        print_indented(t ? t : "");
        return true;
    }
    cJSON_ArrayForEach(b, blocks) {
        const char *type = jstr(b, "type");
        if (!type) continue;
        if (!strcmp(type, "section")) {
            const char *t = jstr(cJSON_GetObjectItemCaseSensitive(b, "text"), "text");
            if (!t) continue;
            if (first && (strstr(t, "*Accepted*") || strstr(t, "*In progress*"))) final = false;
            first = false;
            print_indented(t);
        } else if (!strcmp(type, "context")) {
            const cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(b, "elements")) {
                const char *t = jstr(e, "text");
                if (t) print_indented(t);
            }
        } else if (!strcmp(type, "actions")) {
            const cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(b, "elements")) {
                const char *label = jstr(cJSON_GetObjectItemCaseSensitive(e, "text"), "text");
                const char *url = jstr(e, "url");
                if (url) printf("  [%s] %s\n", label ? label : "link", url);
            }
        }
    }
    return final;
}

/* Prints a Feishu reply body (text, or an interactive card's title, texts and buttons). */
static void show_feishu(const cJSON *msg) {
    const char *type = jstr(msg, "msg_type"), *content = jstr(msg, "content");
    cJSON *c = content ? cJSON_Parse(content) : NULL;
    if (!c) {
        print_indented(content ? content : "");
        return;
    }
    if (type && !strcmp(type, "text")) {
        const char *t = jstr(c, "text");
        print_indented(t ? t : content);
    } else {
        const cJSON *hdr = cJSON_GetObjectItemCaseSensitive(c, "header");
        const char *title = jstr(cJSON_GetObjectItemCaseSensitive(hdr, "title"), "content");
        const cJSON *e;
        if (title) print_indented(title);
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "elements")) {
            const char *tag = jstr(e, "tag");
            if (!tag) continue;
            if (!strcmp(tag, "div")) {
                const char *t = jstr(cJSON_GetObjectItemCaseSensitive(e, "text"), "content");
                if (t) print_indented(t);
            } else if (!strcmp(tag, "action")) {
                const cJSON *a;
                cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(e, "actions")) {
                    const char *label =
                        jstr(cJSON_GetObjectItemCaseSensitive(a, "text"), "content");
                    const char *url = jstr(a, "url");
                    if (url) printf("  [%s] %s\n", label ? label : "link", url);
                }
            } else if (!strcmp(tag, "note")) {
                const cJSON *n;
                cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(e, "elements")) {
                    const char *t = jstr(n, "content");
                    if (t) print_indented(t);
                }
            }
        }
    }
    cJSON_Delete(c);
}

struct follow {
    const char *platform;
    const char *match;      /* response_url path or message_id */
    const char *channel_id; /* Slack fallback (chat.postMessage after 5 response_url uses) */
    double since;           /* epoch seconds when we sent */
    int seen;               /* log entries already looked at */
    int replies;
    int url_uses;
    char **uuids; /* Feishu uuids shown (a duplicate send is the same message) */
    size_t n_uuids;
};

/* Looks at new sink log entries; prints replies of ours. Returns 1 after a final one,
 * 0 otherwise, -1 when the log cannot be read. */
static int follow_step(const char *sink, struct follow *f) {
    struct cq_ctl_http r;
    char *url = cq_strprintf("%s/_log", sink);
    int rc = 0;
    if (!url) return -1;
    if (cq_ctl_http_do("GET", url, NULL, NULL, 0, 5000, &r) != 0 || r.status != 200) {
        fprintf(stderr, "chatopsctl: send: cannot read %s: %s\n", url,
                r.status ? "unexpected status" : r.err);
        free(url);
        free(r.body);
        return -1;
    }
    free(url);
    cJSON *log = cJSON_Parse(r.body);
    free(r.body);
    if (!cJSON_IsArray(log)) {
        cJSON_Delete(log);
        fprintf(stderr, "chatopsctl: send: the sink's /_log is not a JSON list\n");
        return -1;
    }
    int n = cJSON_GetArraySize(log);
    bool slack = !strcmp(f->platform, "slack");
    for (int i = f->seen; i < n && rc == 0; i++) {
        const cJSON *e = cJSON_GetArrayItem(log, i);
        const char *path = jstr(e, "path"), *body = jstr(e, "body");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "t");
        f->seen = i + 1;
        if (!path || !body || !cJSON_IsNumber(st) || st->valueint != 200) continue;
        cJSON *msg = cJSON_Parse(body);
        if (!msg) continue;
        if (cq_ctl_more_platform(f->platform)) { /* issue 18: a reply that names our match */
            if (strstr(path, f->match) || strstr(body, f->match)) {
                printf("%sreply:\n", ++f->replies > 1 ? "\n" : "");
                if (cq_ctl_more_show(body)) rc = 1;
            }
        } else if (slack) {
            bool ours = !strcmp(path, f->match);
            if (ours)
                f->url_uses++;
            else if (f->url_uses >= 5 && cJSON_IsNumber(t) && t->valuedouble >= f->since &&
                     (!strcmp(path, "/api/chat.postMessage") ||
                      !strcmp(path, "/api/chat.update"))) {
                const char *ch = jstr(msg, "channel");
                ours = ch && !strcmp(ch, f->channel_id);
            }
            if (ours) {
                const cJSON *ro = cJSON_GetObjectItemCaseSensitive(msg, "replace_original");
                printf("%s%s\n", ++f->replies > 1 ? "\n" : "",
                       cJSON_IsTrue(ro) ? "reply (updates the previous one):" : "reply:");
                if (show_slack(msg)) rc = 1;
            }
        } else {
            char want[160];
            snprintf(want, sizeof want, "/open-apis/im/v1/messages/%s/reply", f->match);
            const char *uuid = jstr(msg, "uuid");
            bool dup = false;
            for (size_t k = 0; uuid && k < f->n_uuids; k++)
                dup |= !strcmp(f->uuids[k], uuid);
            if (!strcmp(path, want) && !dup) {
                if (uuid) {
                    char **nu = realloc(f->uuids, (f->n_uuids + 1) * sizeof *nu);
                    if (nu && (nu[f->n_uuids] = strdup(uuid))) f->n_uuids++;
                    if (nu) f->uuids = nu;
                }
                printf("%sreply:\n", ++f->replies > 1 ? "\n" : "");
                show_feishu(msg);
                /* uuid = <request id>-<a|p|f>-<seq>: f is the final step */
                if (!uuid || !(strstr(uuid, "-a-") || strstr(uuid, "-p-"))) rc = 1;
            }
        }
        cJSON_Delete(msg);
    }
    cJSON_Delete(log);
    fflush(stdout);
    return rc;
}

/* ------------------------------------------------------------------ command */

int cq_ctl_target_opt(int argc, char **argv, int *i, struct cq_ctl_target_opts *o) {
    const char *a = argv[*i];
    const char **slot = !strcmp(a, "--as")         ? &o->as
                        : !strcmp(a, "--channel")  ? &o->channel
                        : !strcmp(a, "--platform") ? &o->platform
                        : !strcmp(a, "--ingress")  ? &o->ingress
                        : !strcmp(a, "--sink")     ? &o->sink
                                                   : NULL;
    if (!slot && strcmp(a, "--timeout") != 0) return CQ_CTL_OPT_NONE;
    if (*i + 1 >= argc) return CQ_CTL_OPT_NO_VALUE;
    if (slot) {
        *slot = argv[++*i];
    } else {
        char *end;
        o->timeout_s = strtod(argv[++*i], &end);
        if (*end || o->timeout_s <= 0) return CQ_CTL_OPT_BAD_TIMEOUT;
    }
    return CQ_CTL_OPT_TAKEN;
}

static int parse_opts(int argc, char **argv, struct send_opts *o) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int got = cq_ctl_target_opt(argc, argv, &i, &o->t);
        if (got == CQ_CTL_OPT_NO_VALUE) {
            fprintf(stderr, "chatopsctl: send: %s needs a value (try --help)\n", a);
            return 2;
        } else if (got == CQ_CTL_OPT_BAD_TIMEOUT) {
            fprintf(stderr, "chatopsctl: send: --timeout wants seconds > 0\n");
            return 2;
        } else if (got == CQ_CTL_OPT_TAKEN) {
            continue;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "chatopsctl: send: unknown option %s (try --help)\n", a);
            return 2;
        } else if (!o->text) {
            o->text = a;
        } else {
            fprintf(stderr, "chatopsctl: send: give the command as one quoted argument\n");
            return 2;
        }
    }
    if (!o->text || !*o->text) {
        fprintf(stderr, "chatopsctl: send: what to send? e.g. send '/ops help'\n");
        return 2;
    }
    if (o->t.platform && strcmp(o->t.platform, "slack") != 0 &&
        strcmp(o->t.platform, "feishu") != 0 && !cq_ctl_more_platform(o->t.platform)) {
        fprintf(stderr, "chatopsctl: send: --platform must be slack or feishu (or dingtalk, "
                        "mattermost, discord, webex)\n");
        return 2;
    }
    return 0;
}

int cq_ctl_send_usage(int argc, char **argv) {
    struct send_opts o = {.t.timeout_s = 60};
    return parse_opts(argc, argv, &o);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cq_ctl_send(const struct cq_config *cfg, int argc, char **argv) {
    struct send_opts o = {.t.timeout_s = 60};
    struct target t = {0};
    struct outgoing g = {0};
    struct follow f = {0};
    struct cq_ctl_http r = {0};
    char *ingress = NULL, *sink = NULL;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    if ((rc = resolve(cfg, &o, &t))) return rc;
    rc = 1;
    bool slack = !strcmp(t.platform, "slack");
    ingress =
        o.t.ingress ? strdup(o.t.ingress) : cq_strprintf("http://127.0.0.1:%d", cfg->ingress.port);
    bool more = cq_ctl_more_platform(t.platform);
    if (o.t.sink)
        sink = strip_suffix(o.t.sink, "");
    else if (more)
        sink = cq_ctl_more_sink(cfg, t.platform);
    else if (slack)
        sink = strip_suffix(cfg->slack.api_base, "/api");
    else
        sink = strip_suffix(cfg->feishu.api_base, "/open-apis");
    if (!ingress || !sink) {
        if (more && ingress)
            fprintf(stderr, "chatopsctl: send: give --sink URL (the %s fake's base URL)\n",
                    t.platform);
        else
            fprintf(stderr, "chatopsctl: send: out of memory\n");
        goto out;
    }
    if (more    ? cq_ctl_build_more(cfg, o.text, &t, ingress, sink, &g)
        : slack ? build_slack(cfg, &o, &t, ingress, sink, &g)
                : build_feishu(cfg, &o, &t, ingress, &g))
        goto out;

    printf("%s %s in %s (%s): %s\n", t.user_name, t.user_id, t.channel_name, t.platform, o.text);
    f = (struct follow){
        .platform = t.platform, .match = g.match, .channel_id = t.channel_id, .since = now_s() - 1};
    /* Skip what the sink already holds: only replies that arrive from now on are ours. */
    double start = now_s();
    if (cq_ctl_http_do("POST", g.url, (const char *const *)g.headers, g.body, g.body_len, 10000,
                       &r) != 0) {
        fprintf(stderr, "chatopsctl: send: ingress %s: %s\n", g.url, r.err);
        goto out;
    }
    if (r.status != 200) {
        fprintf(stderr, "chatopsctl: send: ingress answered HTTP %ld: %.300s\n", r.status,
                r.body ? r.body : "");
        goto out;
    }
    {
        cJSON *a = cJSON_Parse(r.body);
        const char *txt = a ? jstr(a, "text") : NULL;
        printf("ingress: HTTP %ld%s%s\n", r.status, txt || r.len ? ": " : "", txt ? txt : r.body);
        cJSON_Delete(a);
    }
    fflush(stdout);
    for (;;) {
        int s = follow_step(sink, &f);
        if (s < 0) goto out;
        if (s > 0) break;
        if (now_s() - start > o.t.timeout_s) {
            fprintf(stderr, "chatopsctl: send: no final reply within %.0f s (%d replies seen)\n",
                    o.t.timeout_s, f.replies);
            goto out;
        }
        usleep(250 * 1000);
    }
    rc = 0;
out:
    for (size_t i = 0; i < f.n_uuids; i++)
        free(f.uuids[i]);
    free(f.uuids);
    free(r.body);
    outgoing_free(&g);
    free(ingress);
    free(sink);
    return rc;
}
