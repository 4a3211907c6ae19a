# crawlpolite. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Test dependencies (redis-server, kube-apiserver, etcd, golangci-lint) are installed and cached by
# version outside the repository; DEPS prints the environment that points the tests at them.
DEPS := hack/test-deps.sh
PKGS := ./...
# Each fuzz target runs this many inputs in make test (a short pass: the seeds plus some new inputs;
# a count, not a duration, because Go 1.26's coordinator can fail a duration run at its deadline with a
# bare "context deadline exceeded", go.dev/issue/75804), and FUZZTIME long in make fuzz.
TEST_FUZZTIME ?= 20000x
FUZZTIME ?= 60s
# make image: the container engine (docker or podman), the image's name and the version it stamps.
ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE ?= ghcr.io/crawlpolite/crawlpolite:$(VERSION)
CHART := charts/crawlpolite

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
	  $(GO) generate $(PKGS) && cp config/crd/bases/*.yaml $(CHART)/crds/ && \
	  { ! git rev-parse --git-dir >/dev/null 2>&1 || [ -z "$$(git status --porcelain -- api config $(CHART)/crds)" ] || \
	    { git status --short -- api config $(CHART)/crds; echo "generated files are out of date: run make generate and commit" >&2; exit 1; }; } && \
	  $(GO) vet $(PKGS) && \
	  golangci-lint run $(PKGS) && \
	  $(GO) test -race -count=1 -timeout 30m $$($(GO) list $(PKGS) | grep -v -e '/cmd/sidecar$$' -e '/e2e$$') && \
	  $(GO) test -race -count=1 -timeout 10m ./cmd/sidecar/ && \
	  $(GO) test -race -count=1 -timeout 10m ./e2e/ && \
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
generate: ## Regenerate the CRD and deepcopy code (controller-gen, installed at its pinned version), the chart's CRDs and README.
	@env_lines=$$(bash $(DEPS) generate) && eval "$$env_lines" && $(GO) generate $(PKGS)
	cp config/crd/bases/*.yaml $(CHART)/crds/
	@$(MAKE) --no-print-directory chart-docs

.PHONY: chart-docs
chart-docs: ## Regenerate the chart's README (values table) with helm-docs (make test fails when it is stale).
	@env_lines=$$(bash $(DEPS) chart) && eval "$$env_lines" && helm-docs --chart-search-root charts --log-level warning

.PHONY: chart
chart: ## Lint the chart and run its tests (render matrix, real API server, injection by the built webhook).
	@env_lines=$$(bash $(DEPS) all) && eval "$$env_lines" && helm lint --strict $(CHART) && \
	  $(GO) test -count=1 ./internal/charttest/

.PHONY: image
image: ## Build the container image (docker or podman; IMAGE, VERSION). None here: internal/charttest tests the binaries.
	@[ -n "$(ENGINE)" ] || { echo "make image: no docker or podman on this machine" >&2; exit 1; }
	$(ENGINE) build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: e2e
e2e: ## Run the end-to-end suite, full form, and write its report and charts into E2E_REPORT_DIR (default e2e/report/).
	@env_lines=$$(bash $(DEPS) all) && eval "$$env_lines" && \
	  E2E_FULL=1 E2E_REPORT_DIR=$${E2E_REPORT_DIR:-$(CURDIR)/e2e/report} $(GO) test -count=1 -timeout 30m -v ./e2e/ && \
	  echo "e2e: report in $${E2E_REPORT_DIR:-$(CURDIR)/e2e/report}/report.md"

.PHONY: build
build: ## Build the three programs of the image into bin/ (sidecar, webhook, the crawlpolite CLI).
	$(GO) build -o bin/crawlpolite-sidecar ./cmd/sidecar
	$(GO) build -o bin/crawlpolite-webhook ./cmd/webhook
	$(GO) build -o bin/crawlpolite ./cmd/crawlpolite

.PHONY: demo
demo: ## Run the standalone demo (no Redis, no Kubernetes).
	$(GO) build -o bin/crawlpolite-sidecar ./cmd/sidecar
	$(GO) run ./cmd/demo --sidecar=bin/crawlpolite-sidecar
