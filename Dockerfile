# syntax=docker/dockerfile:1
# One static image holding every crawlpolite program:
#   /usr/local/bin/crawlpolite-sidecar  the politeness proxy the webhook injects (its container names
#                                       this path as its command, so it does not depend on ENTRYPOINT)
#   /usr/local/bin/crawlpolite-webhook  the manager: admission webhook and policy controller
#   /usr/local/bin/crawlpolite          the CLI (cmd/crawlpolite: top, explain, hosts, robots); copied
#                                       out and named kubectl-crawlpolite it is a kubectl plugin
#
#   make image                      # docker or podman: IMAGE=... VERSION=...
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/crawlpolite/crawlpolite:v0.1.0 .
#
# No shell or libc at run time: the binaries are built with CGO_ENABLED=0 (internal/charttest proves
# they are static and start with an empty environment from a read-only directory).

# The builder is pinned to the Go release go.mod is tested with; release builds pin it by digest too
# (--build-arg GO_IMAGE=golang:1.26.8-bookworm@sha256:...).
ARG GO_IMAGE=golang:1.26.8-bookworm
# distroless static, nonroot variant (uid/gid 65532, CA certificates, tzdata, no shell). Release
# builds pass it by digest: --build-arg BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:...
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
# Set by BuildKit from --platform (cross-compiled on the build machine's platform).
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
# -X main.version stamps the sidecar and the manager (each logs it at start); the CLI has no version
# variable yet, so for it the flag is a no-op.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; mkdir -p /out; \
    for p in sidecar:crawlpolite-sidecar webhook:crawlpolite-webhook crawlpolite:crawlpolite; do \
      dir=${p%%:*}; bin=${p#*:}; \
      GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} go build -ldflags "-s -w -X main.version=$VERSION" -o "/out/$bin" "./cmd/$dir"; \
    done

FROM ${BASE_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="crawlpolite" \
      org.opencontainers.image.description="Kubernetes sidecar proxy that makes crawlers polite: shared per-host concurrency, delays and robots.txt" \
      org.opencontainers.image.source="https://github.com/crawlpolite/crawlpolite" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# The manager is the default program; the injected sidecar names its own command.
ENTRYPOINT ["/usr/local/bin/crawlpolite-webhook"]
