/* version: the notifier's build identity (keeps the service library non-empty). */
const char *ntf_version(void);
const char *ntf_version(void) {
    return "chatops-notifier 0.1.0";
}
