/* config_kafka: the kafka security keys (kafka.security_protocol, kafka.sasl.*, kafka.ssl.*)
 * and the kafka.properties map, checked at load the way librdkafka will take them: every
 * property is applied to a scratch rd_kafka_conf_t, so a property librdkafka refuses is a
 * "file:line:col: key: reason" config error at load (and in `chatopsctl config check`),
 * not a failure at the first client's start. The result is cfg->kafka.client_conf, the
 * "key","value" list every producer, consumer and admin client is given. Secret values
 * (written as ${ENV} or file:path) never appear in a message. */
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

/* Set by the services themselves (from other keys, or because the guarantees depend on
 * them): a property may not change them. */
static const struct {
    const char *prop, *why;
} OWNED[] = {
    {"bootstrap.servers", "set kafka.brokers"},
    {"metadata.broker.list", "set kafka.brokers"},
    {"group.id", "set kafka.groups"},
    {"max.poll.interval.ms", "set kafka.max_poll_interval_ms"},
    {"message.timeout.ms", "set kafka.produce_timeout_ms"},
    {"delivery.timeout.ms", "set kafka.produce_timeout_ms"},
    {"acks", "every message is produced with acks=all"},
    {"request.required.acks", "every message is produced with acks=all"},
    {"enable.idempotence", "the producer is idempotent"},
    {"enable.auto.commit", "offsets are committed once processed"},
    {"enable.auto.offset.store", "offsets are committed once processed"},
    {"auto.offset.reset", "consumers start at the earliest offset"},
    {"security.protocol", "set kafka.security_protocol"},
    {"sasl.mechanism", "set kafka.sasl.mechanism"},
    {"sasl.mechanisms", "set kafka.sasl.mechanism"},
    {"sasl.username", "set kafka.sasl.username"},
    {"sasl.password", "set kafka.sasl.password"},
    {"ssl.ca.location", "set kafka.ssl.ca_location"},
    {"ssl.certificate.location", "set kafka.ssl.certificate_location"},
    {"ssl.key.location", "set kafka.ssl.key_location"},
    {"ssl.key.password", "set kafka.ssl.key_password"},
};

/* Properties whose value is a credential: they must be written as a secret reference. */
static bool secret_bearing(const char *k) {
    return strstr(k, "password") || strstr(k, "secret") || strstr(k, "jaas") ||
           strcmp(k, "ssl.key.pem") == 0 || strcmp(k, "sasl.oauthbearer.config") == 0 ||
           strcmp(k, "ssl_key") == 0;
}

/* One setting to check and hand on: librdkafka name, value, where it was written. */
struct kset {
    const char *prop, *value, *path;
    const struct cq_ynode *at;
    bool secret;
};

static const struct cq_ynode *at2(const struct cq_ynode *root, const char *a, const char *b,
                                  const char *key) {
    const struct cq_ynode *n = cq_ynode_get(cq_ynode_get(root, a), b);
    const struct cq_ynode *k = key ? cq_ynode_get(n, key) : n;
    if (k) return k;
    return n ? n : cq_ynode_get(root, a) ? cq_ynode_get(root, a) : root;
}

static enum cq_rc fail_at(struct ctx *c, const struct cq_ynode *at, const char *path,
                          const char *fmt, const char *arg) {
    c->plen = (size_t)snprintf(c->path, sizeof(c->path), "%s", path);
    if (c->plen >= sizeof(c->path)) c->plen = sizeof(c->path) - 1;
    return cq_cfg_fail(c, at, fmt, arg);
}

/* A relative ssl.*_location is relative to the config file's directory (as file: secrets). */
static enum cq_rc absolute_location(struct ctx *c, char **loc) {
    if (!*loc || (*loc)[0] == '/' || !c->dir) return CQ_OK;
    size_t n = strlen(c->dir) + strlen(*loc) + 2;
    char *full = malloc(n);
    if (!full) return cq_cfg_nomem(c);
    snprintf(full, n, "%s/%s", c->dir, *loc);
    free(*loc);
    *loc = full;
    return CQ_OK;
}

enum cq_rc cq_cfg_kafka_check(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root) {
    struct kset fixed[8];
    size_t nf = 0, np = cfg->kafka.n_properties;
    const char *proto = cfg->kafka.security_protocol;
    bool sasl = strncasecmp(proto, "sasl_", 5) == 0;
    const struct cq_ynode *props = cq_ynode_get(cq_ynode_get(root, "kafka"), "properties");
    char path[200];
    enum cq_rc rc = CQ_OK;

    if (absolute_location(c, &cfg->kafka.ssl_ca_location) != CQ_OK ||
        absolute_location(c, &cfg->kafka.ssl_certificate_location) != CQ_OK ||
        absolute_location(c, &cfg->kafka.ssl_key_location) != CQ_OK)
        return c->err->code;

