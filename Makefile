# crawlpolite. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Test dependencies (redis-server, kube-apiserver, etcd, golangci-lint) are installed and cached by
# version outside the repository; DEPS prints the environment that points the tests at them.
DEPS := hack/test-deps.sh
PKGS := ./...
# Each fuzz target runs this long in make test (a short pass: the seeds plus some new inputs), and
# FUZZTIME long in make fuzz.
TEST_FUZZTIME ?= 5s
FUZZTIME ?= 60s

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN{FS=":.*## "} /^[a-z0-9-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install the test dependencies (idempotent; cached by version).
	@bash $(DEPS) all >/dev/null

.PHONY: test
# The sidecar's black-box tests check what origins observe (gaps between request starts): they run
# alone, not next to other packages' test binaries (kube-apiserver, Redis) on the same cores, whose
# load shows as requests sent late after their turn.
test: ## Install test dependencies, check generated files, then vet, lint, run every test with the race detector and a short fuzz pass.
	@env_lines=$$(bash $(DEPS) all) && eval "$$env_lines" && \
	  $(GO) generate $(PKGS) && \
	  { ! git rev-parse --git-dir >/dev/null 2>&1 || [ -z "$$(git status --porcelain -- api config)" ] || \
	    { git status --short -- api config; echo "generated files are out of date: run make generate and commit" >&2; exit 1; }; } && \
	  $(GO) vet $(PKGS) && \
	  golangci-lint run $(PKGS) && \
	  $(GO) test -race -count=1 -timeout 30m $$($(GO) list $(PKGS) | grep -v '/cmd/sidecar$$') && \
	  $(GO) test -race -count=1 -timeout 10m ./cmd/sidecar/ && \
	  bash hack/fuzz.sh $(TEST_FUZZTIME)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 60s).
	bash hack/fuzz.sh $(FUZZTIME)

.PHONY: unit
unit: ## Run the tests without installing anything (what is missing is skipped).
	$(GO) test -race -count=1 $(PKGS)

.PHONY: lint
lint: ## Run golangci-lint (installed at its pinned version).
	@env_lines=$$(bash $(DEPS) lint) && eval "$$env_lines" && golangci-lint run $(PKGS)

.PHONY: bench
bench: ## Run the benchmarks against real servers (side by side with their baselines).
	@env_lines=$$(bash $(DEPS) bench) && eval "$$env_lines" && \
	  $(GO) test -run '^$$' -bench . -benchtime 3s -count 1 ./pkg/semaphore/... ./pkg/robots/... && \
	  $(GO) test -run '^$$' -bench TopRefresh100k -benchtime 3s -count 1 ./cmd/crawlpolite/ && \
	  CRAWLPOLITE_BENCH=1 $(GO) test -p 1 -count 1 -run '^Test(Proxy|Webhook)Benchmark$$' -v ./cmd/sidecar/ ./cmd/webhook/

.PHONY: generate
generate: ## Regenerate the CRD and deepcopy code (controller-gen, installed at its pinned version).
	@env_lines=$$(bash $(DEPS) generate) && eval "$$env_lines" && $(GO) generate $(PKGS)

.PHONY: e2e
e2e: ## Run the end-to-end suite (real kube-apiserver, Redis and processes).
	@env_lines=$$(bash $(DEPS) all) && eval "$$env_lines" && \
	  if [ -d e2e ]; then $(GO) test -race -count=1 ./e2e/...; else echo "e2e: no suite yet"; fi

.PHONY: build
build: ## Build the three programs of the image into bin/ (sidecar, webhook, the crawlpolite CLI).
	$(GO) build -o bin/crawlpolite-sidecar ./cmd/sidecar
	$(GO) build -o bin/crawlpolite-webhook ./cmd/webhook
	$(GO) build -o bin/crawlpolite ./cmd/crawlpolite

.PHONY: demo
demo: ## Run the standalone demo (no Redis, no Kubernetes).
	$(GO) build -o bin/crawlpolite-sidecar ./cmd/sidecar
	$(GO) run ./cmd/demo --sidecar=bin/crawlpolite-sidecar
