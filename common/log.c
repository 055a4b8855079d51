/* log: JSON-lines logger built on cJSON so every field is escaped (see log.h). */
#include "log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

static char service[32] = "chatops";
static enum cq_log_level threshold = CQ_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cq_log_init(const char *svc, enum cq_log_level min_level) {
    snprintf(service, sizeof(service), "%s", svc ? svc : "chatops");
    threshold = min_level;
}

enum cq_log_level cq_log_level_parse(const char *s) {
    for (int i = 0; s && i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0) return (enum cq_log_level)i;
    return CQ_LOG_INFO;
}

/* Log lines are JSON: text from outside (API bodies, reasons) is made valid UTF-8 first. */
static void add_text(cJSON *o, const char *key, const char *v) {
    size_t n = strlen(v);
    if (cq_utf8_valid(v, n)) {
        cJSON_AddStringToObject(o, key, v);
        return;
    }
    char *fixed = cq_utf8_clean(v, n, 0);
    cJSON_AddStringToObject(o, key, fixed ? fixed : "?");
    free(fixed);
}

static void emit(enum cq_log_level level, const char *req_id, const char *msg,
                 const char *const *kv) {
    char ts[40];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "level", level_names[level]);
    cJSON_AddStringToObject(o, "svc", service);
    add_text(o, "msg", msg);
    if (req_id && *req_id) add_text(o, "req_id", req_id);
    for (int i = 0; kv && kv[i] && kv[i + 1]; i += 2)
        add_text(o, kv[i], kv[i + 1]);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return;
    size_t len = strlen(line);
    line[len] = '\n'; /* cJSON's buffer always has room for the NUL we overwrite */
    ssize_t w = write(STDERR_FILENO, line, len + 1);
    (void)w;
    cJSON_free(line);
}

void cq_log(enum cq_log_level level, const char *req_id, const char *fmt, ...) {
    if (level < threshold) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(msg)) cq_utf8_mark_cut(msg, sizeof(msg)); /* never half a character */
    emit(level, req_id, msg, NULL);
}

void cq_log_kv(enum cq_log_level level, const char *req_id, const char *msg,
               const char *const *kv) {
    if (level < threshold) return;
    emit(level, req_id, msg, kv);
}
