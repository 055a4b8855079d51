/* version: the ingress's build identity (keeps the service library non-empty). */
const char *ing_version(void);
const char *ing_version(void) {
    return "chatops-ingress 0.1.0";
}
