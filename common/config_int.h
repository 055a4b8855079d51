/* config_int: private to config.c (the declarative-table engine and the key table),
 * config_check.c (the cross-checks of commands, templates, policy and ids), config_secret.c
 * and config_lookup.c: the loading
 * context, the field/schema types, and the message and did-you-mean helpers both use.
 * Not for the services: they include config.h. */
#ifndef CQ_CONFIG_INT_H
#define CQ_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "yamltree.h"

enum ftype {
    F_STR,     /* char *; with .choices the value must be one of them */
    F_INT,     /* int, bounds .min..max */
    F_LLONG,   /* long long */
    F_SIZE,    /* size_t; accepts k/m/g suffixes (KiB units) */
    F_BOOL,    /* bool: true|false */
    F_ENUM,    /* int-sized enum: index into .choices */
    F_SECRET,  /* struct cq_secret: "${ENV}" or "file:path" */
    F_STRLIST, /* char **, NULL-terminated; .min = fewest items */
    F_INTLIST, /* int * + size_t count at .n_off; item bounds .min..max */
    F_MAP,     /* nested mapping whose fields live in the same C struct */
    F_LIST,    /* list of mappings -> array of .sub->size + count at .n_off */
    F_DICT,    /* mapping of name -> .sub (name stored at .sub->name_off) */
    F_PROPVAL, /* struct cq_secret: a secret when "${ENV}"/"file:path", else plain (ref NULL) */
};

struct schema;

struct field {
    const char *key; /* NULL: the field is the dict value itself (secrets: {N: ref}) */
    enum ftype type;
    size_t off;                 /* offset of the C member in the struct being filled */
    size_t n_off;               /* F_INTLIST/F_LIST/F_DICT: offset of the size_t count */
    const char *def;            /* F_STR default */
    long long def_i;            /* F_INT/LLONG/SIZE/BOOL/ENUM default */
    long long min, max;         /* bounds (F_STRLIST: min items) */
    const char *const *choices; /* F_STR/F_ENUM: allowed values, NULL-terminated */
    bool required;
    bool optional_section; /* F_MAP: when absent, its required keys do not apply */
    const char *env;       /* environment variable that overrides the file */
    const struct schema *sub;
};

struct schema {
    const struct field *fields;
    size_t n;
    size_t size;     /* F_LIST/F_DICT element size */
    size_t name_off; /* F_DICT: where the key goes (char *) */
};

struct ctx {
    const char *name; /* file name in messages */
    char *dir;        /* base for relative file: secrets */
    const char *env;  /* set while applying an environment override */
    struct cq_err *err;
    char path[200];
    size_t plen;
    /* lenient load (cq_config_load_lenient): a secret that cannot be resolved is left
     * unresolved (ref set, value NULL) and reported here instead of failing the load */
    void (*unresolved)(void *arg, const char *msg);
    void *unresolved_arg;
};

#define MEMBER(base, off, T) ((T *)(void *)((char *)(base) + (off)))

struct sugg {
    const char *word;
    const char *best;
    size_t dist;
};

extern const char *const cq_cfg_modes[];
extern const struct schema cq_cfg_paths_schema;
/* The top-level key table (config.c). */
extern const struct schema cq_cfg_schema;
/* Frees what one field of base holds (config.c). */
void cq_cfg_free_field(const struct field *f, void *base);

bool cq_cfg_plain_key(const char *k);
/* Appends ".key" (or ["key"] when it has spaces or dots); returns the old length. */
size_t cq_cfg_push_key(struct ctx *c, const char *key);
size_t cq_cfg_push_index(struct ctx *c, size_t i);
void cq_cfg_pop(struct ctx *c, size_t old);
/* Sets c->err to "file:line:col: key.path: reason" and returns CQ_ECONFIG. */
__attribute__((format(printf, 3, 4))) enum cq_rc
cq_cfg_fail(struct ctx *c, const struct cq_ynode *at, const char *fmt, ...);
enum cq_rc cq_cfg_nomem(struct ctx *c);
const char *cq_cfg_shown(const char *v, char buf[64]);
void cq_cfg_sugg_add(struct sugg *s, const char *cand);
const char *cq_cfg_sugg_hint(const struct sugg *s, char buf[96]);
int cq_cfg_choice_index(const char *const *ch, const char *v);
bool cq_cfg_parse_ll(const char *s, long long *out);
bool cq_cfg_in_list(char *const *l, const char *s); /* config_check.c */
/* config_secret.c: resolve "${ENV}" / "file:path" into out (replacing what it held); wipe one */
enum cq_rc cq_cfg_resolve_secret(struct ctx *c, const struct cq_ynode *v, struct cq_secret *out);
void cq_cfg_secret_clear(struct cq_secret *s);

/* kafka.* security keys and kafka.properties checked against librdkafka, and
 * cfg->kafka.client_conf built from them (config_kafka.c). */
enum cq_rc cq_cfg_kafka_check(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root);

/* The dingtalk, mattermost, discord and webex sections: what each needs when enabled
 * (config_platforms.c, issue 18). */
enum cq_rc cq_cfg_check_platforms(struct ctx *c, struct cq_config *cfg,
                                  const struct cq_ynode *root);
/* identity: resolvers known and in a workable order, the tokens each needs
 * (config_identity.c; called by cq_cfg_cross_check). */
enum cq_rc cq_cfg_identity_check(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root);

/* Relates the filled sections to each other (config_check.c). */
enum cq_rc cq_cfg_cross_check(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root);
/* Subscriptions against channels, kinds and statuses (config_events.c). */
enum cq_rc cq_cfg_events_check(struct ctx *c, struct cq_config *cfg, const struct cq_ynode *root);

#endif
