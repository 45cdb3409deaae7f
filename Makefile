# pyrsia-build. `make run` runs the main job, `make test` the tests.
GO       ?= go
BIN      := bin/pyrsia-build
FUZZTIME ?= 30s
# The packages whose tests take longest (minutes each under -race).
SLOW_PKGS := ./node ./builder ./cmd/pyrsia-build

.PHONY: all build run test fmt-check vet staticcheck fuzz bench clean release release-check

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pyrsia-build

# The main job: a local build network of three build-node daemons (scripts/demo.sh).
run: build
	scripts/demo.sh $(BIN)

# Every test, with the race detector; fuzz targets run on their seed corpora;
# gofmt, go vet and staticcheck first. The slowest packages are named first
# so that go test (two packages at a time on two cores) starts them first
# rather than last, alone (./... still runs every package, each once).
# The cosign interoperability tests need cosign on PATH
# (PATH="$$(scripts/install-cosign.sh):$$PATH"); .ci/run does that.
test: fmt-check vet staticcheck
	$(GO) test -race -count=1 -timeout 30m $(SLOW_PKGS) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# staticcheck at the version pinned in scripts/install-staticcheck.sh (built
# from the Go module proxy once, then cached).
staticcheck:
	"$$(scripts/install-staticcheck.sh)/staticcheck" ./...

# Explore with the fuzzers for FUZZTIME each.
fuzz:
	$(GO) test ./attest -run '^$$' -fuzz '^FuzzParseBundle$$' -fuzztime $(FUZZTIME)
	$(GO) test ./attest -run '^$$' -fuzz '^FuzzParseStatement$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish -run '^$$' -fuzz '^FuzzParseEntry$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish -run '^$$' -fuzz '^FuzzParseProofBundle$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/witness -run '^$$' -fuzz '^FuzzParseCheckpoint$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/tlog -run '^$$' -fuzz '^FuzzParseTilePath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./builder -run '^$$' -fuzz '^FuzzParseSpec$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/cliargs -run '^$$' -fuzz '^FuzzReorder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/serve -run '^$$' -fuzz '^FuzzParsePath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/serve -run '^$$' -fuzz '^FuzzParseMavenPath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/serve -run '^$$' -fuzz '^FuzzMavenHandler$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/serve -run '^$$' -fuzz '^FuzzMavenVersion$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/exchange -run '^$$' -fuzz '^FuzzTilesRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/exchange -run '^$$' -fuzz '^FuzzTilesResponse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/exchange -run '^$$' -fuzz '^FuzzBlobRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish/exchange -run '^$$' -fuzz '^FuzzBlobResponse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./node -run '^$$' -fuzz '^FuzzRequestProtocolLines$$' -fuzztime $(FUZZTIME)

# Benchmarks recorded in BENCHMARKS.md. PYRSIA_BENCH_SIZE sets the artifact
# size in bytes (default 1 GiB); the builder benchmarks need root, buildkit
# on PATH and PYRSIA_IMAGES.
bench:
	$(GO) test ./attest -run '^$$' -bench . -benchtime 5x
	$(GO) test ./cmd/pyrsia-build -run '^$$' -bench . -benchtime 3x
	$(GO) test ./publish/tlog -run '^$$' -bench '^BenchmarkAppend$$/^writers=(64|1024)$$' -benchtime 100000x
	$(GO) test ./publish/tlog -run '^$$' -bench 'InclusionProof(HTTP)?$$' -benchtime 3s
	$(GO) test ./publish/tlog -run '^$$' -bench 'InclusionProofWrk' -benchtime 1x
	$(GO) test ./builder -run '^$$' -bench 'BuildOverhead|MavenSample' -benchtime 5x
	$(GO) test ./publish/serve -run '^$$' -bench 'OCIPullCached|SHA256|OCIManifestsWrk' -benchtime 3x

# The release binary, reproducibly (scripts/build-release.sh), and the
# check that two builds of it, in two folders, give the same sha256.
release:
	scripts/build-release.sh dist $(VERSION)

release-check:
	scripts/check-release-reproducible.sh

clean:
	rm -rf bin
