/* cqt-yaml2json: prints a YAML file as JSON (scalars as strings) so Python tests (standard
 * library only) can inspect YAML files such as docker-compose.yml and the kustomize config.
 * Reads the first document with libyaml's loader, as docker compose reads a file: anchors,
 * aliases and merge keys (<<: *x, explicit keys win) are resolved. (The config loader,
 * common/yamltree.c, refuses aliases; configs are checked with chatopsctl config check.) */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

static cJSON *convert(yaml_document_t *d, yaml_node_t *n, int depth);

/* Adds the keys of the mapping node m that obj does not have yet (a merge key's source). */
static int merge_from(yaml_document_t *d, cJSON *obj, yaml_node_t *m, int depth) {
    cJSON *src = m && m->type == YAML_MAPPING_NODE ? convert(d, m, depth + 1) : NULL;
    if (!src) return -1;
    for (cJSON *it = src->child; it; it = it->next)
        if (!cJSON_HasObjectItem(obj, it->string))
            cJSON_AddItemToObject(obj, it->string, cJSON_Duplicate(it, 1));
    cJSON_Delete(src);
    return 0;
}

static cJSON *convert(yaml_document_t *d, yaml_node_t *n, int depth) {
    if (!n || depth > MAX_DEPTH) return NULL;
    if (n->type == YAML_SCALAR_NODE)
        return cJSON_CreateString(n->data.scalar.value ? (const char *)n->data.scalar.value : "");
    if (n->type == YAML_SEQUENCE_NODE) {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             a && i < n->data.sequence.items.top; i++) {
            cJSON *c = convert(d, yaml_document_get_node(d, *i), depth + 1);
            if (!c) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, c);
        }
        return a;
    }
    cJSON *o = cJSON_CreateObject();
    yaml_node_pair_t *p;
    for (p = n->data.mapping.pairs.start; o && p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        const char *key =
            k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        if (strcmp(key, "<<") == 0) continue;
        cJSON *c = convert(d, yaml_document_get_node(d, p->value), depth + 1);
        if (!c) goto fail;
        if (cJSON_HasObjectItem(o, key))
            cJSON_ReplaceItemInObjectCaseSensitive(o, key, c);
        else
            cJSON_AddItemToObject(o, key, c);
    }
    for (p = n->data.mapping.pairs.start; o && p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (!k || k->type != YAML_SCALAR_NODE || strcmp((const char *)k->data.scalar.value, "<<"))
            continue;
        yaml_node_t *v = yaml_document_get_node(d, p->value);
        if (v && v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
                 i++)
                if (merge_from(d, o, yaml_document_get_node(d, *i), depth) != 0) goto fail;
        } else if (merge_from(d, o, v, depth) != 0) {
            goto fail;
        }
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: cqt-yaml2json FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 1;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(stderr, "%s:%zu:%zu: %s\n", argv[1], parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "parse error");
        goto out;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    cJSON *j = root ? convert(&doc, root, 0) : cJSON_CreateObject();
    char *s = j ? cJSON_Print(j) : NULL;
    if (s) {
        puts(s);
        rc = 0;
    } else {
        fprintf(stderr, "%s: a merge key (<<) needs a mapping, or nesting is deeper than %d\n",
                argv[1], MAX_DEPTH);
    }
    free(s);
    cJSON_Delete(j);
    yaml_document_delete(&doc);
out:
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
