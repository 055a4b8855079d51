/* test_config_kafka: the kafka security keys and kafka.properties (issue 14). What every
 * client is given (cfg->kafka.client_conf), secrets resolved from ${ENV} and file: and kept
 * out of every message and redacted, a property librdkafka refuses reported as
 * "file:line:col: key: reason" at load, and the combinations that cannot connect refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cqtest.h"

#define PASSWORD "SASL-s3cr3t-pass-7"
#define KEYPASS "KEY-s3cr3t-pass-8"
#define OAUTH "OAUTH-s3cr3t-9"

static void no_secret_in(const char *msg) {
    CHECK(strstr(msg, PASSWORD) == NULL);
    CHECK(strstr(msg, KEYPASS) == NULL);
    CHECK(strstr(msg, OAUTH) == NULL);
}

static void expect_error(const char *yaml, const char *want) {
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load_string("k.yaml", yaml, strlen(yaml), &err);
    CHECK(cfg == NULL);
    CHECK_STR(err.msg, want);
    no_secret_in(err.msg);
    cq_config_free(cfg);
}

/* The value client_conf gives key, or NULL. */
static const char *conf_get(const struct cq_config *cfg, const char *key) {
    for (size_t i = 0; cfg->kafka.client_conf && cfg->kafka.client_conf[i]; i += 2)
        if (strcmp(cfg->kafka.client_conf[i], key) == 0) return cfg->kafka.client_conf[i + 1];
    return NULL;
}

TEST(defaults_plaintext) {
    const char *y = "kafka: {brokers: \"127.0.0.1:9092\"}\n";
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load_string("k.yaml", y, strlen(y), &err);
    CHECK(cfg != NULL);
    if (!cfg) return;
    CHECK_STR(cfg->kafka.security_protocol, "plaintext");
    CHECK(cfg->kafka.sasl_mechanism == NULL && cfg->kafka.n_properties == 0);
    /* only the protocol: nothing else is handed on unless configured */
    CHECK_STR(conf_get(cfg, "security.protocol"), "plaintext");
    CHECK(cfg->kafka.client_conf[2] == NULL);
    cq_config_free(cfg);
}

TEST(sasl_ssl_and_properties) {
    char dir[] = "/tmp/cqt-ckafka-XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/oauth", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(OAUTH "\n", f);
    fclose(f);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "kafka:\n"
             "  brokers: \"b1:9096\"\n"
             "  security_protocol: SASL_SSL\n"
             "  sasl:\n"
             "    mechanism: SCRAM-SHA-512\n"
             "    username: chatops\n"
             "    password: \"${CQT_KPASS}\"\n"
             "  ssl:\n"
             "    ca_location: /etc/ssl/ca.pem\n"
             "    certificate_location: /etc/ssl/client.pem\n"
             "    key_location: /etc/ssl/client.key\n"
             "    key_password: \"${CQT_KEYPASS}\"\n"
             "  properties:\n"
             "    linger.ms: \"5\"\n"
             "    client.id: chatops-test\n"
             "    ssl.keystore.password: \"file:%s\"\n",
             path);
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load_string("k.yaml", yaml, strlen(yaml), &err);
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  unexpected error: %s\n", err.msg);
        return;
    }
    CHECK_STR(conf_get(cfg, "security.protocol"), "SASL_SSL");
    CHECK_STR(conf_get(cfg, "sasl.mechanism"), "SCRAM-SHA-512");
    CHECK_STR(conf_get(cfg, "sasl.username"), "chatops");
    CHECK_STR(conf_get(cfg, "sasl.password"), PASSWORD);
    CHECK_STR(conf_get(cfg, "ssl.ca.location"), "/etc/ssl/ca.pem");
    CHECK_STR(conf_get(cfg, "ssl.certificate.location"), "/etc/ssl/client.pem");
    CHECK_STR(conf_get(cfg, "ssl.key.location"), "/etc/ssl/client.key");
    CHECK_STR(conf_get(cfg, "ssl.key.password"), KEYPASS);
    CHECK_STR(conf_get(cfg, "linger.ms"), "5");
    CHECK_STR(conf_get(cfg, "client.id"), "chatops-test");
    CHECK_STR(conf_get(cfg, "ssl.keystore.password"), OAUTH);
    CHECK(cfg->kafka.n_properties == 3);
    CHECK(cfg->kafka.properties[0].value.ref == NULL);       /* plain */
    CHECK(cfg->kafka.properties[2].value.ref != NULL);       /* a secret */
    CHECK_STR(cfg->kafka.sasl_password.ref, "${CQT_KPASS}"); /* safe to print */
    /* every secret value is redacted, plain property values are not */
    char *t = strdup("a " PASSWORD " b " KEYPASS " c " OAUTH " d chatops-test");
    t = cq_config_redact(cfg, t);
    CHECK(t != NULL);
    if (t) {
        no_secret_in(t);
        CHECK_CONTAINS(t, "[redacted]");
        CHECK_CONTAINS(t, "chatops-test");
    }
    free(t);
    cq_config_free(cfg);
    unlink(path);
    rmdir(dir);
}

