/* test_config_reload: what a live reload (SIGHUP) keeps and swaps. The keys that need a
 * restart keep the running config's value and are named (never their values); everything
 * else comes from the new file; kafka.client_conf is rebuilt on the kept values so the new
 * config owns all it points to (the old one can be freed: ASan checks it); references count
 * so the last one frees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_reload.h"
#include "cqtest.h"

#define PW1 "SASL-first-pw-1"
#define PW2 "SASL-second-pw-2"

static const char *const BASE = "kafka:\n"
                                "  brokers: \"%s\"\n"
                                "  partitions: %d\n"
                                "  security_protocol: sasl_plaintext\n"
                                "  sasl: {mechanism: PLAIN, username: u, password: \"${%s}\"}\n"
                                "  properties: {linger.ms: \"%d\"}\n"
                                "redis: {port: %d}\n"
                                "limits: {max_text: %d}\n"
                                "worker: {http_port: %d, max_request_age_s: %d}\n";

static struct cq_config *load(const char *brokers, int parts, const char *pwvar, int linger,
                              int rport, int max_text, int http_port, int age) {
    char y[1024];
    struct cq_err err = {0};
    snprintf(y, sizeof y, BASE, brokers, parts, pwvar, linger, rport, max_text, http_port, age);
    struct cq_config *c = cq_config_load_string("r.yaml", y, strlen(y), &err);
    if (!c) fprintf(stderr, "load: %s\n", err.msg);
    return c;
}

static char changed[512];

static void on_changed(void *arg, const char *key) {
    (void)arg;
    strncat(changed, key, sizeof(changed) - strlen(changed) - 2);
    strcat(changed, ",");
}

static const char *conf_get(const struct cq_config *c, const char *k) {
    for (size_t i = 0; c->kafka.client_conf && c->kafka.client_conf[i]; i += 2)
        if (!strcmp(c->kafka.client_conf[i], k)) return c->kafka.client_conf[i + 1];
    return NULL;
}

TEST(keeps_restart_keys) {
    setenv("CQT_PW1", PW1, 1);
    setenv("CQT_PW2", PW2, 1);
    struct cq_config *cur = load("a:9092", 3, "CQT_PW1", 5, 6379, 100, 8081, 600);
    struct cq_config *next = load("b:9092", 6, "CQT_PW2", 7, 6380, 200, 9999, 900);
    CHECK(cur && next);
    if (!cur || !next) return;
    struct cq_err err = {0};
    changed[0] = '\0';
    CHECK(cq_config_keep_restart_keys(next, cur, on_changed, NULL, &err) == CQ_OK);
    CHECK_STR(changed, "kafka.brokers,kafka.partitions,kafka.sasl.password,kafka.properties,"
                       "redis.port,worker.http_port,");
    CHECK(strstr(changed, PW1) == NULL && strstr(changed, PW2) == NULL);
    cq_config_free(cur); /* next must not point into it */
    CHECK_STR(next->kafka.brokers, "a:9092");
    CHECK(next->kafka.partitions == 3);
    CHECK_STR(next->kafka.sasl_password.value, PW1);
    CHECK(next->redis.port == 6379 && next->worker.http_port == 8081);
    CHECK(next->limits.max_text == 200 && next->worker.max_request_age_s == 900);
    CHECK_STR(conf_get(next, "sasl.password"), PW1);
    CHECK_STR(conf_get(next, "linger.ms"), "5");
    cq_config_free(next);
}

TEST(nothing_to_keep) {
    struct cq_config *cur = load("a:9092", 3, "CQT_PW1", 5, 6379, 100, 8081, 600);
    struct cq_config *next = load("a:9092", 3, "CQT_PW1", 5, 6379, 300, 8081, 600);
    struct cq_err err = {0};
    changed[0] = '\0';
    CHECK(cur && next && cq_config_keep_restart_keys(next, cur, on_changed, NULL, &err) == CQ_OK);
    CHECK_STR(changed, "");
    CHECK(next && next->limits.max_text == 300);
    cq_config_free(cur);
    cq_config_free(next);
}

TEST(refcount) {
    struct cq_config *c = load("a:9092", 3, "CQT_PW1", 5, 6379, 100, 8081, 600);
    CHECK(c && c->refs == 1);
    CHECK(cq_config_ref(c) == c && c->refs == 2);
    cq_config_unref(c);
    CHECK(c->refs == 1);
    cq_config_unref(c); /* the last reference frees (ASan: no leak) */
    cq_config_unref(NULL);
}

int main(void) {
    unsetenv("CQ_KAFKA_BROKERS"); /* environment overrides would hide the file's values */
    unsetenv("CQ_REDIS_PORT");
    unsetenv("CQ_WORKER_HTTP_PORT");
    RUN(keeps_restart_keys);
    RUN(nothing_to_keep);
    RUN(refcount);
    return cqtest_done();
}
