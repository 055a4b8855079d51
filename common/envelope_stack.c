/* envelope_stack: a message encoded by cJSON's printer from nodes on the stack instead of a
 * heap tree. cJSON_Create* / cJSON_Add* copy every key and value and allocate every node (about
 * 50 malloc/free pairs for one request envelope, the largest allocation cost of the ingress per
 * request); here the nodes are cJSON structs in a local array that point at the message's own
 * strings (cJSON_IsReference, cJSON_StringIsConst: the flags cJSON_CreateStringReference and
 * cJSON_AddItemToObjectCS set), linked as cJSON links them, and printed with
 * cJSON_PrintPreallocated. JSON text and escaping stay cJSON's; the checks and the output are
 * those of env_encode_fields + env_print_or_fail (tests/unit/test_envelope_stack.c compares the
 * two byte for byte). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "envelope_int.h"

#define MAX_NODES 64 /* fields + groups + numbers + the root; more falls back to the tree */
#define MAX_INTS 4

struct nodes {
    cJSON n[MAX_NODES];
    size_t used;
};

static cJSON *node(struct nodes *s, int type, const char *key) {
    cJSON *it = &s->n[s->used++];
    memset(it, 0, sizeof(*it));
    it->type = type | (key ? cJSON_StringIsConst : 0);
    it->string = (char *)(uintptr_t)key; /* never freed: cJSON_Delete is never called */
    return it;
}

/* Appends it to parent's children as cJSON_AddItemToObject does (child->prev is the last). */
static void append(cJSON *parent, cJSON *it) {
    cJSON *first = parent->child;
    if (!first) {
        parent->child = it;
        it->prev = it;
        return;
    }
    cJSON *last = first->prev;
    last->next = it;
    it->prev = last;
    first->prev = it;
}

static cJSON *group_of(struct nodes *s, cJSON *root, const char *group) {
    for (cJSON *g = root->child; g; g = g->next)
        if (cJSON_IsObject(g) && strcmp(g->string, group) == 0) return g;
    cJSON *g = node(s, cJSON_Object | cJSON_IsReference, group);
    append(root, g);
    return g;
}

static char *encode_tree(const char *kind, const void *msg, const struct field *fields, size_t n,
                         const struct env_int *lead, size_t nlead, const struct env_int *trail,
                         size_t ntrail, struct cq_err *err) {
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    bool ok = root != NULL;
    for (size_t i = 0; ok && i < nlead; i++)
        ok = env_add_number(root, lead[i].key, lead[i].v);
    if (!ok) {
        cq_err_set(err, CQ_ENOMEM, "%s: out of memory", kind);
        goto out;
    }
    if (env_encode_fields(kind, msg, fields, n, root, err) != CQ_OK) goto out;
    for (size_t i = 0; ok && i < ntrail; i++)
        ok = env_add_number(root, trail[i].key, trail[i].v);
    if (!ok) {
        cq_err_set(err, CQ_ENOMEM, "%s: out of memory", kind);
        goto out;
    }
    out = env_print_or_fail(root, kind, err);
out:
    cJSON_Delete(root);
    return out;
}

char *env_encode_stack(const char *kind, const void *msg, const struct field *fields, size_t n,
                       const struct env_int *lead, size_t nlead, const struct env_int *trail,
                       size_t ntrail, struct cq_err *err) {
    /* every field may open its own group: 2 nodes each at most */
    if (nlead + ntrail > MAX_INTS || 1 + nlead + ntrail + 2 * n > MAX_NODES)
        return encode_tree(kind, msg, fields, n, lead, nlead, trail, ntrail, err);
    struct nodes s;
    char digits[MAX_INTS][24];
    size_t nd = 0;
    s.used = 0;
    cJSON *root = node(&s, cJSON_Object | cJSON_IsReference, NULL);
    for (size_t i = 0; i < nlead; i++, nd++) {
        snprintf(digits[nd], sizeof(digits[nd]), "%lld", lead[i].v);
        cJSON *it = node(&s, cJSON_Raw | cJSON_IsReference, lead[i].key);
        it->valuestring = digits[nd];
        append(root, it);
    }
    for (size_t i = 0; i < n; i++) {
        const struct field *f = &fields[i];
        const char *v = *env_slot(msg, f);
        if (!v) {
            if (!(f->flags & F_REQUIRED)) continue;
            if ((f->flags & F_NONEMPTY) || f->allowed) {
                char path[64];
                env_field_path(f, path, sizeof(path));
                cq_err_set(err, CQ_EINVAL, "%s: field '%s' is missing", kind, path);
                return NULL;
            }
            v = ""; /* required but may be empty: text */
        }
        if (env_check_value(kind, f, v, err) != CQ_OK) {
            if (err) err->code = CQ_EENCODE; /* as env_encode_fields: never "out of memory" */
            return NULL;
        }
        cJSON *it = node(&s, cJSON_String | cJSON_IsReference, f->key);
        it->valuestring = (char *)(uintptr_t)v;
        append(f->group ? group_of(&s, root, f->group) : root, it);
    }
    for (size_t i = 0; i < ntrail; i++, nd++) {
        snprintf(digits[nd], sizeof(digits[nd]), "%lld", trail[i].v);
        cJSON *it = node(&s, cJSON_Raw | cJSON_IsReference, trail[i].key);
        it->valuestring = digits[nd];
        append(root, it);
    }
    return env_print_or_fail(root, kind, err);
}
