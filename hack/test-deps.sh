#!/usr/bin/env bash
# test-deps.sh installs what `make test` needs, idempotently, cached by version outside the repository:
#   - Debian's redis-server, redis-sentinel and redis-tools (apt-get; needs root or sudo);
#   - kube-apiserver and etcd, built from the Go module proxy (no binary download is needed);
#   - golangci-lint, controller-gen, helm (v4) and helm-docs, built with `go install`;
#   - for `make bench` only: Debian's wrk and tinyproxy.
# It prints `export` lines for the variables the tests read (KUBEBUILDER_ASSETS, PATH); the Makefile evals them.
# Everything it writes goes under $CRAWLPOLITE_CACHE (default ~/.cache/crawlpolite).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
GOLANGCI_VERSION=${GOLANGCI_VERSION:-v2.15.0}
CONTROLLER_GEN_VERSION=${CONTROLLER_GEN_VERSION:-v0.23.0}
HELM_VERSION=${HELM_VERSION:-v4.3.2}
HELM_DOCS_VERSION=${HELM_DOCS_VERSION:-v1.14.2}
CACHE=${CRAWLPOLITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crawlpolite}

log() { echo "test-deps: $*" >&2; }

# One install at a time: concurrent runs (parallel make targets, several checkouts) share the cache.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# has_version BINARY MODULE VERSION: true when BINARY exists and was built from MODULE at VERSION.
has_version() {
  [ -x "$1" ] && go version -m "$1" 2>/dev/null | awk -v m="$2" -v v="$3" '$1=="dep"||$1=="mod"{ if ($2==m && $3==v) f=1 } END{ exit !f }'
}

install_redis() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v redis-sentinel >/dev/null; then return; fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing redis-server, redis-sentinel and redis-tools with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-sentinel redis-tools >&2
  # Debian's packages start system services on 6379 and 26379; the tests never use them, but do not leave them running.
  for svc in redis-server redis-sentinel; do
    $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
  done
}

# install_bench_tools: wrk (the load generator) and tinyproxy (the baseline proxy), from Debian.
install_bench_tools() {
  if command -v wrk >/dev/null && command -v tinyproxy >/dev/null; then return; fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing wrk and tinyproxy with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk tinyproxy >&2
  # The package starts a system tinyproxy on 8888; the benchmark runs its own.
  $sudo systemctl disable --now tinyproxy >/dev/null 2>&1 || $sudo service tinyproxy stop >/dev/null 2>&1 || true
}

# wrapper_build DIR MAINMOD VERSION REPLACE_PREFIX REPLACE_VERSION OUT PKG LDFLAGS
# Builds PKG from MAINMOD@VERSION inside a throwaway wrapper module. MAINMOD's go.mod replaces its
# sibling modules with local directories, which Go ignores for a dependency, so every such replace whose
# module path starts with REPLACE_PREFIX is turned into a pin at REPLACE_VERSION (or VERSION when empty),
# generated from MAINMOD's own go.mod rather than written by hand.
wrapper_build() {
  local dir=$1 mainmod=$2 version=$3 prefix=$4 repver=$5 out=$6 pkg=$7 ldflags=$8
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init crawlpolite.local/wrapper >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "$mainmod@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -f "$gomod" ] || { log "cannot read go.mod of $mainmod@$version"; return 1; }
  local mods
  mods=$(awk '$1 ~ /^=>$/ {next} /=>/ && /\.\// { for (i=1;i<=NF;i++) if ($i=="=>") print $(i-1) }' "$gomod" | grep "^$prefix" | sort -u)
  for m in $mods; do
    [ "$m" = "$mainmod" ] && continue
    local v=${repver:-$version}
    go mod edit -replace "$m=$m@$v"
  done
  go get "$pkg@$version" >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out" "$pkg" >&2
  cd - >/dev/null
}

install_kube() {
  local bin="$CACHE/kube/$K8S_VERSION"
  mkdir -p "$bin"
  if ! has_version "$bin/kube-apiserver" k8s.io/kubernetes "$K8S_VERSION"; then
    log "building kube-apiserver $K8S_VERSION from the Go module proxy (several minutes when cold)"
    local minor staging
    minor=$(echo "$K8S_VERSION" | cut -d. -f2)
    staging="v0.${K8S_VERSION#v1.}"
    local ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    wrapper_build "$CACHE/build/kube-$K8S_VERSION" k8s.io/kubernetes "$K8S_VERSION" "k8s.io/" "$staging" \
      "$bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver "$ld"
    mv "$bin/kube-apiserver.tmp" "$bin/kube-apiserver"
  fi
  if ! has_version "$bin/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"; then
    log "building etcd $ETCD_VERSION from the Go module proxy"
    wrapper_build "$CACHE/build/etcd-$ETCD_VERSION" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "go.etcd.io/etcd/" "" \
      "$bin/etcd.tmp" go.etcd.io/etcd/server/v3 "-s -w"
    mv "$bin/etcd.tmp" "$bin/etcd"
  fi
  echo "export KUBEBUILDER_ASSETS=$bin"
}

install_chart_tools() { # helm lints and renders the chart, helm-docs writes its README
  install_go_tool helm helm.sh/helm/v4 "$HELM_VERSION" helm.sh/helm/v4/cmd/helm
  install_go_tool helm-docs github.com/norwoodj/helm-docs "$HELM_DOCS_VERSION" github.com/norwoodj/helm-docs/cmd/helm-docs
}

install_go_tool() { # name module version package
  local bin="$CACHE/tools/$1-$3"
  if ! has_version "$bin/$1" "$2" "$3"; then
    log "installing $1 $3"
    mkdir -p "$bin"
    GOBIN="$bin" go install "$4@$3" >&2
  fi
  echo "export PATH=$bin:\$PATH"
}

what=${1:-all}
case $what in
  redis) install_redis ;;
  bench) install_redis; install_bench_tools; install_kube ;;
  kube) install_kube ;;
  lint) install_go_tool golangci-lint github.com/golangci/golangci-lint/v2 "$GOLANGCI_VERSION" github.com/golangci/golangci-lint/v2/cmd/golangci-lint ;;
  generate) install_go_tool controller-gen sigs.k8s.io/controller-tools "$CONTROLLER_GEN_VERSION" sigs.k8s.io/controller-tools/cmd/controller-gen ;;
  chart) install_chart_tools ;;
  all)
    install_redis
    install_kube
    install_go_tool golangci-lint github.com/golangci/golangci-lint/v2 "$GOLANGCI_VERSION" github.com/golangci/golangci-lint/v2/cmd/golangci-lint
    install_go_tool controller-gen sigs.k8s.io/controller-tools "$CONTROLLER_GEN_VERSION" sigs.k8s.io/controller-tools/cmd/controller-gen
    install_chart_tools
    ;;
  *) log "usage: $0 [all|redis|bench|kube|lint|generate|chart]"; exit 2 ;;
esac
