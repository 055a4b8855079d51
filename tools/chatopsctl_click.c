/* chatopsctl click: plays a person clicking one of the buttons of a parked request (issue 16):
 * posts a Slack block_actions payload (form field `payload`, v0 signature) or a Feishu
 * card.action.trigger callback (encrypted and signed when an encrypt key is set) to the
 * ingress exactly as the platform would, prints the ingress's answer, then the reply the
 * worker gives the clicker (read back from the demo sink's GET /_log). `approve REQ` and
 * `deny REQ` are short for `click approve REQ` / `click deny REQ`. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "chatopsctl.h"
#include "crypto.h"
#include "httpc.h"
#include "strutil.h"

struct click_opts {
    struct cq_ctl_target_opts t;
    const char *action, *rid;
};

static int usage_err(const char *why) {
    fprintf(stderr, "chatopsctl: click: %s (try --help)\n", why);
    return 2;
}

static int parse(int argc, char **argv, struct click_opts *o) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int got = cq_ctl_target_opt(argc, argv, &i, &o->t);
        if (got == CQ_CTL_OPT_NO_VALUE) {
            return usage_err("an option needs a value");
        } else if (got == CQ_CTL_OPT_BAD_TIMEOUT) {
            return usage_err("--timeout wants seconds > 0");
        } else if (got == CQ_CTL_OPT_TAKEN) {
            continue;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_err("unknown option");
        } else if (!o->action) {
            o->action = a;
        } else if (!o->rid) {
            o->rid = a;
        } else {
            return usage_err("too many arguments");
        }
    }
    if (!o->action || !o->rid) return usage_err("usage: click approve|deny|confirm|cancel REQ");
    if (strcmp(o->action, "approve") && strcmp(o->action, "deny") && strcmp(o->action, "confirm") &&
        strcmp(o->action, "cancel"))
        return usage_err("the action is approve, deny, confirm or cancel");
    if (strlen(o->rid) > 128 || strspn(o->rid, "0123456789abcdefABCDEF-") != strlen(o->rid))
        return usage_err("REQ is the request id the message shows");
    if (o->t.platform && strcmp(o->t.platform, "slack") && strcmp(o->t.platform, "feishu"))
        return usage_err("--platform must be slack or feishu");
    return 0;
}

int cq_ctl_click_usage(int argc, char **argv) {
    struct click_opts o = {.t.timeout_s = 15};
    return parse(argc, argv, &o);
}

/* The clicker's id on the platform and the channel id (borrowed from cfg). */
static int who_where(const struct cq_config *cfg, const struct click_opts *o, bool slack,
                     const char **uid, const char **uname, const char **chan) {
    const char *plat = slack ? "slack" : "feishu";
    *chan = NULL;
    for (size_t i = 0; i < cfg->n_channels && !*chan; i++)
        if (!strcmp(cfg->channels[i].platform, plat) &&
            (!o->t.channel || !strcmp(cfg->channels[i].name, o->t.channel) ||
             !strcmp(cfg->channels[i].id, o->t.channel)))
            *chan = cfg->channels[i].id;
    if (!*chan) *chan = o->t.channel ? o->t.channel : "C0DEMO";
    *uid = *uname = o->t.as;
    for (size_t i = 0; o->t.as && i < cfg->n_people; i++) {
        char **ids = slack ? cfg->people[i].slack_ids : cfg->people[i].feishu_ids;
        if (!strcmp(cfg->people[i].name, o->t.as) && ids && ids[0]) *uid = ids[0];
    }
    if (!*uid) {
        fprintf(stderr, "chatopsctl: click: who clicks? --as PERSON\n");
        return 2;
    }
    return 0;
}

static char *slack_click(const struct cq_config *cfg, const struct click_opts *o, const char *uid,
                         const char *uname, const char *chan, const char *resp_url,
                         char **headers) {
    char ts[32], sig[68], ats[48], trig[40], id[32];
    cJSON *p = cJSON_CreateObject(), *u, *t, *c, *ch, *acts, *a;
    char *json = NULL, *esc = NULL, *form = NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(ats, sizeof ats, "%lld.%06ld", (long long)now.tv_sec, now.tv_nsec / 1000);
    unsigned char r[8];
    if (cq_random_bytes(r, sizeof r) != CQ_OK) memset(r, 0x5a, sizeof r);
    cq_hex(r, sizeof r, trig);
    snprintf(id, sizeof id, "chatops_%s", o->action);
    if (!p || !(u = cJSON_AddObjectToObject(p, "user")) ||
        !(t = cJSON_AddObjectToObject(p, "team")) ||
        !(c = cJSON_AddObjectToObject(p, "container")) ||
        !(ch = cJSON_AddObjectToObject(p, "channel")) ||
        !(acts = cJSON_AddArrayToObject(p, "actions")) || !(a = cJSON_CreateObject()))
        goto out;
    cJSON_AddItemToArray(acts, a);
    cJSON_AddStringToObject(p, "type", "block_actions");
    cJSON_AddStringToObject(u, "id", uid);
    cJSON_AddStringToObject(u, "username", uname);
    cJSON_AddStringToObject(t, "id", "T0DEMO0001");
    cJSON_AddStringToObject(c, "type", "message");
    cJSON_AddStringToObject(c, "message_ts", ats);
    cJSON_AddStringToObject(c, "channel_id", chan);
    cJSON_AddStringToObject(ch, "id", chan);
    cJSON_AddStringToObject(p, "trigger_id", trig);
    cJSON_AddStringToObject(p, "response_url", resp_url);
    cJSON_AddStringToObject(a, "type", "button");
    cJSON_AddStringToObject(a, "action_id", id);
    cJSON_AddStringToObject(a, "block_id", "chatops_choice");
    cJSON_AddStringToObject(a, "value", o->rid);
    cJSON_AddStringToObject(a, "action_ts", ats);
    if (!(json = cJSON_PrintUnformatted(p)) || !(esc = cq_url_escape(json, strlen(json))) ||
        !(form = cq_strprintf("payload=%s", esc)))
        goto out;
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    cq_slack_signature(cfg->slack.signing_secret.value, ts, form, strlen(form), sig);
    headers[0] = strdup("Content-Type: application/x-www-form-urlencoded");
    headers[1] = cq_strprintf("X-Slack-Request-Timestamp: %s", ts);
    headers[2] = cq_strprintf("X-Slack-Signature: %s", sig);
out:
    cJSON_Delete(p);
    free(json);
    free(esc);
    return form;
}

