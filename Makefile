# nora: build, test and release targets. `make help` lists them.

GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
PKG     := github.com/nora-registry/nora/cmd
LDFLAGS := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT)
BUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"
FUZZTIME ?= 30s
SHELL   := bash
.SHELLFLAGS := -o pipefail -c

.PHONY: help build cross run test conformance bench fuzz fmt vet clean

help: ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## static, stripped binary: bin/registry
	$(BUILD) -o $(BIN)/registry .

cross: ## linux amd64, arm64 and armv7 binaries in bin/
	GOOS=linux GOARCH=amd64 $(BUILD) -o $(BIN)/registry-linux-amd64 .
	GOOS=linux GOARCH=arm64 $(BUILD) -o $(BIN)/registry-linux-arm64 .
	GOOS=linux GOARCH=arm GOARM=7 $(BUILD) -o $(BIN)/registry-linux-armv7 .

run: build ## build, then serve (NORA_CONFIG selects a file)
	./$(BIN)/registry serve

# The S3 pass runs the end-to-end tests that store blobs, without the race
# detector, which the first pass already ran over the same code; the
# dashboard, auth and slow-client tests store nothing S3 would change.
S3_SKIP := ^TestE2E(Dashboard|Activity|OverviewRemotes|Auth|SlowClients|RobotTokens|ServeLifecycle)

# Each pass pipes `go test -json` through .ci/testsummary, which prints
# what plain `go test` does, then every test skipped so far and why (a
# client not installed, not root): a green run shows what it did not run.
# pipefail keeps a failing `go test` failing the target.
SKIPS := $(BIN)/skipped-tests.txt

# The 32-bit build `make cross` ships for a Raspberry Pi: a field whose
# size differs there (statfs's block size is 32 bits on arm) breaks only
# that build, which nothing else compiles.
VET_ARMV7 := GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) vet ./...

test: ## the armv7 build's vet (Raspberry Pi OS, 32-bit); all tests, race detector on; then the end-to-end tests with blobs on S3; then the tests skipped
	@mkdir -p $(BIN) && rm -f $(SKIPS)
	$(VET_ARMV7)
	$(GO) build -o $(BIN)/testsummary ./.ci/testsummary
	$(GO) test -race -count=1 -timeout 45m -json ./... ./.ci/testsummary | $(BIN)/testsummary -pass race -skips $(SKIPS)
	NORA_E2E_STORAGE=s3 $(GO) test -count=1 -timeout 30m -json -run '^TestE2E' -skip '$(S3_SKIP)' . | $(BIN)/testsummary -pass s3 -skips $(SKIPS)

conformance: ## the official OCI distribution-spec conformance suite against the binary (see .ci/run to install it)
	$(GO) test -count=1 -run '^TestE2EConformance$$' -v .

bench: ## end-to-end benchmarks (build tag bench; Linux, whose /proc and disk statistics they read), then one GC pass over 100,000 manifests and the metadata's size
	$(GO) test -tags bench -run 'TestBench' -v -count=1 -timeout 60m .
	NORA_META_BENCH_SCALE=1 $(GO) test -run '^$$' -bench '^BenchmarkMetaSize$$' -benchtime 1x -timeout 30m ./storage
	NORA_GC_BENCH_MANIFESTS=100000 $(GO) test -run '^$$' -bench '^BenchmarkPass$$' -benchtime 1x -timeout 30m ./gc

fuzz: ## each parser fuzzer (requests, manifests, names, digests, the metadata journal and the pages it logs), FUZZTIME (30s) each
	$(GO) test -run '^$$' -fuzz '^FuzzParsePath$$' -fuzztime $(FUZZTIME) ./registry
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME) ./registry
	$(GO) test -run '^$$' -fuzz '^FuzzValidName$$' -fuzztime $(FUZZTIME) ./registry
	$(GO) test -run '^$$' -fuzz '^FuzzParseDigest$$' -fuzztime $(FUZZTIME) ./registry
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./registry
	$(GO) test -run '^$$' -fuzz '^FuzzJournal$$' -fuzztime $(FUZZTIME) ./storage
	$(GO) test -run '^$$' -fuzz '^FuzzPageUsed$$' -fuzztime $(FUZZTIME) ./storage

fmt: ## gofmt every file in place
	gofmt -w .

vet: ## go vet, with the bench code, here and for macOS and Windows (where contributors build the tests too), for the armv7 build, and a gofmt check
	$(GO) vet -tags bench ./... ./.ci/testsummary
	$(VET_ARMV7)
	GOOS=darwin $(GO) vet -tags bench ./...
	GOOS=windows $(GO) vet -tags bench ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

clean: ## remove bin/
	rm -rf $(BIN)
