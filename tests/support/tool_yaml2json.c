/* cqt-yaml2json: prints a YAML file as JSON (scalars as strings) using the same
 * libyaml-based parser the config loader uses, so Python tests (standard library
 * only) can inspect YAML files such as docker-compose.yml. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "yamltree.h"

static cJSON *convert(const struct cq_ynode *n) {
    if (n->kind == CQ_YNODE_SCALAR) return cJSON_CreateString(n->value ? n->value : "");
    if (n->kind == CQ_YNODE_SEQ) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < n->n; i++)
            cJSON_AddItemToArray(a, convert(n->items[i]));
        return a;
    }
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i + 1 < n->n_items; i += 2)
        cJSON_AddItemToObject(o, n->items[i]->value ? n->items[i]->value : "",
                              convert(n->items[i + 1]));
    return o;
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
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return 1;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        if (r == 0) break;
        len += r;
    }
    fclose(f);
    struct cq_err err = {0};
    struct cq_ynode *root = cq_yaml_parse(argv[1], buf ? buf : "", len, &err);
    free(buf);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    cJSON *j = convert(root);
    char *out = j ? cJSON_Print(j) : NULL;
    if (out) puts(out);
    cJSON_free(out);
    cJSON_Delete(j);
    cq_ynode_free(root);
    return out ? 0 : 1;
}