TEST(relative_locations_follow_the_config_file) {
    char dir[] = "/tmp/cqt-ckafka-XXXXXX", path[128], want[160];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/c.yaml", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("kafka:\n  brokers: b:1\n  security_protocol: ssl\n  ssl: {ca_location: tls/ca.pem}\n",
          f);
    fclose(f);
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load(path, &err);
    CHECK(cfg != NULL);
    snprintf(want, sizeof(want), "%s/tls/ca.pem", dir);
    if (cfg) CHECK_STR(conf_get(cfg, "ssl.ca.location"), want);
    cq_config_free(cfg);
    unlink(path);
    rmdir(dir);
}

TEST(refused_and_inconsistent) {
    /* librdkafka refuses the name or the value: the key's own position */
    expect_error("kafka:\n  brokers: b:1\n  properties:\n    linger.ms: \"5\"\n"
                 "    no.such.property: x\n",
                 "k.yaml:5:5: kafka.properties[\"no.such.property\"]: librdkafka refuses it: No "
                 "such configuration property: \"no.such.property\"");
    expect_error("kafka:\n  brokers: b:1\n  properties:\n    linger.ms: soon\n",
                 "k.yaml:4:5: kafka.properties[\"linger.ms\"]: librdkafka refuses it: Invalid "
                 "value for configuration property \"queue.buffering.max.ms\"");
    /* a secret value librdkafka refuses: the reason (which quotes it) is not shown */
    expect_error("kafka:\n  brokers: b:1\n  properties:\n    socket.timeout.ms: \"${CQT_KPASS}\"\n",
                 "k.yaml:4:5: kafka.properties[\"socket.timeout.ms\"]: librdkafka refuses it: "
                 "invalid value (not shown: it is a secret)");
    /* credentials are never inline */
    expect_error("kafka:\n  brokers: b:1\n  properties:\n    ssl.keystore.password: "
                 "abc\n",
                 "k.yaml:4:5: kafka.properties[\"ssl.keystore.password\"]: holds a "
                 "credential: write it as ${ENV_VAR} or file:/path");
    /* what the services set themselves, and the first-class keys, only one way */
    expect_error("kafka:\n  brokers: b:1\n  properties: {acks: \"1\"}\n",
                 "k.yaml:3:16: kafka.properties[\"acks\"]: not settable here: every message is "
                 "produced with acks=all");
    expect_error("kafka:\n  brokers: b:1\n  properties:\n    sasl.password: \"${CQT_KPASS}\"\n",
                 "k.yaml:4:5: kafka.properties[\"sasl.password\"]: not settable here: set "
                 "kafka.sasl.password");
    expect_error("kafka:\n  brokers: b:1\n  properties:\n    bootstrap.servers: x:1\n",
                 "k.yaml:4:5: kafka.properties[\"bootstrap.servers\"]: not settable here: set "
                 "kafka.brokers");
    /* combinations that cannot connect */
    expect_error("kafka:\n  brokers: b:1\n  security_protocol: sasl_ssl\n",
                 "k.yaml:3:22: kafka.sasl.mechanism: required when kafka.security_protocol is "
                 "sasl_ssl");
    expect_error("kafka:\n  brokers: b:1\n  sasl: {mechanism: PLAIN, username: u, password: "
                 "\"${CQT_KPASS}\"}\n",
                 "k.yaml:3:21: kafka.sasl.mechanism: needs kafka.security_protocol sasl_ssl or "
                 "sasl_plaintext, not plaintext");
    expect_error("kafka:\n  brokers: b:1\n  security_protocol: sasl_ssl\n  sasl:\n"
                 "    mechanism: SCRAM-SHA-256\n    username: u\n",
                 "k.yaml:5:5: kafka.sasl.password: required with kafka.sasl.mechanism "
                 "SCRAM-SHA-256");
    expect_error("kafka:\n  brokers: b:1\n  sasl: {mechanism: GSSAPI}\n",
                 "k.yaml:3:21: kafka.sasl.mechanism: expected one of PLAIN, SCRAM-SHA-256, "
                 "SCRAM-SHA-512");
    expect_error("kafka:\n  brokers: b:1\n  security_protocol: tls\n",
                 "k.yaml:3:22: kafka.security_protocol: expected one of plaintext, ssl, "
                 "sasl_plaintext, sasl_ssl, PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL");
    expect_error("kafka:\n  brokers: b:1\n  security_protocol: ssl\n  ssl:\n"
                 "    certificate_location: /c.pem\n",
                 "k.yaml:5:5: kafka.ssl.key_location: a client certificate needs both "
                 "kafka.ssl.certificate_location and key_location");
    /* the password is a secret reference like every other one */
    expect_error("kafka:\n  brokers: b:1\n  security_protocol: sasl_ssl\n  sasl:\n"
                 "    mechanism: PLAIN\n    username: u\n    password: " PASSWORD "\n",
                 "k.yaml:7:15: kafka.sasl.password: secrets must be ${ENV_VAR} or file:/path");
}

int main(void) {
    setenv("CQT_KPASS", PASSWORD, 1);
    setenv("CQT_KEYPASS", KEYPASS, 1);
    unsetenv("CQ_KAFKA_BROKERS");
    RUN(defaults_plaintext);
    RUN(sasl_ssl_and_properties);
    RUN(relative_locations_follow_the_config_file);
    RUN(refused_and_inconsistent);
    return cqtest_done();
}
