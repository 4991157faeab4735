# connector: an ACI connector server. `make help` lists the targets.
GO        ?= go
BIN       := bin/connector
PKGS      := ./...
# What the tests need from Debian besides Go and make: -race builds with cgo,
# so a C compiler and the C library's development files.
DEB_BUILD := gcc libc6-dev
DEB_TEST  := etcd-server postgresql libxml2-utils postgresql-doc-15 default-jre-headless libhdrhistogram-java chromium-headless-shell prometheus poppler-utils dovecot-core dovecot-imapd
# systemd-analyze checks deploy/connector.service.
DEB_DEPLOY := systemd
# npm packages the tests start (docsify, the single-page application the
# Web connector's tests crawl; the mail tests' Gmail-flavoured IMAP
# server), in the cache folder the tests look in (mailtest.HoodiecrowDir).
# Node.js and npm are the machine's own (Node 20 with its npm; Debian's
# npm package would conflict with it).
NPM_TEST_DIR ?= $(or $(CONNECTOR_TEST_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/connector-test)
FUZZTIME  ?= 30s
# The regression tests of our protoactor patches (third_party/protoactor-go/PATCHES.md).
PROTOACTOR_PATCH_TESTS := ^(TestStartEReturnsListenError|TestStartLeavesGRPCLoggerAlone|TestRequestToDeadNodeFailsAfterConfiguredRetries|TestShutdownWithConnectedPeers|TestTopologyChurnIsRaceFree|TestTTLOption|TestLostLeaseEvictsTheMember|TestWatchStartsAtTheListedRevision|TestMembersJoinAndLeave|TestStoppedStartDoesNotWaitForTheRevoke|TestShutdownEndsTTLReports|TestProcessRegistryConcurrentUse|TestSpawnNamedTakenName|TestMailboxScheduleDoesNotAllocate|TestUnlistedChildren|TestShareRef|TestFutureKeepsItsFirstAnswer|TestEndpointWriterBatchBytesBoundsABatch|TestEndpointWriterDropsAMessageTooLargeAlone)$$
PROTOC_GEN_GO_VERSION := v1.33.0
STATICCHECK_VERSION   := v0.8.2
GOBIN     ?= $(shell $(GO) env GOPATH)/bin

# Stamped into the binary (internal/version): the release version (the
# latest v* tag, "0.0.0-dev" without one; make dist VERSION=1.2.0 to set
# it), the git revision (with -dirty for uncommitted changes) and the build
# number (the count of commits: it grows with every commit). Each can be set
# on the command line; outside a git checkout the binary falls back on what
# the Go toolchain recorded.
VERSION   ?= $(or $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null | sed 's/^v//'),0.0.0-dev)
REVISION  ?= $(shell r=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { test -z "$$(git status --porcelain 2>/dev/null)" || r=$$r-dirty; } && echo $$r)
BUILD     ?= $(shell git rev-list --count HEAD 2>/dev/null)
VPKG      := github.com/connectorhq/connector/internal/version
LDFLAGS   := -X $(VPKG).version=$(VERSION) -X $(VPKG).revision=$(REVISION) -X $(VPKG).build=$(BUILD)
# Release binaries: where, and for which platforms.
DIST      ?= dist
PLATFORMS := linux/amd64 linux/arm64
# The container image: its name, and the builder (the first of podman,
# docker and buildah found).
IMAGE     ?= connector
CONTAINER ?= $(firstword $(shell command -v podman docker buildah 2>/dev/null))

.PHONY: help build dist image run cluster test test-short fuzz bench proto proto-check vet lint tidy clean

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/connector, stamped with the version, revision and build number
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/connector

dist: ## release binaries for linux/amd64 and linux/arm64 with SHA-256 checksums, in dist/
	mkdir -p $(DIST)
	rm -f $(DIST)/connector-*-linux-* $(DIST)/SHA256SUMS
	for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' \
			-o $(DIST)/connector-$(VERSION)-$$os-$$arch ./cmd/connector || exit 1; \
	done
	cd $(DIST) && sha256sum connector-$(VERSION)-* > SHA256SUMS && sha256sum -c --quiet SHA256SUMS
	@echo "dist: $$(ls $(DIST)) in $(DIST)/"

