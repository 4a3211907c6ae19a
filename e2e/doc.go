// Package e2e runs crawlpolite end to end the way a user runs it: a real kube-apiserver and etcd
// with the project's manifests applied, the webhook binary as its own ServiceAccount (so RBAC is
// real), crawler pods created through the API server, and a stand-in kubelet that starts, for
// each mutated pod, the injected sidecar and the crawler as processes with exactly the command,
// arguments, environment (secretKeyRef and resourceFieldRef resolved) and mounted files the pod's
// spec gives them. Origins on distinct loopback addresses record every request they receive:
// politeness is judged by what they saw.
//
// `make test` runs the short form; `make e2e` (E2E_FULL=1) runs every scenario longer and writes a
// report with charts into $E2E_REPORT_DIR (default e2e/report/).
package e2e
