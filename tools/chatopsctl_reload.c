/* chatopsctl reload: sends SIGHUP to the chatops services (chatops-ingress, chatops-worker,
 * chatops-notifier) that run as this user on this host and were started with the same config
 * file (compared by real path; --all: whatever their config). Found through /proc (argv[0]'s
 * base name and the --config argument, resolved against the process's cwd). The file is
 * checked first (secrets left unresolved are fine: the services resolve them), so a broken
 * file is refused here with its file:line:col error. Each service then reloads on its own
 * loop and logs the outcome; chatops_config_reload_failures_total counts refused reloads. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatopsctl.h"

static const char *const SERVICES[] = {"chatops-ingress", "chatops-worker", "chatops-notifier",
                                       NULL};

static void ignore_warning(void *arg, const char *msg) {
    (void)arg;
    (void)msg;
}

/* argv of pid (NUL-separated in buf); returns the byte count or -1. */
static ssize_t read_cmdline(const char *pid, char *buf, size_t size) {
    char path[300];
    snprintf(path, sizeof path, "/proc/%.255s/cmdline", pid);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The real path of the process's --config argument, or "" when it has none. */
static void process_config(const char *pid, const char *buf, size_t n, char out[PATH_MAX]) {
    out[0] = '\0';
    for (const char *p = buf; p < buf + n; p += strlen(p) + 1) {
        if (strcmp(p, "--config") != 0 || p + strlen(p) + 1 >= buf + n) continue;
        const char *v = p + strlen(p) + 1;
        char full[PATH_MAX * 2];
        if (v[0] == '/')
            snprintf(full, sizeof full, "%s", v);
        else
            snprintf(full, sizeof full, "/proc/%.255s/cwd/%s", pid, v);
        if (!realpath(full, out)) out[0] = '\0';
        return;
    }
}

int cq_ctl_reload(const char *config, int argc, char **argv) {
    int all = 0, sent = 0, failed = 0;
    char want[PATH_MAX] = "";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) {
            all = 1;
        } else {
            fprintf(stderr, "chatopsctl: reload: unknown argument %s (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (!all) {
        struct cq_err err = {0};
        struct cq_config *cfg = cq_config_load_lenient(config, ignore_warning, NULL, &err);
        if (!cfg) {
            fprintf(stderr, "chatopsctl: reload: not sent, the file is refused: %s\n", err.msg);
            return 1;
        }
        cq_config_free(cfg);
        if (!realpath(config, want)) {
            fprintf(stderr, "chatopsctl: reload: %s: %s\n", config, strerror(errno));
            return 1;
        }
    }
    DIR *d = opendir("/proc");
    if (!d) {
        fprintf(stderr, "chatopsctl: reload: /proc: %s\n", strerror(errno));
        return 1;
    }
    struct dirent *e;
    static char buf[65536];
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        char path[300];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%.255s", e->d_name);
        if (stat(path, &st) != 0 || st.st_uid != getuid()) continue;
        ssize_t n = read_cmdline(e->d_name, buf, sizeof buf);
        if (n <= 0) continue;
        const char *base = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
        int svc = 0;
        for (int k = 0; SERVICES[k]; k++)
            if (!strcmp(base, SERVICES[k])) svc = 1;
        if (!svc) continue;
        if (!all) {
            char have[PATH_MAX];
            process_config(e->d_name, buf, (size_t)n, have);
            if (strcmp(have, want) != 0) continue;
        }
        long pid = strtol(e->d_name, NULL, 10);
        if (kill((pid_t)pid, SIGHUP) == 0) {
            printf("SIGHUP sent to %s (pid %ld)\n", base, pid);
            sent++;
        } else {
            fprintf(stderr, "chatopsctl: reload: %s (pid %ld): %s\n", base, pid, strerror(errno));
            failed++;
        }
    }
    closedir(d);
    if (!sent && !failed) {
        fprintf(stderr, "chatopsctl: reload: no chatops service of this user runs with %s\n",
                all ? "any config" : want);
        return 1;
    }
    return failed ? 1 : 0;
}