image: ## container image $(IMAGE):$(VERSION) from deploy/Containerfile: Debian packages and the release binary
	@test -n "$(CONTAINER)" || { echo "image: no container builder found (podman, docker or buildah)" >&2; exit 1; }
	$(MAKE) dist DIST=dist VERSION=$(VERSION) REVISION=$(REVISION) BUILD=$(BUILD)
	$(CONTAINER) build -f deploy/Containerfile --build-arg VERSION=$(VERSION) \
		--build-arg TARGETARCH=$(shell $(GO) env GOARCH) -t $(IMAGE):$(VERSION) .

run: build ## build and run on the embedded default configuration (CONFIG=file: on that one; a [Connector] Type=WEB file gets Chromium installed first; ARGS='-port 7010': more flags)
	@if [ -n "$(CONFIG)" ] && grep -Eiq '^[[:space:]]*Type[[:space:]]*=[[:space:]]*WEB[[:space:]]*$$' "$(CONFIG)"; then \
		./scripts/ensure-deb.sh chromium-headless-shell; fi
	./$(BIN) $(if $(CONFIG),-config $(CONFIG)) $(ARGS)

cluster: build ## a three-member etcd, PostgreSQL and three nodes on loopback (docs/cluster.md); Ctrl-C stops everything
	./scripts/ensure-deb.sh etcd-server postgresql
	$(GO) run ./cmd/clusterdemo -binary $(BIN)

test: ## the whole suite with -race (installs what the tests need)
	./scripts/ensure-deb.sh $(DEB_BUILD) $(DEB_TEST) $(DEB_DEPLOY)
	./scripts/ensure-npm.sh $(NPM_TEST_DIR)/hoodiecrow-imap-2.1.0 hoodiecrow-imap@2.1.0
	./scripts/ensure-npm.sh $(NPM_TEST_DIR)/docsify-5.0.0 docsify@5.0.0 --ignore-scripts
	$(GO) vet $(PKGS)
	$(MAKE) lint
	$(GO) test -race -shuffle=on -count=1 -timeout 20m $(PKGS)
	@# Tests that cannot run under -race (allocation counts; bbolt reading a
	@# damaged page trips the race detector's pointer checks): once without it.
	$(GO) test -count=1 -run 'TestEncodeAllocs|TestDecodeReplyAllocations|TestDamageFlippedBytes' ./transport/aci ./store
	@# protoactor-go, vendored with our patches (its own go.mod): their
	@# regression tests (third_party/protoactor-go/PATCHES.md). Only those:
	@# upstream's own suites have timing-dependent tests (the pubsub batching
	@# suite fails on a loaded machine) that we neither patched nor depend on.
	cd third_party/protoactor-go && $(GO) vet ./... && $(GO) test -race -count=1 -run '$(PROTOACTOR_PATCH_TESTS)' ./actor/ ./remote/... ./cluster/...
	cd third_party/bbolt && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	@# The bench module (its own go.mod: the peers stay out of ours).
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 ./...

test-short: ## quick run without -race
	$(GO) test -count=1 -short $(PKGS)

fuzz: ## run every fuzz target for FUZZTIME each
	./scripts/fuzz.sh $(FUZZTIME)

bench: build ## benchmarks; figures go to bench/RESULTS.md
	$(MAKE) -C bench all

proto: ## regenerate messages/messages.pb.go, messages/cluster.pb.go and loadgen/wire/wire.pb.go (needs protoc)
	./scripts/ensure-deb.sh protobuf-compiler
	GOBIN=$(GOBIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	protoc --plugin=$(GOBIN)/protoc-gen-go -I . -I "$$($(GO) list -m -f '{{.Dir}}' github.com/asynkron/protoactor-go)/actor" \
		--go_out=. --go_opt=paths=source_relative messages/messages.proto messages/cluster.proto loadgen/wire/wire.proto

vet: ## go vet
	$(GO) vet $(PKGS)

lint: ## gofmt (every Go file of ours and of bench/), then staticcheck at a pinned version (staticcheck.conf says which checks), installed with go install
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './third_party/*' -not -path './bench/out/*' -not -path './.git/*')); \
		if [ -n "$$unformatted" ]; then echo "lint: not gofmt'd (run gofmt -w on them):" >&2; echo "$$unformatted" >&2; exit 1; fi
	GOBIN=$(GOBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck $(PKGS)

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## remove build output
	rm -rf bin $(DIST)
