# connector: an ACI connector server. `make help` lists the targets.
GO        ?= go
BIN       := bin/connector
PKGS      := ./...
DEB_TEST  := libxml2-utils postgresql-doc-15 default-jre-headless libhdrhistogram-java chromium-headless-shell
FUZZTIME  ?= 30s
PROTOC_GEN_GO_VERSION := v1.33.0
GOBIN     ?= $(shell $(GO) env GOPATH)/bin

.PHONY: help build run test test-short fuzz bench proto proto-check vet tidy clean

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/connector
	$(GO) build -trimpath -o $(BIN) ./cmd/connector

run: build ## build and run on the embedded default configuration
	./$(BIN)

test: ## the whole suite with -race (installs what the tests need)
	./scripts/ensure-deb.sh $(DEB_TEST)
	$(GO) vet $(PKGS)
	$(GO) test -race -shuffle=on -count=1 -timeout 20m $(PKGS)
	@# Tests that cannot run under -race (allocation counts; bbolt reading a
	@# damaged page trips the race detector's pointer checks): once without it.
	$(GO) test -count=1 -run 'TestEncodeAllocs|TestDamageFlippedBytes' ./transport/aci ./store
	@# The bench module (its own go.mod: the peers stay out of ours).
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 ./...

test-short: ## quick run without -race
	$(GO) test -count=1 -short $(PKGS)

fuzz: ## run every fuzz target for FUZZTIME each
	./scripts/fuzz.sh $(FUZZTIME)

bench: build ## benchmarks; figures go to bench/RESULTS.md
	$(MAKE) -C bench all

proto: ## regenerate messages/messages.pb.go (needs protoc)
	./scripts/ensure-deb.sh protobuf-compiler
	GOBIN=$(GOBIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	protoc --plugin=$(GOBIN)/protoc-gen-go --go_out=. --go_opt=paths=source_relative messages/messages.proto

vet: ## go vet
	$(GO) vet $(PKGS)

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## remove build output
	rm -rf bin
