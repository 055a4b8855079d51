/* log: JSON lines on stderr (ts, level, svc, msg, req_id, plus extra fields).
 * Thread-safe: one write(2) per line. Never pass secret values: log key names. */
#ifndef CQ_LOG_H
#define CQ_LOG_H

enum cq_log_level { CQ_LOG_DEBUG, CQ_LOG_INFO, CQ_LOG_WARN, CQ_LOG_ERROR };

/* Sets the service name (copied) and the minimum level printed. */
void cq_log_init(const char *svc, enum cq_log_level min_level);

/* Parses "debug|info|warn|error"; returns CQ_LOG_INFO for anything else. */
enum cq_log_level cq_log_level_parse(const char *s);

/* Writes one line. req_id may be NULL. The message is formatted with printf rules. */
void cq_log(enum cq_log_level level, const char *req_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like cq_log, with extra string fields: kv is NULL-terminated "key", "value", ... pairs. */
void cq_log_kv(enum cq_log_level level, const char *req_id, const char *msg, const char *const *kv);

#define cq_debug(rid, ...) cq_log(CQ_LOG_DEBUG, rid, __VA_ARGS__)
#define cq_info(rid, ...) cq_log(CQ_LOG_INFO, rid, __VA_ARGS__)
#define cq_warn(rid, ...) cq_log(CQ_LOG_WARN, rid, __VA_ARGS__)
#define cq_error(rid, ...) cq_log(CQ_LOG_ERROR, rid, __VA_ARGS__)

#endif
