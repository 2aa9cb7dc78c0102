# greeter: the workflow in short commands. Everything runs through the Go
# toolchain: buf and the protoc plugins are pinned in tools/go.mod and built
# by `go tool` in the toolchain's workspace (tools/go.work, selected through
# GOWORK: see $(TOOL)), so a fresh machine needs only Go (and make). The root
# go.work ties the modules that ship (gen/go, services/greeter,
# clients/greetctl); test/ resolves alone through its own go.work, and
# test/e2e/release proves that what is built and tested here is what ships.
#
#   make demo       build, start the server, greet through greetctl, drain
#   make test       every check and every module's tests (what CI runs)
#   make generate   regenerate gen/go, the TypeScript and Python SDKs and docs/api from api/
#   make dist       the contract's release artifacts in dist/ (VERSION=X.Y.Z for a release)
#   make conformance  connectrpc's conformance suite against both ports (part of make test)
#   make bench      load and overload benchmark: greeter vs bare grpc-go, writes docs/performance.md
#   make build      bin/greeter and bin/greetctl, built in the root workspace
#   make buf ARGS='breaking --against ../other'   buf by hand, the pinned version
#   make lint | format | format-check | breaking | drift | vet | tidy | npm-deps | sdk-tools
#
# The SDKs need, besides Go, Node.js 20 with npm and Debian's protoc,
# grpc_python_plugin and Python packages (.ci/apt-packages), which
# `make sdk-tools` (part of `make test`) installs where it may and otherwise
# names in one line.

GO       ?= go
# The toolchain: `go tool` in tools/go.work's workspace, whatever workspace
# the current directory belongs to (the root's holds only what ships).
TOOL     := GOWORK=$(CURDIR)/tools/go.work $(GO) tool
BUF      := $(TOOL) buf
# Arguments of `make buf`.
ARGS     ?=
# Every module; there is no root module, so each is named. gen/go,
# services/greeter and clients/greetctl ship (the root go.work); tools is
# the toolchain (tools/go.work); test holds the end-to-end tests, the
# benchmark and the deploy checks (test/go.work). Inside a module directory
# the go command finds the right workspace by itself.
MODULES  := gen/go services/greeter clients/greetctl tools test
# Baseline for `make breaking`: a git ref, a directory or a buf image.
# Empty means the previous commit of main.
AGAINST  ?=
BIN      := bin
# The contract release version of `make dist` (the tag api/vX.Y.Z without
# api/v); empty builds the development version 0.0.0-dev.
VERSION  ?=
# The npm projects, each pinned by its committed package-lock.json:
# protoc-gen-es for the TypeScript SDK, the Node client of test/e2e/sdk and
# the browser page of test/e2e/web.
NPM_PROJECTS := sdk/ts test/e2e/sdk/node test/e2e/web/browser
# test/e2e/sdk runs on its own and verbosely, so the log names each client
# that ran (Node, Python, the consuming team).
SDK_TESTS := github.com/acme/greeter/test/e2e/sdk
# test/conformance runs on its own and verbosely too, so the log shows each
# port's count from connectrpc's conformance runner.
CONFORMANCE_TESTS := github.com/acme/greeter/test/conformance

.PHONY: all demo test buf check protodeps npm-deps sdk-tools generate dist lint format format-check breaking drift vet gotest conformance bench-smoke bench bench-tracing build tidy clean

all: test

## Contract

protodeps:
	$(TOOL) protodeps

# `npm ci` of each npm project, again only when its lockfile changes.
npm-deps: $(addsuffix /node_modules/.package-lock.json,$(NPM_PROJECTS))

%/node_modules/.package-lock.json: %/package-lock.json %/package.json
	@command -v npm >/dev/null 2>&1 || { echo "make: npm is missing: install Node.js 20 or newer with npm"; exit 1; }
	cd $* && npm ci --no-audit --no-fund

