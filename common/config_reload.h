/* config_reload: live reload of the config file on SIGHUP (a uv_signal_t on the service's
 * loop, so everything runs on the loop thread between messages). The file is loaded and
 * validated like at start (file: secrets are read again); on success the keys that need a
 * restart (cq_config_keep_restart_keys) keep their current value and are named in one
 * warning line, and the service's apply callback gets the new config; on failure the
 * current config stays and the "file:line:col: key: reason" error is logged. Metrics:
 * chatops_config_reloads_total (every attempt) and chatops_config_reload_failures_total.
 *
 * Ownership: a config is reference-counted (cq_config_load gives 1). Whoever keeps a
 * pointer past the current message (the service's "current", a job in flight) holds a
 * reference; the config is freed with the last one, so a job finishes with the config it
 * started with. ref/unref are atomic: MHD threads may take references too. */
#ifndef CQ_CONFIG_RELOAD_H
#define CQ_CONFIG_RELOAD_H

#include <stdbool.h>

#include "config.h"
#include "errors.h"
#include "loop.h"

/* Returns cfg (NULL-safe) with one more reference. */
struct cq_config *cq_config_ref(const struct cq_config *cfg);
/* Drops a reference; frees the config with the last one. NULL is a no-op. */
void cq_config_unref(const struct cq_config *cfg);

/* Called on the loop thread with a validated config: the service takes its own reference
 * (cq_config_ref) and makes it current, dropping its reference to the one it replaces. */
typedef void (*cq_reload_apply_fn)(void *arg, struct cq_config *next);

struct cq_reload;

/* Watches SIGHUP on loop; path is the file given at start, cfg the config loaded from it
 * (the reloader keeps a reference), svc the log's service name. The watcher is closed when
 * the loop shuts down (SIGHUP is ignored from then on). */
struct cq_reload *cq_reload_start(struct cq_loop *loop, const char *svc, const char *path,
                                  const struct cq_config *cfg, cq_reload_apply_fn apply, void *arg,
                                  struct cq_err *err);

/* Reloads now (what SIGHUP does). Returns true when the new config was applied. */
bool cq_reload_now(struct cq_reload *r);

#endif
