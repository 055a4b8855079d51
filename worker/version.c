/* version: the worker's build identity (keeps the service library non-empty). */
const char *w_version(void);
const char *w_version(void) {
    return "chatops-worker 0.1.0";
}
