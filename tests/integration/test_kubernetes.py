#!/usr/bin/env python3
"""deploy/kubernetes renders, validates and stays true to the services (no cluster here).

Every overlay under deploy/kubernetes/overlays/ is rendered with `kubectl kustomize`; every object
is checked against its schema (npm kubernetes-models, @kubernetes-models/keda and
@kubernetes-models/prometheus-operator, installed with `npm ci` from tests/support/k8s's
package-lock.json into a cache under the build tree), then against the project the way
test_compose.py checks docker-compose.yml: the config in the ConfigMap passes `chatopsctl config
check` (with stand-in files for the Secret's keys), ports and probes are the ones the services
listen on, CQ_* variables are overrides config.c reads, flags are ones main.c accepts, the grace
period outlasts each drain, KEDA scales on the right group and topic up to the partition count,
the PrometheusRule holds deploy/observability/alerts.yml's rules.
Needs no Kafka or Redis."""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

src = os.environ.get("CQ_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.environ.get("CQ_BUILD_DIR") or os.path.join(src, "build")
sys.path.insert(0, os.path.join(src, "tests", "support"))
import cqt  # noqa: E402
from cqt import check  # noqa: E402

kdir = os.path.join(src, "deploy", "kubernetes")
ctl = os.path.join(build, "tools", "chatopsctl")
for tool in ("kubectl", "node", "npm"):
    if not shutil.which(tool):
        sys.exit(f"test_kubernetes: {tool} is not installed (scripts/deps.sh installs it)")
if not os.access(ctl, os.X_OK):
    sys.exit(f"test_kubernetes: chatopsctl not built at {ctl}")


def read(rel):
    with open(os.path.join(src, rel)) as f:
        return f.read()


def yaml_file(path):
    out = subprocess.run([os.path.join(build, "bin", "cqt-yaml2json"), path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# --- the schema packages: npm ci once per package-lock.json, like bench/ingress's Bolt peer ---
pkg_src = os.path.join(src, "tests", "support", "k8s")
lock = open(os.path.join(pkg_src, "package-lock.json"), "rb").read()
cache = os.path.join(build, "npm-cache", "k8s-" + hashlib.sha256(lock).hexdigest()[:12])
if not os.path.isdir(os.path.join(cache, "node_modules")):
    os.makedirs(cache, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(pkg_src, f), cache)
    r = subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=cache,
                       capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(os.path.join(cache, "node_modules"), ignore_errors=True)
        sys.exit("test_kubernetes: npm ci failed in %s:\n%s" % (cache, r.stderr[-2000:]))
validator = os.path.join(pkg_src, "validate.js")
node_env = dict(os.environ, NODE_PATH=os.path.join(cache, "node_modules"))


def validate(text):
    return subprocess.run(["node", validator], input=text, capture_output=True, text=True,
                          env=node_env)


config_c = read("common/config.c")
dockerfile = read("Dockerfile")
example = yaml_file(os.path.join(src, "examples", "ops.yaml"))
# The sub-commands chatopsctl really has: its --help lists each one it dispatches (one table
# drives both in tools/chatopsctl.c).
ctl_help = subprocess.run([ctl, "--help"], capture_output=True, text=True).stdout
mains = {"chatops-ingress": read("ingress/main.c"), "chatops-worker": read("worker/main.c"),
         "chatops-notifier": read("notifier/main.c"), "chatopsctl": read("tools/chatopsctl.c")}
m = re.search(r"drain_timeout_ms > 0 \? opts->drain_timeout_ms : (\d+);", read("worker/service.c"))
check(m is not None, "worker/service.c: the worker's drain time is found")
worker_drain_s = int(m.group(1)) / 1000 if m else 15

# The validator is live: a broken object fails it (else every check below proves nothing).
bad = validate("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\n"
               "spec: {scaleTargetRef: {name: x}, maxReplicaCount: six, triggers: []}\n"
               "---\napiVersion: v1\nkind: Nonsense\nmetadata: {name: y}\n")
check(bad.returncode != 0 and "maxReplicaCount" in bad.stderr and "no schema" in bad.stderr,
      f"the validator rejects a bad ScaledObject and an unknown kind ({bad.stderr.strip()!r})")


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def port_of(c, name):
    return next((p["containerPort"] for p in c.get("ports", []) if p.get("name") == name), None)


def check_pod(where, obj, objs, cfg_env):
    """Security, config and secrets of one pod template; returns the effective config."""
    pod = obj["spec"]["template"]["spec"]
    sc = pod.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, f"{where}: runs as non-root")
    check(pod.get("automountServiceAccountToken") is False, f"{where}: no service account token")
    c = pod["containers"][0]
    csc = c.get("securityContext", {})
    check(csc.get("readOnlyRootFilesystem") is True, f"{where}: read-only root filesystem")
    check(csc.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drops every capability")
    res = c.get("resources", {})
    for k in ("cpu", "memory"):
        check(k in res.get("requests", {}), f"{where}: requests {k}")
    check("memory" in res.get("limits", {}), f"{where}: limits memory")
    prog = c["command"][0]
    check(prog in mains, f"{where}: {prog} is a project binary")
    check(prog in dockerfile, f"{where}: the Dockerfile installs {prog}")
    for flag in [a for a in c.get("args", []) if a.startswith("--")]:
        check(f'"{flag}"' in mains.get(prog, ""), f"{where}: {prog} accepts {flag}")
    env = {e["name"]: e for e in c.get("env", [])}
    refs = re.findall(r"\$\((\w+)\)", " ".join(c.get("args", [])))
    for r in refs:
        check(r in env, f"{where}: $({r}) in args is a container env var")
    # Config: CHATOPS_CONFIG names ops.yaml in the mounted chatops-config ConfigMap.
    mounts = {v["name"]: v["mountPath"] for v in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cfg_path = env.get("CHATOPS_CONFIG", {}).get("value", "")
    cm_vol = next((n for n, v in vols.items() if v.get("configMap", {}).get("name", "").startswith("chatops-config")), None)
    check(cm_vol is not None and cfg_path == mounts.get(cm_vol, "?") + "/ops.yaml",
          f"{where}: CHATOPS_CONFIG ({cfg_path}) is ops.yaml in the mounted chatops-config")
    cm = next((o for o in objs if o["kind"] == "ConfigMap" and cm_vol and
               o["metadata"]["name"] == vols[cm_vol]["configMap"]["name"]), None)
    check(cm is not None and "ops.yaml" in cm.get("data", {}), f"{where}: the config ConfigMap exists")
    # Env: every envFrom ConfigMap exists; every CQ_* name is an override config.c reads.
    for ef in c.get("envFrom", []):
        name = ef.get("configMapRef", {}).get("name")
        envcm = next((o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name), None)
        check(envcm is not None, f"{where}: envFrom ConfigMap {name} exists")
        for key in (envcm or {}).get("data", {}):
            check(key.startswith("CQ_") and f'"{key}"' in config_c, f"{where}: {key} is an override config.c reads")
    # Secrets: the Secret volume's items are exactly the files the config reads.
    sec_vol = next((n for n, v in vols.items() if "secret" in v), None)
    check(sec_vol is not None and mounts.get(sec_vol), f"{where}: the Secret is mounted")
    items = {i["path"] for i in vols.get(sec_vol, {}).get("secret", {}).get("items", [])}
    text = cm["data"]["ops.yaml"] if cm else ""
    used = set(re.findall(r'^\s*[a-z_]+:\s*"file:\.\./secrets/([a-z0-9-]+)"', text, re.M))
    check(used and used == items, f"{where}: Secret items {sorted(items)} = files the config reads {sorted(used)}")
    check(mounts.get(sec_vol) == os.path.dirname(os.path.dirname(cfg_path)) + "/secrets",
          f"{where}: secrets mounted beside the config dir (file:../secrets/...)")
    return pod, c


def config_of(objs, overlay):
    """Writes the ConfigMap's ops.yaml with stand-in secrets and runs chatopsctl config check."""
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("chatops-config"))
    envcm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("chatops-env"))
    tmp = tempfile.mkdtemp(prefix="k8s-cfg-")
    os.makedirs(os.path.join(tmp, "config"))
    os.makedirs(os.path.join(tmp, "secrets"))
    text = cm["data"]["ops.yaml"]
    for name in re.findall(r'"file:\.\./secrets/([a-z0-9-]+)"', text):
        with open(os.path.join(tmp, "secrets", name), "w") as f:
            f.write(f"stand-in-{name}-0123456789abcdef\n")
    path = os.path.join(tmp, "config", "ops.yaml")
    with open(path, "w") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CQ_")}
    env.update(envcm["data"])
    r = subprocess.run([ctl, "config", "check", path], capture_output=True, text=True, env=env, cwd=tmp)
    check(r.returncode == 0, f"{overlay}: chatopsctl config check passes on the ConfigMap's ops.yaml "
          f"({(r.stdout + r.stderr).strip()[-400:]})")
    cfg = yaml_file(path)
    shutil.rmtree(tmp)
    return cfg, envcm["data"]


def check_overlay(overlay):
    r = subprocess.run(["kubectl", "kustomize", os.path.join(kdir, "overlays", overlay)],
                       capture_output=True, text=True)
    if not check(r.returncode == 0, f"{overlay}: kubectl kustomize renders ({r.stderr.strip()[-300:]})"):
        return
    v = validate(r.stdout)
    check(v.returncode == 0, f"{overlay}: every object validates against its schema ({v.stderr.strip()})")
    objs = json.loads(v.stdout or "[]")
    byname = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    cfg, envcm = config_of(objs, overlay)
    eff = lambda key, val: int(envcm.get(key, val))  # noqa: E731 the CQ_* override wins
    ports = {"chatops-ingress": {"http": eff("CQ_INGRESS_PORT", cfg["ingress"]["port"]),
                                 "admin": eff("CQ_INGRESS_ADMIN_PORT", cfg["ingress"]["admin_port"])},
             "chatops-worker": {"admin": eff("CQ_WORKER_HTTP_PORT", cfg["worker"]["http_port"])},
             "chatops-notifier": {"admin": eff("CQ_NOTIFIER_HTTP_PORT", cfg["notifier"]["http_port"])}}
    check(cfg["ingress"].get("admin_listen") == "0.0.0.0",
          f"{overlay}: ingress.admin_listen 0.0.0.0 (the kubelet probes the pod IP)")
    check(cfg.get("ingress", {}).get("listen", "0.0.0.0") == "0.0.0.0",
          f"{overlay}: ingress.listen (also the worker's and notifier's admin address) is 0.0.0.0")
    for sect in ("commands", "people", "channels", "policy"):
        check(cfg.get(sect) == example.get(sect), f"{overlay}: {sect} are those of examples/ops.yaml")
    ptimeout = int(cfg["kafka"].get("produce_timeout_ms", 2000)) / 1000
    ntf = cfg.get("notifier", {})
    ndrain = int(ntf.get("drain_ms", 0)) or int(ntf.get("http_timeout_ms", 10000)) + 5000
    drains = {"chatops-ingress": ptimeout + 1.5, "chatops-worker": worker_drain_s,
              "chatops-notifier": ndrain / 1000}
    for name, want in ports.items():
        d = byname.get(("Deployment", name))
        if not check(d is not None, f"{overlay}: Deployment {name}"):
            continue
        where = f"{overlay}/{name}"
        pod, c = check_pod(where, d, objs, cfg)
        for pname, port in want.items():
            check(port_of(c, pname) == port, f"{where}: containerPort {pname} = {port} (config)")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            hg = c.get(probe, {}).get("httpGet", {})
            check(hg.get("path") == path and hg.get("port") == "admin", f"{where}: {probe} GET {path} on the admin port")
        pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_s = float(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
        grace = pod.get("terminationGracePeriodSeconds", 30)
        check(grace > pre_s + drains[name] + 5, f"{where}: grace {grace}s > preStop {pre_s}s + drain {drains[name]}s + 5s")
        if name == "chatops-worker":
            args = c.get("args", [])
            check("--id" in args and any(e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"
                                         for e in c.get("env", []) if e["name"] == "POD_NAME"),
                  f"{where}: --id is the pod name")
        svc = byname.get(("Service", name))
        if check(svc is not None, f"{overlay}: Service {name}"):
            sel = svc["spec"]["selector"]
            labels = d["spec"]["template"]["metadata"]["labels"]
            check(all(labels.get(k) == v for k, v in sel.items()), f"{overlay}: Service {name} selects its pods")
            for sp in svc["spec"]["ports"]:
                check(port_of(c, sp["targetPort"]) == sp["port"], f"{overlay}: Service {name} port {sp['name']} -> container")
        pdb = byname.get(("PodDisruptionBudget", name))
        check(pdb is not None and pdb["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items(),
              f"{overlay}: PodDisruptionBudget {name} covers its pods")
    if overlay != "production":
        return
    # --- production: autoscaling, the topic Job, the ServiceMonitor ---
    parts = int(cfg["kafka"]["partitions"])
    consumers = {"chatops-worker": (cfg["kafka"]["groups"]["worker"], cfg["kafka"]["topics"]["requests"]),
                 "chatops-notifier": (cfg["kafka"]["groups"]["notifier"], cfg["kafka"]["topics"]["results"])}
    for name, (group, topic) in consumers.items():
        so = byname.get(("ScaledObject", name))
        if not check(so is not None, f"production: KEDA ScaledObject {name}"):
            continue
        check(so["spec"]["scaleTargetRef"]["name"] == name, f"production: {name} scales its Deployment")
        check(so["spec"].get("maxReplicaCount") == parts, f"production: {name} maxReplicaCount = kafka.partitions ({parts})")
        check(1 <= so["spec"].get("minReplicaCount", 0) <= parts, f"production: {name} minReplicaCount in 1..{parts}")
        trig = so["spec"]["triggers"]
        check(len(trig) == 1 and trig[0]["type"] == "kafka", f"production: {name} scales on Kafka lag")
        md = trig[0]["metadata"] if trig else {}
        check(md.get("consumerGroup") == group and md.get("topic") == topic,
              f"production: {name} watches group {group} on {topic}")
        check(md.get("bootstrapServersFromEnv") in envcm, f"production: {name} reads brokers from a container env var")
    hpa = byname.get(("HorizontalPodAutoscaler", "chatops-ingress"))
    if check(hpa is not None, "production: HPA for the ingress"):
        check(hpa["spec"]["scaleTargetRef"]["name"] == "chatops-ingress"
              and hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu", "production: the ingress HPA scales on CPU")
    job = byname.get(("Job", "chatops-topics"))
    if check(job is not None, "production: topic Job"):
        check_pod("production/chatops-topics", job, objs, cfg)
        c = containers(job)[0]
        args = [a for a in c.get("args", []) if not a.startswith("--") and not a.startswith("$(")]
        check(c["command"] == ["chatopsctl"] and args == ["topics", "ensure"]
              and re.search(r"^\s*topics ensure\b", ctl_help, re.M) is not None,
              f"production: the Job runs chatopsctl topics ensure ({c['command'] + c.get('args', [])})")
    sm = byname.get(("ServiceMonitor", "chatops"))
    if check(sm is not None, "production: ServiceMonitor"):
        sel = sm["spec"]["selector"]["matchLabels"]
        matched = [o for o in objs if o["kind"] == "Service"
                   and sel.items() <= o["metadata"].get("labels", {}).items()]
        check(len(matched) == 3, f"production: the ServiceMonitor selects the three Services ({len(matched)})")
        for ep in sm["spec"]["endpoints"]:
            for s in matched:
                check(any(p["name"] == ep["port"] for p in s["spec"]["ports"]),
                      f"production: {s['metadata']['name']} has the scraped port {ep['port']}")
            check(ep.get("path") == "/metrics", "production: scrapes /metrics")
    pr = byname.get(("PrometheusRule", "chatops"))
    if check(pr is not None, "production: PrometheusRule"):
        alerts = yaml_file(os.path.join(src, "deploy", "observability", "alerts.yml"))
        strs = json.loads(json.dumps(pr["spec"]), parse_int=str, parse_float=str)
        check(strs.get("groups") == alerts.get("groups"),
              "production: the PrometheusRule holds deploy/observability/alerts.yml's groups")


overlays = sorted(os.path.basename(p) for p in glob.glob(os.path.join(kdir, "overlays", "*")))
check({"dev", "production"} <= set(overlays), f"overlays dev and production exist ({overlays})")
for ov in overlays:
    before = cqt.failures
    check_overlay(ov)
    print("%s overlay %s" % ("ok  " if cqt.failures == before else "FAIL", ov), flush=True)
sys.exit(cqt.summary())
