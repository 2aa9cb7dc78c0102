# syntax=docker/dockerfile:1
#
# The greeter server image. Build context: the repository root.
#
#   docker build -f deploy/docker/greeter.Dockerfile -t greeter .
#
# The build runs in workspace mode (go.work), so the server compiles against
# the gen/go in this tree, exactly as `make build` does. The result is a
# static binary on distroless, running as the unprivileged user 65532.
# tools/internal/deploycheck checks these invariants and that EXPOSE matches
# the ports of deploy/kubernetes.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Never fetch another toolchain; a static binary, no cgo.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=/src/go.work
# go.work lists every module; the ones not built here need only their go.mod
# (and go.sum) for the workspace to load. Copied first for layer caching.
COPY go.work go.work.sum ./
COPY gen/go/go.mod gen/go/go.sum gen/go/
COPY services/greeter/go.mod services/greeter/go.sum services/greeter/
COPY clients/greetctl/go.mod clients/greetctl/go.sum clients/greetctl/
COPY tools/go.mod tools/go.sum tools/
COPY gen/go/ gen/go/
COPY services/greeter/ services/greeter/
# No .git in the context: -buildvcs=false, and the version reads "(devel)".
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -buildvcs=false -ldflags="-s -w" \
      -o /out/greeter ./services/greeter/cmd/greeter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/greeter /greeter
USER 65532:65532
# gRPC, and the admin HTTP server (/metrics, /healthz, /readyz).
EXPOSE 50051 9090
ENTRYPOINT ["/greeter"]
