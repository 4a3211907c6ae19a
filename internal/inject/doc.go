// Package inject is the pod mutation of crawlpolite's admission webhook: given a pod and the
// injector's configuration, it adds the politeness sidecar (a native sidecar by default), points
// every app container's HTTP(S)_PROXY at it (and every init container's, with a native sidecar), and mounts the per-pod CA bundle. Mutate is
// pure and idempotent: applying it to its own output changes nothing, and reinvocation after
// another mutating webhook adds only what is missing. Webhook adapts it to controller-runtime.
package inject
