// Package controller compiles the Helm/flag policy defaults and every CrawlPolicy into the policy
// document the sidecars read, and delivers it as a ConfigMap to every namespace with injected pods,
// so crawler pods need no API credentials; with a Redis password Secret configured, it copies the
// password (alone) there too. A namespace whose injected pods are all gone, or all finished
// (Succeeded or Failed, like a completed Job's: they never run again), is marked and loses both
// after a grace period. It reports what it did in each CrawlPolicy's status.
package controller
