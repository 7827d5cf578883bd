# Skjold — the reverse violence alarm appliance.
#   make run    build everything and start a single-node dev appliance with a simulated tag
#   make test   run every test (race detector on)

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DRIVERS   := sim gt06 modem serialrx
HOOKS     := siren cap dc09
FUZZTIME  ?= 30s
BENCHTIME ?= 1s

.PHONY: all build run test test-short bench chaos fuzz proto fmt lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/skjold ./cmd/skjold
	@for d in $(DRIVERS); do echo "build skjold-driver-$$d"; $(GO) build -o $(BIN)/skjold-driver-$$d ./drivers/$$d/cmd/skjold-driver-$$d || exit 1; done
	@for h in $(HOOKS); do echo "build skjold-hook-$$h"; $(GO) build -o $(BIN)/skjold-hook-$$h ./plugins/hooks/$$h/cmd/skjold-hook-$$h || exit 1; done

# A fresh demo every time; `bin/skjold dev` alone keeps its data directory across restarts.
run: build
	$(BIN)/skjold dev --reset

test:
	$(GO) vet ./...
	$(GO) run ./cmd/skjold replay docs/scenarios/*.json
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -count=1 -short ./...

# The national benchmarks build 50,000 orders once per process; they run with a fixed count to bound the time.
# The cluster benchmarks start three nodes and make one fixed-length run each.
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem -skip 'National|Cluster' ./...
	$(GO) test -run '^$$' -bench 'Cluster' -benchtime 1x -timeout 30m ./cmd/skjold
	$(GO) test -run '^$$' -bench 'EvaluateNational' -benchtime 300000x -count 3 -benchmem ./core/breach
	$(GO) test -run '^$$' -bench 'TickNational' -benchtime 20x -benchmem ./core/breach

# The long chaos run: a dozen leader kills, partitions and rolling restarts during a breach storm.
# `make test` runs the short form of the same test.
chaos:
	SKJOLD_CHAOS=long $(GO) test -count=1 -run 'TestChaos' -timeout 60m -v ./cmd/skjold

# Each fuzz target for FUZZTIME; seed corpora live in each package's testdata/fuzz.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

proto:
	./plugins/proto/generate.sh

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf $(BIN) .skjold-dev
