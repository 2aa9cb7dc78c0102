# syntax=docker/dockerfile:1
#
# The greeter server image. Build context: the repository root.
#
#   docker build -f deploy/docker/greeter.Dockerfile -t greeter .
#
# The server module builds alone, as `make build` does: its go.work points
# the gen/go version its go.mod requires at the gen/go copied beside it, and
# every other dependency is at the version of services/greeter/go.mod. The
# result is a static binary on distroless, running as the unprivileged user
# 65532. test/deploycheck checks these invariants, that the binary links
# exactly the server module's own versions, and that EXPOSE matches the
# ports of deploy/kubernetes.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src/services/greeter
# Never fetch another toolchain; a static binary, no cgo.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
# The module files first, so the download is a cached layer of its own.
COPY gen/go/go.mod gen/go/go.sum /src/gen/go/
COPY services/greeter/go.mod services/greeter/go.sum services/greeter/go.work ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY gen/go/ /src/gen/go/
COPY services/greeter/ ./
# No .git in the context: -buildvcs=false, and the version reads "(devel)".
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -buildvcs=false -ldflags="-s -w" \
      -o /out/greeter ./cmd/greeter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/greeter /greeter
USER 65532:65532
# gRPC, and the admin HTTP server (/metrics, /healthz, /readyz).
EXPOSE 50051 9090
ENTRYPOINT ["/greeter"]
