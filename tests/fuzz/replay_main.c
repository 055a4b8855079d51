/* replay_main: runs a libFuzzer target without libFuzzer (gcc builds, ctest). Every argument
 * is a file or a directory; each regular file (directories: every non-hidden file in name
 * order, not recursive) is read and passed once to LLVMFuzzerTestOneInput. A target signals a
 * violated contract by aborting, so a passing replay is simply "all inputs returned".
 * Exits 2 on a usage error, an unreadable path or an empty directory (a corpus that went
 * missing must not pass as "0 inputs, all fine"). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads path into a buffer of exactly its size (so ASan sees reads past the end); caller
 * frees. NULL with errno on failure. */
static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    struct stat st;
    if (!f) return NULL;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) goto out;
    *size = (size_t)st.st_size;
    buf = malloc(*size ? *size : 1);
    if (!buf || fread(buf, 1, *size, f) != *size) goto out;
    fclose(f);
    return buf;
out:;
    int e = errno ? errno : EIO;
    free(buf);
    fclose(f);
    errno = e;
    return NULL;
}

static int run_file(const char *path) {
    size_t size = 0;
    uint8_t *data = read_all(path, &size);
    if (!data) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* Named before running, so the input of a crash is the last line printed. */
    if (getenv("CQ_FUZZ_VERBOSE")) fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int skip_hidden(const struct dirent *d) {
    return d->d_name[0] != '.';
}

/* Returns the number of inputs run, -1 on an error. */
static long run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return run_file(path) == 0 ? 1 : -1;
    struct dirent **names = NULL;
    int n = scandir(path, &names, skip_hidden, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    long ran = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
        char *full = malloc(len);
        struct stat fst;
        if (full) snprintf(full, len, "%s/%s", path, names[i]->d_name);
        if (!full) {
            ran = -1;
        } else if (stat(full, &fst) == 0 && S_ISREG(fst.st_mode)) {
            if (run_file(full) == 0 && ran >= 0)
                ran++;
            else
                ran = -1;
        }
        free(full);
        free(names[i]);
    }
    free(names);
    if (ran == 0) fprintf(stderr, "replay: %s: no inputs (empty corpus directory)\n", path);
    return ran == 0 ? -1 : ran;
}

int main(int argc, char **argv) {
    long total = 0;
    int rc = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        long n = run_path(argv[i]);
        if (n < 0)
            rc = 2;
        else
            total += n;
        if (n >= 0) printf("replay: %s: %ld inputs ok\n", argv[i], n);
    }
    printf("replay: %ld inputs ran%s\n", total, rc ? " (with errors above)" : "");
    return rc;
}
