#!/usr/bin/env python3
"""docker-compose.yml stays true to the native stack (there is no Docker engine here).

Parses the compose file with build/bin/cqt-yaml2json (libyaml; anchors and merge keys resolved
as compose does) and checks that every service, command, port, env var and volume it names
exists in the project and matches examples/ops.yaml and what config.c accepts; that services
start in order (healthchecks on /readyz, depends_on conditions); and that the demo fakes run
where the config points, with its secrets. Fails loudly on each mismatch."""
import json
import os
import re
import subprocess
import sys

src = os.environ.get("CQ_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.environ.get("CQ_BUILD_DIR") or os.path.join(src, "build")
sys.path.insert(0, os.path.join(src, "tests", "support"))
import cqt  # noqa: E402
from cqt import check  # noqa: E402


def yaml(path):
    out = subprocess.run([os.path.join(build, "bin", "cqt-yaml2json"), path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


compose = yaml(os.path.join(src, "docker-compose.yml"))
example = yaml(os.path.join(src, "examples", "ops.yaml"))
config_c = open(os.path.join(src, "common", "config.c")).read()
dockerfile = open(os.path.join(src, "Dockerfile")).read()
services = compose["services"]
# What the Dockerfile copies into the image: (repo path, image path) of each COPY.
copies = [tuple(m) for m in re.findall(r"^COPY (?!--from)(\S+) (\S+)$", dockerfile, re.M)]

for name in ("kafka", "redis", "topics", "ingress", "worker", "notifier"):
    check(name in services, f"service {name} present")

# Every binary a service runs is one the Dockerfile installs and CMake builds.
targets = {"chatops-ingress": "ingress", "chatops-worker": "worker",
           "chatops-notifier": "notifier", "chatopsctl": "tools"}
for name, svc in services.items():
    if "build" not in svc:
        continue
    cmd = svc["command"]
    prog = cmd[0]
    if prog == "python3":
        rel = next((s + cmd[1][len(d):] for s, d in copies if cmd[1] == d or cmd[1].startswith(d + "/")),
                   cmd[1])
        check(os.path.exists(os.path.join(src, rel)), f"{name}: {cmd[1]} maps to an existing {rel}")
        continue
    check(prog in targets, f"{name}: {prog} is a project binary")
    check(prog in dockerfile, f"{name}: Dockerfile installs {prog}")
    check(os.path.isfile(os.path.join(src, targets.get(prog, "x"), "CMakeLists.txt")),
          f"{name}: {prog} has a source directory")
    if "--config" in cmd:
        path = cmd[cmd.index("--config") + 1]
        check(path.startswith("/etc/chatops/examples/"), f"{name}: config under the copied examples/")
        check(os.path.exists(os.path.join(src, "examples", os.path.basename(path))),
              f"{name}: {path} exists as examples/{os.path.basename(path)}")

# Env vars: CQ_* must be overrides config.c implements; secrets must be the ones ops.yaml reads.
def scalars(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from scalars(v)
    elif isinstance(node, list):
        for v in node:
            yield from scalars(v)
    else:
        yield node


secret_refs = {m for v in scalars(example) for m in re.findall(r"^\$\{([A-Z0-9_]+)\}$", v)}
check(len(secret_refs) >= 5, f"examples/ops.yaml references its secrets as ${{ENV}} ({sorted(secret_refs)})")
for name, svc in services.items():
    if "build" not in svc:
        continue
    env = svc.get("environment", {})
    for key in env:
        if key.startswith("CQ_"):
            check(f'"{key}"' in config_c, f"{name}: {key} is an override config.c reads")
    if name in ("ingress", "worker", "notifier", "topics"):
        for ref in secret_refs:
            check(ref in env, f"{name}: secret env {ref} (referenced by examples/ops.yaml) is set")

# Ports match the example config and nothing pins a worker port (so --scale worker=N works).
check(services["ingress"]["environment"].get("CQ_INGRESS_PORT") == example["ingress"]["port"],
      "ingress port matches examples/ops.yaml ingress.port")
check(services["ingress"].get("ports", [""])[0].split(":")[-1] == example["ingress"]["port"],
      "ingress publishes its port")
check("ports" not in services["worker"], "worker publishes no fixed host port (scalable)")
check(services["worker"]["environment"].get("CQ_WORKER_HTTP_PORT") == example["worker"]["http_port"],
      "worker http port matches examples/ops.yaml")
check(services["notifier"]["environment"].get("CQ_NOTIFIER_HTTP_PORT") == example["notifier"]["http_port"],
      "notifier http port matches examples/ops.yaml")

# Kafka KRaft settings mirror scripts/kafka.sh (single node, replication 1).
kenv = services["kafka"]["environment"]
check(kenv.get("KAFKA_PROCESS_ROLES") == "broker,controller", "kafka runs KRaft combined mode")
check(kenv.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == example["kafka"]["replication"],
      "offsets topic replication matches kafka.replication")
check(services["redis"]["command"][-2:] == ["--appendonly", "yes"], "redis persists with AOF like scripts/redis.sh")
for name, svc in services.items():
    for vol in svc.get("volumes", []):
        check(vol.split(":")[0] in compose.get("volumes", {}), f"{name}: volume {vol} declared")
for d in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
    check(d == "." or os.path.exists(os.path.join(src, d)), f"Dockerfile COPY source {d} exists")

# The shared environment is written once (an x- extension merged into each service).
raw = open(os.path.join(src, "docker-compose.yml")).read()
check(raw.count("SLACK_SIGNING_SECRET:") == 1 and "<<: *chatops-env" in raw,
      "the shared environment is written once and merged (<<: *chatops-env)")

# Start order: every dependency waits for a condition, and the condition can be met.
for name, svc in services.items():
    deps = svc.get("depends_on", {})
    check(isinstance(deps, dict), f"{name}: depends_on names a condition for each dependency")
    for dep, cond in (deps if isinstance(deps, dict) else {}).items():
        c = cond.get("condition")
        check(dep in services, f"{name}: depends on an existing service {dep}")
        if c == "service_healthy":
            check("healthcheck" in services.get(dep, {}), f"{name}: {dep} has the healthcheck it waits for")
        elif c == "service_completed_successfully":
            check(dep == "topics", f"{name}: waits for the one-shot topics job to complete")
        else:
            check(c == "service_started" and services.get(name, {}).get("network_mode") == f"service:{dep}",
                  f"{name}: {dep} condition {c} (only a shared network namespace waits for a start)")
for name in ("ingress", "worker", "notifier"):
    check(services[name].get("depends_on", {}).get("topics", {}).get("condition")
          == "service_completed_successfully", f"{name}: starts after the topics exist")
    for dep in ("kafka", "redis"):
        check(services[name]["depends_on"].get(dep, {}).get("condition") == "service_healthy",
              f"{name}: starts after {dep} is healthy")

# Healthchecks: each service's /readyz on the port it serves it on (inside the container).
admin = {"ingress": services["ingress"]["environment"].get("CQ_INGRESS_ADMIN_PORT", example["ingress"]["admin_port"]),
         "worker": example["worker"]["http_port"], "notifier": example["notifier"]["http_port"]}
check(example["ingress"].get("admin_listen") in ("127.0.0.1", "0.0.0.0"),
      "the ingress admin listener is reachable from inside its container")
for name, port in admin.items():
    test = " ".join(services[name].get("healthcheck", {}).get("test", []))
    check(f"http://127.0.0.1:{port}/readyz" in test, f"{name}: healthcheck GETs /readyz on :{port} ({test})")
check("kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"]), "kafka healthcheck asks the broker")
check(services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"], "redis healthcheck pings")

# The demo fakes: the three of scripts/run.sh, on the addresses and with the secrets the
# example config and the shared environment use.
env = services["ingress"]["environment"]
fakes = {}
for name, svc in services.items():
    cmd = svc.get("command", [])
    if len(cmd) > 2 and cmd[1].endswith("/demo_fakes.py"):
        fakes[cmd[2]] = (name, cmd)
check(set(fakes) == {"gitlab", "slack", "feishu"}, f"the demo fakes run: {sorted(fakes)}")


def flag(cmd, f):
    return [cmd[i + 1] for i in range(len(cmd) - 1) if cmd[i] == f]


if set(fakes) == {"gitlab", "slack", "feishu"}:
    gname, g = fakes["gitlab"]
    check(env["CQ_GITLAB_BASE_URL"] == f"http://{gname}:{flag(g, '--port')[0]}" and flag(g, "--listen") == ["0.0.0.0"],
          "fake GitLab listens where CQ_GITLAB_BASE_URL points")
    check(flag(g, "--api-token") == [env["GITLAB_API_TOKEN"]], "fake GitLab takes the API token the config sends")
    check(sorted(flag(g, "--trigger-token")) == sorted([env["LB_TRIGGER_TOKEN"], env["DEPLOY_TRIGGER_TOKEN"]]),
          "fake GitLab takes both trigger tokens")
    check(flag(g, "--hook-url") == [f"http://ingress:{env['CQ_INGRESS_PORT']}{example['ingress']['paths']['gitlab_webhook']}"]
          and flag(g, "--hook-token") == [env["GITLAB_WEBHOOK_TOKEN"]], "fake GitLab posts pipeline hooks to the ingress")
    for plat, key in (("slack", "slack"), ("feishu", "feishu")):
        name, cmd = fakes[plat]
        base = example[key]["api_base"]
        check(base.startswith(f"http://127.0.0.1:{flag(cmd, '--port')[0]}/")
              and services[name].get("network_mode") == "service:notifier",
              f"{name}: in the notifier's namespace on the port of {key}.api_base ({base})")
        check(f"{flag(cmd, '--port')[0]}:{flag(cmd, '--port')[0]}" in services["notifier"].get("ports", []),
              f"{name}: its /_log is published")
    check(flag(fakes["slack"][1], "--bot-token") == [env["SLACK_BOT_TOKEN"]], "fake Slack takes the bot token")
    check(flag(fakes["feishu"][1], "--app-id") == [example["feishu"]["app_id"]]
          and flag(fakes["feishu"][1], "--app-secret") == [env["FEISHU_APP_SECRET"]], "fake Feishu takes the app id and secret")
    usage = open(os.path.join(src, "scripts", "demo_fakes.py")).read()
    for f in {x for _, c in fakes.values() for x in c if x.startswith("--")}:
        check(f'"{f}"' in usage, f"demo_fakes.py accepts {f}")

sys.exit(cqt.summary())
