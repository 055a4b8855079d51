// validate.js: reads rendered Kubernetes YAML (kubectl kustomize output) on stdin, checks every
// object against its schema (kubernetes-models, @kubernetes-models/keda,
// @kubernetes-models/prometheus-operator) and prints the objects as one JSON array on stdout.
// An object of a kind no package knows, or one that fails its schema, is an error: one line per
// object on stderr, exit 1. Used by tests/integration/test_kubernetes.py.
"use strict";
const fs = require("fs");
const yaml = require("js-yaml");

const packages = {
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

function model(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const pkg = packages[group] || "kubernetes-models";
  const path = group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
  try {
    return require(path)[kind];
  } catch (e) {
    return null;
  }
}

const docs = yaml.loadAll(fs.readFileSync(0, "utf8")).filter((d) => d);
let bad = 0;
for (const d of docs) {
  const what = `${d.apiVersion} ${d.kind} ${d.metadata && d.metadata.name}`;
  const M = d.apiVersion && d.kind ? model(d.apiVersion, d.kind) : null;
  if (!M) {
    console.error(`${what}: no schema for this kind`);
    bad++;
    continue;
  }
  try {
    new M(d).validate();
  } catch (e) {
    console.error(`${what}: ${e.message}`);
    bad++;
  }
}
process.stdout.write(JSON.stringify(docs));
process.exit(bad ? 1 : 0);
