#!/usr/bin/env python3
"""deploy/observability: the alert rules and the Grafana dashboard stay true to the services.

- `promtool check rules alerts.yml` and `promtool test rules alerts_test.yml` pass (one scenario
  per alert: it fires on the series that should fire it, stays quiet otherwise), and a rule
  with a changed threshold fails those unit tests (they can fail);
- every metric an alert or a dashboard expression names is one the C services register (a
  "chatops_..." string literal in common/, ingress/, worker/, notifier/), or Prometheus's `up`;
- the dashboard parses, every panel has a query, and every query is valid PromQL (promtool
  checks them as recording rules).
Needs promtool (Debian's prometheus package; scripts/deps.sh) and no Kafka or Redis."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

src = os.environ.get("CQ_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(src, "tests", "support"))
import cqt  # noqa: E402
from cqt import check  # noqa: E402

if not shutil.which("promtool"):
    sys.exit("test_observability: promtool is not installed (scripts/deps.sh installs Debian's prometheus)")
obs = os.path.join(src, "deploy", "observability")

exported = set()
for d in ("common", "ingress", "worker", "notifier"):
    for f in glob.glob(os.path.join(src, d, "*.c")):
        exported |= set(re.findall(r'"(chatops_[a-z0-9_]+)"', open(f).read()))
check(len(exported) > 20, f"found the metrics the services register ({len(exported)})")
# Metrics an alert may name before a service exports them (none now).
PENDING = set()


def metrics_in(expr):
    names = set()
    for n in re.findall(r"\b(chatops_[a-z0-9_]+)", expr):
        names.add(re.sub(r"_(bucket|sum|count)$", "", n) if n not in exported else n)
    return names


def promtool(*args, cwd=obs):
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)


# --- alert rules ---
r = promtool("check", "rules", "alerts.yml")
check(r.returncode == 0, f"promtool check rules alerts.yml ({(r.stdout + r.stderr).strip()})")
r = promtool("test", "rules", "alerts_test.yml")
check(r.returncode == 0, f"promtool test rules alerts_test.yml ({(r.stdout + r.stderr).strip()[-800:]})")
rules_text = open(os.path.join(obs, "alerts.yml")).read()
alerts = re.findall(r"^\s*- alert: (\w+)", rules_text, re.M)
tested = set(re.findall(r"alertname: (\w+)", open(os.path.join(obs, "alerts_test.yml")).read()))
for a in alerts:
    check(a in tested, f"alert {a} has a promtool unit test")
for want in ("chatops_kafka_consumer_lag", "chatops_worker_dlq_total", "chatops_notifier_dlq_total",
             "chatops_ingress_requests_total", "chatops_ready", "chatops_config_reload_failures_total",
             "chatops_redis_persistence_ok"):
    check(want in rules_text, f"an alert watches {want}")
for expr in re.findall(r"^\s*expr: (.*)$", rules_text, re.M):
    for n in metrics_in(expr):
        check(n in exported or n in PENDING, f"alerts.yml: {n} is a metric the services export")

# The unit tests bite: the same rules with the lag threshold raised fail them.
tmp = tempfile.mkdtemp(prefix="obs-")
shutil.copy(os.path.join(obs, "alerts_test.yml"), tmp)
with open(os.path.join(tmp, "alerts.yml"), "w") as f:
    f.write(rules_text.replace("(chatops_kafka_consumer_lag) > 500", "(chatops_kafka_consumer_lag) > 5000"))
r = promtool("test", "rules", "alerts_test.yml", cwd=tmp)
check(r.returncode != 0 and "ChatopsConsumerLagHigh" in r.stdout + r.stderr,
      "promtool test rules fails when a rule changes (the lag threshold)")

# --- dashboard ---
try:
    dash = json.load(open(os.path.join(obs, "dashboard.json")))
except ValueError as e:
    dash = {}
    check(False, f"dashboard.json parses ({e})")
panels = [p for p in dash.get("panels", []) if p.get("type") != "row"]
check(len(panels) >= 9, f"the dashboard has panels for the three services ({len(panels)})")
exprs = []
for p in panels:
    targets = p.get("targets", [])
    check(len(targets) > 0 and all(t.get("expr") for t in targets), f"panel '{p.get('title')}' has queries")
    exprs += [t.get("expr", "") for t in targets]
used = set()
for e in exprs:
    for n in metrics_in(e):
        used.add(n)
        check(n in exported, f"dashboard: {n} is a metric the services export")
for svc in ("ingress", "worker", "notifier"):
    check(any(n.startswith(f"chatops_{svc}_") for n in used), f"dashboard shows chatops_{svc}_* metrics")
with open(os.path.join(tmp, "dash_rules.yml"), "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        q = e.replace("$__rate_interval", "5m").replace('"', '\\"')
        f.write(f'      - record: dashboard:q{i}\n        expr: "{q}"\n')
r = promtool("check", "rules", "dash_rules.yml", cwd=tmp)
check(r.returncode == 0, f"every dashboard query is valid PromQL ({(r.stdout + r.stderr).strip()[-600:]})")
shutil.rmtree(tmp)

sys.exit(cqt.summary())
