/* version: the ingress's build identity (keeps the service library non-empty). */
const char *cq_ingress_version(void);
const char *cq_ingress_version(void) {
    return "chatops-ingress 0.1.0";
}
