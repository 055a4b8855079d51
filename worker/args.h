/* args: turns the text after a chat command into a checked argument set.
 * Shell-like tokenizer (quotes, backslash escapes) with limits, command
 * resolution by the longest matching name ("lb weight" before "lb"), binding
 * of positional and --flag arguments to the command's specs, and the rules
 * (required/default, enum, regex, int range, max length) with one-line reasons. */
#ifndef CQ_WORKER_ARGS_H
#define CQ_WORKER_ARGS_H

#include <stddef.h>

#include "config.h"
#include "errors.h"

struct w_argv {
    char **v; /* owned strings */
    size_t n;
};

/* Splits text into words: whitespace separates, '...' is literal, "..." allows \" \\ \$ \`
 * escapes, a backslash outside quotes escapes the next character. Over max_args words
 * or a word over max_arg_len bytes is CQ_ETOOBIG; an unbalanced quote or a trailing
 * backslash is CQ_EPARSE. Limits <= 0 mean unlimited. On success fills *out (caller
 * calls w_argv_clear); on error *out is empty and err->msg has the reason. */
enum cq_rc w_args_tokenize(const char *text, int max_args, int max_arg_len, struct w_argv *out,
                           struct cq_err *err);
void w_argv_clear(struct w_argv *a);

/* Finds the configured command whose space-separated name equals the longest prefix of
 * word followed by tokens ("flag" + ["get","x"] -> "flag get"). *consumed receives how
 * many of tokens belong to the name. Borrowed result; NULL when nothing matches. */
const struct cq_command *w_args_resolve(const struct cq_config *cfg, const char *word,
                                        const struct w_argv *tokens, size_t *consumed);

/* The text after the first `words` words of text (split as w_args_tokenize does), without
 * the blanks before it: the arguments text of a command whose name took `words` tokens
 * ("blue 30" for "weight blue 30" and 1). Borrowed from text; "" when nothing follows. */
const char *w_args_rest(const char *text, size_t words);

/* The arguments of one invocation, in spec order: values[i] belongs to cmd->args[i]
 * (NULL when optional, absent and without default). Owns the values. */
struct w_bound_args {
    const struct cq_command *cmd; /* borrowed */
    char **values;
    size_t n;
};

/* Binds tokens[start..] to cmd's specs (positional in order, "--flag value" or
 * "--flag=value" for flagged specs), applies defaults and checks every rule.
 * max_arg_len is the global limit used when a spec has max_len 0.
 * On a violation returns CQ_EINVAL with the reason in err->msg, e.g.
 * "percent: 130 is above the maximum 100". Caller calls w_bound_args_clear. */
enum cq_rc w_args_bind(const struct cq_command *cmd, const struct w_argv *tokens, size_t start,
                       int max_arg_len, struct w_bound_args *out, struct cq_err *err);
void w_bound_args_clear(struct w_bound_args *b);

/* Borrowed value of the named argument, NULL when absent. */
const char *w_bound_get(const struct w_bound_args *b, const char *name);

/* Writes the command's usage line ("usage: lb weight POOL PERCENT") into buf: the
 * configured usage when set (prefixed with "usage: " unless it already is), else one
 * generated from the specs. Returns buf. */
char *w_args_usage(const struct cq_command *cmd, char *buf, size_t size);

/* "name=value name2=value2" of the bound args (for audit and messages); caller frees. */
char *w_bound_render(const struct w_bound_args *b);

#endif
