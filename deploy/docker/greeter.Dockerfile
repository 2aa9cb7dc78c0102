# syntax=docker/dockerfile:1
#
# The greeter server image. Build context: the repository root.
#
#   docker build -f deploy/docker/greeter.Dockerfile -t greeter .
#
# The server builds in the repository's workspace, as `make build` does: the
# root go.work (which needs the go.mod of every module it uses) and this
# tree's gen/go. test/e2e/release and test/deploycheck prove the binary links
# exactly the server module's own versions (`make tidy` keeps the workspace
# aligned). The result is a static binary on distroless, running as the
# unprivileged user 65532. test/deploycheck checks these invariants and that
# EXPOSE matches the ports of deploy/kubernetes.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src/services/greeter
# Never fetch another toolchain; a static binary, no cgo.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
# The module files first, so the download is a cached layer of its own.
COPY go.work go.work.sum /src/
COPY gen/go/go.mod gen/go/go.sum /src/gen/go/
COPY clients/greetctl/go.mod clients/greetctl/go.sum /src/clients/greetctl/
COPY services/greeter/go.mod services/greeter/go.sum ./
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
# gRPC, the admin HTTP server (/metrics, /healthz, /readyz), and the HTTP
# port (Connect, gRPC-Web).
EXPOSE 50051 9090 8080
ENTRYPOINT ["/greeter"]
