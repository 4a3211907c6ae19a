#!/usr/bin/env bash
# fuzz.sh runs every native Go fuzz target of the module for a bounded time each.
#   hack/fuzz.sh [FUZZTIME]        default 30s per target (make fuzz); make test runs a short pass
# New interesting inputs land in the Go build cache; failures are written under the package's
# testdata/fuzz/<Target>/ by go test itself, which is where the committed corpus lives.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null || continue
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target for $fuzztime" >&2
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 2 "$pkg" >&2; then
      echo "fuzz: $pkg $target FAILED (the crasher is under $dir/testdata/fuzz/$target)" >&2
      status=1
    fi
  done
done
exit $status
