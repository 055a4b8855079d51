/* chatopsctl identity USER [--platform P] [--flush]: what the worker believes about a chat
 * user (issue 17), for operators: a person of people: (static, never cached), or the
 * identity cache entry the worker keeps in Redis (common/identity_cache.h): GitLab login,
 * roles, where each came from, its age and remaining time; --flush deletes the entry so the
 * next request looks the user up again (a person removed from a GitLab group loses the role
 * at once). Blocking: this is a CLI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "chatopsctl.h"
#include "identity_cache.h"
#include "redis.h"

static const char usage[] = "usage: chatopsctl identity USER [--platform slack|feishu] [--flush]";

struct args {
    const char *user, *platform;
    int flush;
};

static int parse(int argc, char **argv, struct args *a) {
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--flush")) {
            a->flush = 1;
        } else if (!strcmp(argv[i], "--platform") && i + 1 < argc) {
            a->platform = argv[++i];
            if (strcmp(a->platform, "slack") != 0 && strcmp(a->platform, "feishu") != 0) {
                fprintf(stderr, "chatopsctl: identity: --platform is slack or feishu\n");
                return 2;
            }
        } else if (argv[i][0] == '-' || a->user) {
            fprintf(stderr, "chatopsctl: identity: unexpected '%s' (%s)\n", argv[i], usage);
            return 2;
        } else {
            a->user = argv[i];
        }
    }
    if (!a->user || !a->user[0]) {
        fprintf(stderr, "chatopsctl: identity needs a USER (%s)\n", usage);
        return 2;
    }
    return 0;
}

int cq_ctl_identity_usage(int argc, char **argv) {
    struct args a;
    return parse(argc, argv, &a);
}

static void print_list(char **l) {
    size_t n = 0;
    for (char **p = l; p && *p; p++)
        printf("%s%s", n++ ? ", " : "", *p);
    if (!n) printf("(none)");
}

/* A person of people: named name (or with this platform id): printed; 1 when found. */
static int show_static(const struct cq_config *cfg, const char *platform, const char *user) {
    for (size_t i = 0; i < cfg->n_people; i++) {
        const struct cq_person *p = &cfg->people[i];
        char **ids = !strcmp(platform, "feishu") ? p->feishu_ids : p->slack_ids;
        bool named = p->name && !strcmp(p->name, user);
        bool has_id = false;
        for (char **id = ids; id && *id; id++)
            has_id = has_id || !strcmp(*id, user);
        if (!named && !has_id) continue;
        printf("%s: static (people: %s in the config; never cached)\n", user, p->name);
        printf("  GitLab login: %s\n", p->gitlab_login ? p->gitlab_login : "(none)");
        printf("  roles: ");
        print_list(p->roles);
        printf(" (from people:)\n  slack: ");
        print_list(p->slack_ids);
        printf("\n  feishu: ");
        print_list(p->feishu_ids);
        printf("\n");
        return 1;
    }
    return 0;
}

int cq_ctl_identity(const struct cq_config *cfg, int argc, char **argv) {
    struct args a;
    struct cq_err err = {0};
    redisReply *r = NULL, *ttl = NULL;
    char *key = NULL;
    int rc = parse(argc, argv, &a);
    if (rc) return rc;
    const char *platform = a.platform ? a.platform : "slack";
    if (show_static(cfg, platform, a.user)) {
        if (a.flush) printf("nothing to flush: people: always wins for this user\n");
        return 0;
    }
    if (!(key = cq_ident_key(cfg->redis.prefix, platform, a.user))) {
        fprintf(stderr, "chatopsctl: identity: out of memory\n");
        return 1;
    }
    redisContext *c = cq_redis_connect_cfg_sync(cfg, 3000, &err);
    rc = 1;
    if (!c) {
        fprintf(stderr, "chatopsctl: identity: %s\n", err.msg);
        goto out;
    }
    r = redisCommand(c, "GET %s", key);
    ttl = r ? redisCommand(c, "PTTL %s", key) : NULL;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "chatopsctl: identity: GET %s failed: %s\n", key, r ? r->str : c->errstr);
        goto out;
    }
    if (r->type != REDIS_REPLY_STRING) {
        printf("%s user %s: nothing cached (the next request looks it up) [%s]\n", platform, a.user,
               key);
        rc = 0;
        goto out;
    }
    struct cq_ident_entry e;
    if (cq_ident_decode(r->str, r->len, &e, &err) != CQ_OK) {
        printf("%s user %s: unreadable cache entry (%s) [%s]\n", platform, a.user, err.msg, key);
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        char age[32], left[32];
        cq_ident_age(now_ms - e.at_ms, age);
        cq_ident_age(ttl && ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : 0, left);
        if (e.resolved) {
            printf("%s user %s: GitLab login %s (user #%lld, %s)\n", platform, a.user, e.login,
                   e.gitlab_id, e.gitlab_state ? e.gitlab_state : "?");
            printf("  login from: %s\n  roles: ", e.login_source ? e.login_source : "?");
            print_list(e.roles);
            printf("\n  roles from: %s\n", e.roles_source ? e.roles_source : "?");
        } else {
            printf("%s user %s: no GitLab account\n  why: %s\n", platform, a.user,
                   e.reason ? e.reason : "?");
        }
        printf("  cached %s ago, expires in %s [%s]\n", age, left, key);
        cq_ident_clear(&e);
    }
    rc = 0;
    if (a.flush) {
        redisReply *d = redisCommand(c, "DEL %s", key);
        if (d && d->type == REDIS_REPLY_INTEGER) {
            printf("flushed: the next request of %s user %s looks it up again\n", platform, a.user);
        } else {
            fprintf(stderr, "chatopsctl: identity: DEL %s failed\n", key);
            rc = 1;
        }
        if (d) freeReplyObject(d);
    }
out:
    if (r) freeReplyObject(r);
    if (ttl) freeReplyObject(ttl);
    if (c) redisFree(c);
    free(key);
    return rc;
}