    /* The combinations librdkafka would only refuse (or silently misuse) at connect time. */
    if (sasl && !cfg->kafka.sasl_mechanism)
        return fail_at(c, at2(root, "kafka", "security_protocol", NULL), "kafka.sasl.mechanism",
                       "required when kafka.security_protocol is %s", proto);
    if (!sasl && cfg->kafka.sasl_mechanism)
        return fail_at(c, at2(root, "kafka", "sasl", "mechanism"), "kafka.sasl.mechanism",
                       "needs kafka.security_protocol sasl_ssl or sasl_plaintext, not %s", proto);
    if (cfg->kafka.sasl_mechanism &&
        (!cfg->kafka.sasl_username ||
         !(cfg->kafka.sasl_password.value || cfg->kafka.sasl_password.ref)))
        return fail_at(c, at2(root, "kafka", "sasl", NULL),
                       cfg->kafka.sasl_username ? "kafka.sasl.password" : "kafka.sasl.username",
                       "required with kafka.sasl.mechanism %s", cfg->kafka.sasl_mechanism);
    if (!cfg->kafka.sasl_mechanism && (cfg->kafka.sasl_username || cfg->kafka.sasl_password.ref))
        return fail_at(c, at2(root, "kafka", "sasl", NULL), "kafka.sasl.mechanism",
                       "required with kafka.sasl.username and password%s", "");
    if (!cfg->kafka.ssl_certificate_location != !cfg->kafka.ssl_key_location)
        return fail_at(
            c, at2(root, "kafka", "ssl", NULL),
            cfg->kafka.ssl_key_location ? "kafka.ssl.certificate_location"
                                        : "kafka.ssl.key_location",
            "a client certificate needs both kafka.ssl.certificate_location and key_location%s",
            "");

#define FIXED(p, v, key, sub, secret_)                                                             \
    do {                                                                                           \
        if (v)                                                                                     \
            fixed[nf++] =                                                                          \
                (struct kset){p, v, "kafka." key, at2(root, "kafka", key, sub), secret_};          \
    } while (0)
    FIXED("security.protocol", proto, "security_protocol", NULL, false);
    FIXED("sasl.mechanism", cfg->kafka.sasl_mechanism, "sasl", "mechanism", false);
    FIXED("sasl.username", cfg->kafka.sasl_username, "sasl", "username", false);
    FIXED("sasl.password", cfg->kafka.sasl_password.value, "sasl", "password", true);
    FIXED("ssl.ca.location", cfg->kafka.ssl_ca_location, "ssl", "ca_location", false);
    FIXED("ssl.certificate.location", cfg->kafka.ssl_certificate_location, "ssl",
          "certificate_location", false);
    FIXED("ssl.key.location", cfg->kafka.ssl_key_location, "ssl", "key_location", false);
    FIXED("ssl.key.password", cfg->kafka.ssl_key_password.value, "ssl", "key_password", true);
#undef FIXED

    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    const char **kv = calloc(2 * (nf + np) + 1, sizeof(*kv));
    if (!scratch || !kv) {
        rc = cq_cfg_nomem(c);
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < nf + np; i++) {
        struct kset s;
        if (i < nf) {
            s = fixed[i];
        } else {
            const struct cq_kafka_property *p = &cfg->kafka.properties[i - nf];
            /* the key node (cq_ynode_key), so the error points at the property's name */
            const struct cq_ynode *k = cq_ynode_key(props, p->name);
            snprintf(path, sizeof(path), "kafka.properties[\"%s\"]", p->name);
            s = (struct kset){p->name, p->value.value, path, k ? k : props, p->value.ref != NULL};
            for (size_t o = 0; o < sizeof(OWNED) / sizeof(OWNED[0]); o++)
                if (strcmp(p->name, OWNED[o].prop) == 0) {
                    rc = fail_at(c, s.at, path, "not settable here: %s", OWNED[o].why);
                    goto out;
                }
            if (secret_bearing(p->name) && !s.secret) {
                rc = fail_at(c, s.at, path,
                             "holds a credential: write it as ${ENV_VAR} or file:/path%s", "");
                goto out;
            }
        }
        if (!s.value) continue; /* a secret left unresolved (a lenient config check) */
        char errstr[256];
        if (rd_kafka_conf_set(scratch, s.prop, s.value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            /* librdkafka's reason quotes the value: only for values that are not secrets */
            rc = fail_at(c, s.at, s.path, "librdkafka refuses it: %s",
                         s.secret ? "invalid value (not shown: it is a secret)" : errstr);
            goto out;
        }
        kv[n++] = s.prop;
        kv[n++] = s.value;
    }
    kv[n] = NULL;
    free(cfg->kafka.client_conf);
    cfg->kafka.client_conf = kv;
    kv = NULL;
out:
    if (scratch) rd_kafka_conf_destroy(scratch);
    free(kv);
    return rc;
}