static char *feishu_click(const struct cq_config *cfg, const struct click_opts *o, const char *uid,
                          const char *chan, const char *msg_id, char **headers) {
    char ev_id[33], ts[32], nonce[33], sig[65];
    unsigned char r[16];
    const char *ek = cfg->feishu.encrypt_key.value;
    cJSON *root = cJSON_CreateObject(), *h, *e, *op, *act, *v, *ctx;
    char *plain = NULL, *b64 = NULL, *body = NULL;
    uint8_t *enc = NULL;
    if (cq_random_bytes(r, sizeof r) != CQ_OK) memset(r, 0x5a, sizeof r);
    cq_hex(r, sizeof r, ev_id);
    if (!root || !(h = cJSON_AddObjectToObject(root, "header")) ||
        !(e = cJSON_AddObjectToObject(root, "event")) ||
        !(op = cJSON_AddObjectToObject(e, "operator")) ||
        !(act = cJSON_AddObjectToObject(e, "action")) ||
        !(v = cJSON_AddObjectToObject(act, "value")) ||
        !(ctx = cJSON_AddObjectToObject(e, "context")))
        goto out;
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL) * 1000);
    cJSON_AddStringToObject(root, "schema", "2.0");
    cJSON_AddStringToObject(h, "event_id", ev_id);
    cJSON_AddStringToObject(h, "event_type", "card.action.trigger");
    cJSON_AddStringToObject(h, "token", cfg->feishu.verification_token.value);
    cJSON_AddStringToObject(h, "create_time", ts);
    cJSON_AddStringToObject(h, "tenant_key", "demo_tenant");
    cJSON_AddStringToObject(h, "app_id", cfg->feishu.app_id ? cfg->feishu.app_id : "");
    cJSON_AddStringToObject(op, "open_id", uid);
    cJSON_AddStringToObject(op, "tenant_key", "demo_tenant");
    cJSON_AddStringToObject(act, "tag", "button");
    cJSON_AddStringToObject(v, "chatops", o->action);
    cJSON_AddStringToObject(v, "request_id", o->rid);
    cJSON_AddStringToObject(e, "host", "im_message");
    cJSON_AddStringToObject(ctx, "open_message_id", msg_id);
    cJSON_AddStringToObject(ctx, "open_chat_id", chan);
    if (!(plain = cJSON_PrintUnformatted(root))) goto out;
    headers[0] = strdup("Content-Type: application/json; charset=utf-8");
    if (!ek) {
        body = plain;
        plain = NULL;
        goto out;
    }
    uint8_t key[CQ_SHA256_LEN];
    size_t enc_len = 0;
    if (cq_sha256(ek, strlen(ek), key) != CQ_OK ||
        !(enc = cq_aes256cbc_encrypt(key, (const uint8_t *)plain, strlen(plain), &enc_len)) ||
        !(b64 = cq_base64_encode(enc, enc_len)) ||
        !(body = cq_strprintf("{\"encrypt\":\"%s\"}", b64)))
        goto out;
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    cq_hex(r, sizeof r, nonce);
    cq_feishu_signature(ts, nonce, ek, body, strlen(body), sig);
    headers[1] = cq_strprintf("X-Lark-Request-Timestamp: %s", ts);
    headers[2] = cq_strprintf("X-Lark-Request-Nonce: %s", nonce);
    headers[3] = cq_strprintf("X-Lark-Signature: %s", sig);
out:
    cJSON_Delete(root);
    free(plain);
    free(enc);
    free(b64);
    return body;
}

/* Prints what the sink received at path (Slack: a response_url post's text; Feishu: the
 * reply's content) until one arrives or the time runs out. 0 when one did. */
