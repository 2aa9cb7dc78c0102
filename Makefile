# greeter: the workflow in short commands. Everything runs through the Go
# toolchain: buf and the protoc plugins are pinned in tools/go.mod and built
# by `go tool` (the root go.work is the toolchain's workspace), so a fresh
# machine needs only Go (and make). Every other module resolves alone, from
# its own go.mod and go.sum (its own go.work), so what is built and tested
# here is what ships.
#
#   make demo       build, start the server, greet through greetctl, drain
#   make test       every check and every module's tests (what CI runs)
#   make generate   regenerate gen/go from api/
#   make bench      load benchmark: greeter vs bare grpc-go, writes docs/performance.md
#   make build      bin/greeter and bin/greetctl, each from its own module
#   make lint | format | format-check | breaking | drift | vet | tidy

GO       ?= go
BUF      := $(GO) tool buf
# Every module; there is no root module, so each is named. gen/go,
# services/greeter and clients/greetctl ship; tools is the toolchain; test
# holds the end-to-end tests, the benchmark and the deploy checks.
MODULES  := gen/go services/greeter clients/greetctl tools test
# Baseline for `make breaking`: a git ref, a directory or a buf image.
# Empty means the previous commit of main.
AGAINST  ?=
BIN      := bin

.PHONY: all demo test check protodeps generate lint format format-check breaking drift vet gotest bench-smoke bench build tidy clean

all: test

## Contract

protodeps:
	$(GO) tool protodeps

generate: protodeps
	find gen/go -name '*.pb.go' -delete
	$(BUF) generate

lint: protodeps
	$(BUF) lint

format: protodeps
	$(BUF) format -w

format-check: protodeps
	$(BUF) format --diff --exit-code

breaking: protodeps
	$(GO) tool breaking $(AGAINST)

drift: protodeps
	$(GO) tool gendrift

## Go

# gofmt and go vet over every module.
vet:
	@unformatted=$$(gofmt -l $(MODULES)); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do echo "== go vet: $$m"; (cd $$m && $(GO) vet ./...) || exit 1; done

# go test -race in every module, one after the other, so the output shows
# each module's tests ran; then every micro-benchmark once, so they keep
# working (the load benchmark has its own short test in test/bench).
gotest: protodeps
	@for m in $(MODULES); do echo "== go test -race: $$m"; (cd $$m && $(GO) test -race ./...) || exit 1; done
	@$(MAKE) --no-print-directory bench-smoke

bench-smoke:
	@echo "== micro-benchmarks, one iteration each: services/greeter"
	cd services/greeter && $(GO) test -run '^$$' -bench . -benchtime 1x ./... > /dev/null

# The load benchmark (minutes; not part of `make test`). BENCH_FLAGS passes
# flags to greetbench, e.g. BENCH_FLAGS="-duration 2s -concurrency 64".
BENCH_FLAGS ?=
bench:
	cd test && $(GO) tool greetbench $(BENCH_FLAGS)

# Each binary is built inside its own module, with that module's versions
# (test/e2e/release proves it). -buildvcs=auto stamps the git revision into
# --version even where GOFLAGS turns VCS stamping off.
build:
	@mkdir -p $(BIN)
	cd services/greeter && $(GO) build -buildvcs=auto -o $(abspath $(BIN))/ ./cmd/greeter
	cd clients/greetctl && $(GO) build -buildvcs=auto -o $(abspath $(BIN))/ ./cmd/greetctl

# `go mod tidy` for the modules that require gen/go, which is not published
# on any proxy (services/greeter, clients/greetctl, test): see
# tools/cmd/modproxy. The tools module is tidied by hand: see README.md.
tidy:
	$(GO) tool modproxy tidy

## The two commands of README.md

check: format-check lint breaking drift vet

test: check gotest

demo: build
	./scripts/demo.sh $(BIN)

clean:
	rm -rf $(BIN) third_party .cache
