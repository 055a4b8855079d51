#!/usr/bin/env python3
"""docker-compose.yml stays true to the native stack (there is no Docker engine here).

Parses the compose file with the project's own YAML parser (build/bin/cqt-yaml2json) and
checks that every service, command, port, env var and volume it names exists in the project
and matches examples/ops.yaml and what config.c accepts. Fails loudly on each mismatch."""
import json
import os
import re
import subprocess
import sys

src = os.environ.get("CQ_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.environ.get("CQ_BUILD_DIR") or os.path.join(src, "build")
sys.path.insert(0, os.path.join(src, "tests", "support"))
import cqt  # noqa: E402
from cqt import check, stack_file  # noqa: E402


def yaml(path):
    out = subprocess.run([os.path.join(build, "bin", "cqt-yaml2json"), path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


compose = yaml(os.path.join(src, "docker-compose.yml"))
example = yaml(os.path.join(src, "examples", "ops.yaml"))
config_c = open(os.path.join(src, "common", "config.c")).read()
dockerfile = open(os.path.join(src, "Dockerfile")).read()
services = compose["services"]

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
        rel = cmd[1].replace("/opt/chatops/fakes/", "tests/fakes/")
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

sys.exit(cqt.summary())