static int follow(const char *sink, const char *path, double timeout_s) {
    char *url = cq_strprintf("%s/_log", sink);
    time_t end = time(NULL) + (time_t)timeout_s;
    int rc = 1;
    while (url && rc && time(NULL) <= end) {
        struct cq_ctl_http r;
        if (cq_ctl_http_do("GET", url, NULL, NULL, 0, 5000, &r) == 0 && r.status == 200) {
            cJSON *log = cJSON_Parse(r.body), *e;
            cJSON_ArrayForEach(e, log) {
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "body");
                if (!cJSON_IsString(p) || !cJSON_IsString(b) || strcmp(p->valuestring, path))
                    continue;
                cJSON *m = cJSON_Parse(b->valuestring), *blk;
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "text");
                const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
                printf("reply: %s\n", cJSON_IsString(t)   ? t->valuestring
                                      : cJSON_IsString(c) ? c->valuestring
                                                          : b->valuestring);
                /* Slack: the message itself is in the section blocks */
                cJSON_ArrayForEach(blk, cJSON_GetObjectItemCaseSensitive(m, "blocks")) {
                    const cJSON *bt = cJSON_GetObjectItemCaseSensitive(blk, "text");
                    const cJSON *s = cJSON_GetObjectItemCaseSensitive(bt, "text");
                    if (cJSON_IsString(s)) printf("  %s\n", s->valuestring);
                }
                cJSON_Delete(m);
                rc = 0;
            }
            cJSON_Delete(log);
        }
        free(r.body);
        if (rc) usleep(250 * 1000);
    }
    free(url);
    if (rc) fprintf(stderr, "chatopsctl: click: no reply within %.0f s\n", timeout_s);
    return rc;
}

int cq_ctl_click(const struct cq_config *cfg, int argc, char **argv) {
    struct click_opts o = {.t.timeout_s = 15};
    char *headers[5] = {0}, *body = NULL, *url = NULL, *sink = NULL, *path = NULL, hex[17];
    const char *uid, *uname, *chan;
    struct cq_ctl_http r = {0};
    unsigned char rnd[8];
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    bool slack = !o.t.platform || !strcmp(o.t.platform, "slack");
    if ((rc = who_where(cfg, &o, slack, &uid, &uname, &chan))) return rc;
    rc = 1;
    if (slack ? !cfg->slack.signing_secret.value : !cfg->feishu.verification_token.value) {
        fprintf(stderr, "chatopsctl: click: %s is not enabled in %s\n", slack ? "slack" : "feishu",
                cfg->path);
        return 1;
    }
    if (cq_random_bytes(rnd, sizeof rnd) != CQ_OK) memset(rnd, 0x5a, sizeof rnd);
    cq_hex(rnd, sizeof rnd, hex);
    const char *base = o.t.sink ? o.t.sink : slack ? cfg->slack.api_base : cfg->feishu.api_base;
    size_t bl = strlen(base);
    const char *suffix = slack ? "/api" : "/open-apis";
    if (!o.t.sink && bl >= strlen(suffix) && !strcmp(base + bl - strlen(suffix), suffix))
        bl -= strlen(suffix);
    sink = cq_strprintf("%.*s", (int)bl, base);
    path = slack ? cq_strprintf("/response/actions/%s", hex)
                 : cq_strprintf("/open-apis/im/v1/messages/om_%s/reply", hex);
    char *target =
        sink && path && slack ? cq_strprintf("%s%s", sink, path) : cq_strprintf("om_%s", hex);
    url = o.t.ingress ? cq_strprintf("%s%s", o.t.ingress,
                                     slack ? cfg->ingress.slack_actions_path
                                           : cfg->ingress.feishu_cards_path)
                      : cq_strprintf("http://127.0.0.1:%d%s", cfg->ingress.port,
                                     slack ? cfg->ingress.slack_actions_path
                                           : cfg->ingress.feishu_cards_path);
    if (target && url)
        body = slack ? slack_click(cfg, &o, uid, uname, chan, target, headers)
                     : feishu_click(cfg, &o, uid, chan, target, headers);
    free(target);
    if (!body || !headers[0]) {
        fprintf(stderr, "chatopsctl: click: out of memory\n");
        goto out;
    }
    printf("%s %s clicks %s on %s (%s)\n", o.t.as, uid, o.action, o.rid,
           slack ? "slack" : "feishu");
    if (cq_ctl_http_do("POST", url, (const char *const *)headers, body, strlen(body), 10000, &r)) {
        fprintf(stderr, "chatopsctl: click: ingress %s: %s\n", url, r.err);
        goto out;
    }
    printf("ingress: HTTP %ld\n", r.status);
    if (r.status != 200) {
        fprintf(stderr, "chatopsctl: click: ingress answered HTTP %ld: %.300s\n", r.status, r.body);
        goto out;
    }
    fflush(stdout);
    rc = follow(sink, path, o.t.timeout_s);
out:
    for (size_t i = 0; i < 5; i++)
        free(headers[i]);
    free(r.body);
    free(body);
    free(url);
    free(sink);
    free(path);
    return rc;
}