# The Debian packages of .ci/apt-packages are installed when this user may
# (root, or sudo without a password: CI and our machines), so `make test`
# needs no other set-up; elsewhere one line names every tool that is missing.
sdk-tools: npm-deps
	@if ! $(TOOL) contractdist -check-tools >/dev/null 2>&1 && \
	    { [ "$$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }; then bash .ci/install-sdk-tools; fi
	@$(TOOL) contractdist -check-tools

# Every generated tree (tools/internal/protocheck.Trees), stale files removed.
generate: protodeps npm-deps
	$(TOOL) gendrift -write

dist: protodeps npm-deps
	$(TOOL) contractdist -version "$(VERSION)"

# buf by hand, at the pinned version: make buf ARGS='lint --error-format json'.
buf: protodeps
	$(BUF) $(ARGS)

lint: protodeps
	$(BUF) lint

format: protodeps
	$(BUF) format -w

format-check: protodeps
	$(BUF) format --diff --exit-code

breaking: protodeps
	$(TOOL) breaking $(AGAINST)

drift: protodeps npm-deps
	$(TOOL) gendrift

## Go

# gofmt and go vet over every module.
vet:
	@unformatted=$$(gofmt -l $(MODULES)); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do echo "== go vet: $$m"; (cd $$m && $(GO) vet ./...) || exit 1; done

# go test -race in every module, one after the other, so the output shows
# each module's tests ran; then every micro-benchmark once, so they keep
# working (the load benchmark has its own short test in test/bench).
gotest: protodeps npm-deps
	@for m in $(MODULES); do echo "== go test -race: $$m"; (cd $$m && $(GO) test -race $$($(GO) list ./... | grep -vx -e '$(SDK_TESTS)' -e '$(CONFORMANCE_TESTS)')) || exit 1; done
	@echo "== go test -race -v: test/e2e/sdk (the SDKs in Node and Python clients of the real greeter, a consuming team, the publish dry run)"
	cd test && $(GO) test -race -v ./e2e/sdk
	@$(MAKE) --no-print-directory conformance
	@$(MAKE) --no-print-directory bench-smoke

# connectrpc's conformance suite (the runner test/go.mod pins) against both
# ports of the greeter's server, every case of test/conformance's configs;
# the log shows each port's "N passed, 0 failed". About a minute.
conformance:
	@echo "== go test -race -v: test/conformance (connectrpc's conformance suite against the HTTP and gRPC ports)"
	cd test && $(GO) test -race -count=1 -v ./conformance

bench-smoke:
	@echo "== micro-benchmarks, one iteration each: services/greeter"
	cd services/greeter && $(GO) test -run '^$$' -bench . -benchtime 1x ./... > /dev/null

# The load benchmark (about 20 minutes; not part of `make test`): server CPU
# per request, greeter vs bare grpc-go, with the server and the load
# generators on CPUs of their own, then the capacity and overload tables
# at the default 256 MiB plan. BENCH_FLAGS passes flags to greetbench, e.g.
# BENCH_FLAGS="-scenarios unary -concurrency 64"; a run of some tables
# updates only theirs in docs/performance.md.
BENCH_FLAGS ?=
bench:
	cd test && $(GO) tool greetbench $(BENCH_FLAGS)

# What tracing costs (minutes; not part of `make test`): server CPU per RPC
# with tracing off and on at sample ratios 1.0 and 0.01, exporting to a real
# OTLP receiver; prints markdown for docs/performance.md, "Tracing".
# TRACEBENCH_FLAGS, e.g. "-duration 2s -runs 3".
TRACEBENCH_FLAGS ?=
bench-tracing:
	cd test && $(GO) tool tracebench $(TRACEBENCH_FLAGS)

# Both binaries, built in the root workspace (test/e2e/release proves each
# links exactly the versions its own module resolves alone, as its release
# does). -buildvcs=auto stamps the git revision into --version even where
# GOFLAGS turns VCS stamping off.
build:
	@mkdir -p $(BIN)
	$(GO) build -buildvcs=auto -o $(abspath $(BIN))/ ./services/greeter/cmd/greeter ./clients/greetctl/cmd/greetctl

# `go work sync` of the shipped workspace (printing each requirement it
# moves), then `go mod tidy` alone (GOWORK=off) in gen/go and in every module
# that requires gen/go, which is not published on any proxy: see
# tools/cmd/modproxy. The tools module is tidied by hand: see README.md.
tidy:
	$(TOOL) modproxy tidy

## The two commands of README.md

check: sdk-tools format-check lint breaking drift vet
	bash .ci/no-tracked-executables

test: check gotest

demo: build
	./scripts/demo.sh $(BIN)

clean:
	rm -rf $(BIN) third_party .cache dist $(addsuffix /node_modules,$(NPM_PROJECTS))
