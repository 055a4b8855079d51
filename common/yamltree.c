/* yamltree: libyaml events -> a tree of cq_ynode with 1-based marks, the
 * input of config.c's table-driven validation. Kept apart from config.c so
 * the parser's failure modes (syntax, aliases, depth) are tested on their own. */
#include "yamltree.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

struct frame {
    struct cq_ynode *node;
    size_t count, cap; /* entries in node->items */
};

void cq_ynode_free(struct cq_ynode *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n_items && n->items; i++)
        cq_ynode_free(n->items[i]);
    free(n->items);
    free(n->value);
    free(n);
}

static struct cq_ynode *node_new(enum cq_ynode_kind kind, yaml_mark_t mark) {
    struct cq_ynode *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

/* Appends child to the open container f (ownership passes to the tree). */
static bool frame_add(struct frame *f, struct cq_ynode *child) {
    if (f->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct cq_ynode **items = realloc(f->node->items, cap * sizeof(*items));
        if (!items) return false;
        f->node->items = items;
        f->cap = cap;
    }
    f->node->items[f->count++] = child;
    f->node->n_items = f->count;
    f->node->n = f->node->kind == CQ_YNODE_MAP ? f->count / 2 : f->count;
    return true;
}

struct cq_ynode *cq_yaml_parse(const char *name, const char *text, size_t len, struct cq_err *err) {
    yaml_parser_t parser;
    yaml_event_t ev;
    struct frame stack[MAX_DEPTH];
    size_t depth = 0;
    struct cq_ynode *root = NULL;
    bool done = false, ok = false;
    int docs = 0;

    if (!yaml_parser_initialize(&parser))
        return cq_err_set(err, CQ_ENOMEM, "%s: cannot start the YAML parser", name), NULL;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_mark_t m = parser.problem_mark;
            if (parser.error == YAML_MEMORY_ERROR)
                cq_err_set(err, CQ_ENOMEM, "%s: out of memory while parsing", name);
            else if (parser.context)
                cq_err_set(err, CQ_EPARSE, "%s:%zu:%zu: YAML syntax error: %s %s", name, m.line + 1,
                           m.column + 1, parser.problem ? parser.problem : "?", parser.context);
            else
                cq_err_set(err, CQ_EPARSE, "%s:%zu:%zu: YAML syntax error: %s", name, m.line + 1,
                           m.column + 1, parser.problem ? parser.problem : "?");
            goto out;
        }
        struct cq_ynode *n = NULL;
        bool push = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                cq_err_set(err, CQ_EPARSE, "%s:%zu:%zu: only one YAML document is allowed", name,
                           ev.start_mark.line + 1, ev.start_mark.column + 1);
                yaml_event_delete(&ev);
                goto out;
            }
            break;
        case YAML_ALIAS_EVENT:
            cq_err_set(err, CQ_EPARSE, "%s:%zu:%zu: YAML aliases (*name) are not supported", name,
                       ev.start_mark.line + 1, ev.start_mark.column + 1);
            yaml_event_delete(&ev);
            goto out;
        case YAML_SCALAR_EVENT:
            n = node_new(CQ_YNODE_SCALAR, ev.start_mark);
            if (n) {
                n->len = ev.data.scalar.length;
                n->value = malloc(n->len + 1);
                if (n->value) {
                    memcpy(n->value, ev.data.scalar.value, n->len);
                    n->value[n->len] = '\0';
                }
                n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            }
            if (n && !n->value) {
                cq_ynode_free(n);
                n = NULL;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
            n = node_new(CQ_YNODE_SEQ, ev.start_mark);
            push = true;
            break;
        case YAML_MAPPING_START_EVENT:
            n = node_new(CQ_YNODE_MAP, ev.start_mark);
            push = true;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        bool is_node = ev.type == YAML_SCALAR_EVENT || push;
        if (is_node && !n) {
            cq_err_set(err, CQ_ENOMEM, "%s: out of memory while parsing", name);
            yaml_event_delete(&ev);
            goto out;
        }
        if (is_node) {
            if (depth == 0) {
                root = n;
            } else if (!frame_add(&stack[depth - 1], n)) {
                cq_ynode_free(n);
                cq_err_set(err, CQ_ENOMEM, "%s: out of memory while parsing", name);
                yaml_event_delete(&ev);
                goto out;
            }
            if (push) {
                if (depth == MAX_DEPTH) {
                    cq_err_set(err, CQ_EPARSE, "%s:%d:%d: nesting deeper than %d levels", name,
                               n->line, n->col, MAX_DEPTH);
                    yaml_event_delete(&ev);
                    goto out;
                }
                stack[depth++] = (struct frame){.node = n};
            }
        }
        yaml_event_delete(&ev);
    }
    if (!root) {
        yaml_mark_t m = {0};
        root = node_new(CQ_YNODE_MAP, m);
        if (!root) {
            cq_err_set(err, CQ_ENOMEM, "%s: out of memory while parsing", name);
            goto out;
        }
    }
    ok = true;
out:
    yaml_parser_delete(&parser);
    if (!ok) {
        cq_ynode_free(root);
        root = NULL;
    }
    return root;
}

const struct cq_ynode *cq_ynode_key(const struct cq_ynode *map, const char *key) {
    if (!map || map->kind != CQ_YNODE_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++) {
        const struct cq_ynode *k = map->items[2 * i];
        if (k->kind == CQ_YNODE_SCALAR && strcmp(k->value, key) == 0) return k;
    }
    return NULL;
}

const struct cq_ynode *cq_ynode_get(const struct cq_ynode *map, const char *key) {
    if (!map || map->kind != CQ_YNODE_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++) {
        const struct cq_ynode *k = map->items[2 * i];
        if (k->kind == CQ_YNODE_SCALAR && strcmp(k->value, key) == 0) return map->items[2 * i + 1];
    }
    return NULL;
}

bool cq_ynode_is_null(const struct cq_ynode *n) {
    if (!n || n->kind != CQ_YNODE_SCALAR || !n->plain) return false;
    return n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
           strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}

const char *cq_ynode_kind_name(const struct cq_ynode *n) {
    if (!n) return "nothing";
    if (cq_ynode_is_null(n)) return "null";
    switch (n->kind) {
    case CQ_YNODE_MAP:
        return "a mapping";
    case CQ_YNODE_SEQ:
        return "a list";
    default:
        return "a string";
    }
}
