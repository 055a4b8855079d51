/* yamltree: a YAML (or JSON) document read with libyaml's event API into a small
 * tree of scalars, mappings and sequences that keeps each node's 1-based
 * line/column, so config.c can validate it and point at the exact spot.
 * Aliases are rejected; anchors and tags are ignored; one document per file. */
#ifndef CQ_YAMLTREE_H
#define CQ_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

enum cq_ynode_kind { CQ_YNODE_SCALAR, CQ_YNODE_MAP, CQ_YNODE_SEQ };

struct cq_ynode {
    enum cq_ynode_kind kind;
    int line, col;           /* 1-based position of the node's first character */
    char *value;             /* scalar text, NUL-terminated; NULL for maps and sequences */
    size_t len;              /* scalar length in bytes */
    bool plain;              /* scalar written without quotes (so `~`, `null` and `` mean null) */
    struct cq_ynode **items; /* sequence: items; mapping: key, value, key, value, ... */
    size_t n;                /* sequence: item count; mapping: pair count */
    size_t n_items;          /* entries in items (a mapping cut short may hold a lone key) */
};

/* Parses text. Returns a new tree (caller frees with cq_ynode_free); an empty
 * document yields an empty mapping at 1:1. On error returns NULL and sets err to
 * "name:line:col: YAML syntax error: <libyaml's problem>" (CQ_EPARSE). */
struct cq_ynode *cq_yaml_parse(const char *name, const char *text, size_t len, struct cq_err *err);

/* Frees a tree; NULL is a no-op. */
void cq_ynode_free(struct cq_ynode *n);

/* Mapping look-ups (borrowed): the value, or the key node, for key; NULL when
 * absent or when map is not a mapping. The first occurrence wins. */
const struct cq_ynode *cq_ynode_get(const struct cq_ynode *map, const char *key);
const struct cq_ynode *cq_ynode_key(const struct cq_ynode *map, const char *key);

/* True for a plain `~`, `null`, `Null`, `NULL` or empty scalar. */
bool cq_ynode_is_null(const struct cq_ynode *n);

/* "a string", "a mapping", "a list" or "null": for type errors. */
const char *cq_ynode_kind_name(const struct cq_ynode *n);

#endif
