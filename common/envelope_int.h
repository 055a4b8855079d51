/* envelope_int.h: private to common/envelope*.c: the field-table engine that drives both
 * the encoders and the decoders (envelope.c: request and result; envelope_records.c: audit
 * and dead letter), so an encoder never writes what its decoder would refuse. */
#ifndef CQ_ENVELOPE_INT_H
#define CQ_ENVELOPE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "errors.h"

enum { F_REQUIRED = 1, F_NONEMPTY = 2 };

struct field {
    const char *group; /* enclosing object ("channel") or NULL for top level */
    const char *key;
    size_t offset; /* of the char * in the struct */
    size_t max;    /* bytes */
    int flags;
    const char *const *allowed; /* NULL-terminated enum values, or NULL */
};

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* Largest integer a JSON number (double) carries exactly. */
#define MAX_EXACT_INT 9007199254740992.0

char **env_slot(const void *msg, const struct field *f);
void env_field_path(const struct field *f, char *out, size_t outlen);
/* One string value against its field rule; err names the field. */
enum cq_rc env_check_value(const char *kind, const struct field *f, const char *v,
                           struct cq_err *err);
cJSON *env_group_object(cJSON *root, const char *group);
enum cq_rc env_encode_fields(const char *kind, const void *msg, const struct field *fields,
                             size_t n, cJSON *root, struct cq_err *err);
/* Integers as raw digits (cJSON would round a large one). */
bool env_add_number(cJSON *obj, const char *key, long long v);
char *env_print_or_fail(cJSON *root, const char *kind, struct cq_err *err);
/* Parses an object whose numeric "v" is 1..vmax (*vout gets it when not NULL). A NUL
 * character (raw or escaped) is refused unless nul_ok (a dead letter may quote one). */
enum cq_rc env_parse_root(const char *kind, const char *json, size_t len, size_t max_len, int vmax,
                          int *vout, bool nul_ok, cJSON **root, struct cq_err *err);
enum cq_rc env_get_group(const char *kind, const cJSON *root, const char *group, const cJSON **out,
                         struct cq_err *err);
enum cq_rc env_decode_fields(const char *kind, const cJSON *root, const struct field *fields,
                             size_t n, void *msg, struct cq_err *err);
/* An optional non-negative integer up to max; absent leaves *out at 0. */
enum cq_rc env_get_int(const char *kind, const cJSON *parent, const char *key, const char *path,
                       double max, long long *out, struct cq_err *err);
void env_clear_fields(void *msg, const struct field *fields, size_t n);

/* envelope_stack.c: {lead numbers, the fields (table order, groups as objects), trail numbers}
 * printed by cJSON from nodes on the stack that point at the message's strings: the same text
 * and errors as env_encode_fields + env_print_or_fail on a tree, one allocation (the result). */
struct env_int {
    const char *key;
    long long v;
};
char *env_encode_stack(const char *kind, const void *msg, const struct field *fields, size_t n,
                       const struct env_int *lead, size_t nlead, const struct env_int *trail,
                       size_t ntrail, struct cq_err *err);

#endif
