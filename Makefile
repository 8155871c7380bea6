GO ?= go
PKGS := ./...

.PHONY: test vet unit itest bench nocliff admission soak flood steady floor fuzz dev build conformance conformance-upstream

## test: vet, then every test (unit and end-to-end) under the race detector,
## then the official conformance suite (see conformance). deploy/ checks the
## deployment files with Prometheus', Compose's and Kustomize's own parsers,
## about 900 packages (cloud SDKs among them): it runs without the race
## detector, which would compile them all again instrumented, minutes of CI
## for code that is not ours
test: vet
	$(GO) test -race -count=1 -timeout 14m $$($(GO) list $(PKGS) | grep -v '/deploy$$')
	$(GO) test -count=1 -timeout 10m ./deploy/
	bash conformance/run.sh

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l . | grep -v '^vendor/' || true); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## unit: tests without the end-to-end suite
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /itest)

## itest: the end-to-end suite only
itest:
	$(GO) test -race -count=1 -timeout 14m -v ./itest/

## bench: Go benchmarks, then mcpstream side by side with plain mcp-go and go-sdk servers
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench/compare --sessions 64 --duration 10s

## nocliff: mcpstream dev's closed-loop capacity, then an open loop at half
## of it over 25 / 100 / 1,000 / 10,000 sessions, a fresh server for each
nocliff:
	$(GO) run ./bench/nocliff

## admission: admission per worker group against its targets: a slow group
## at 0.8x and 2x its capacity, a fast group beside it, three gateways
admission:
	$(GO) run ./bench/admission

## soak: mcpstream dev for 10 minutes at half of its capacity, clients coming
## and going; fails if RSS, goroutines, open files or streams grow, or a call is lost
soak:
	$(GO) run ./bench/soak

## steady: mcpstream dev at 32 closed-loop sessions of echo for 10 minutes,
## its RSS every 5 s with the load average, the plateau and MiB per 1,000 calls/s
steady:
	$(GO) run ./bench/steady

## flood: principal "quiet" at 100 calls/s alone, then beside principal
## "flood" at 10x its rate limit (200/s, burst 50), then the same flood on a
## server without the limit; fails if quiet's p99 more than doubles
flood:
	$(GO) run ./bench/flood

## floor: what a call's parts cost alone (loopback HTTP, the JetStream round
## trip, the two joined) against mcpstream dev's CPU a call, 3 rounds; pass
## FLOOR_FLAGS, such as --server-cpus 1 --driver-cpus 0 or --parts ...
floor:
	$(GO) run ./bench/floor --sessions 64 --duration 10s --rounds 3 $(FLOOR_FLAGS)

## fuzz: a short run of every fuzz target
fuzz:
	@for p in ./schema/ ./streams/ ./workers/; do for t in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime 15s $$p || exit 1; done; done

build:
	$(GO) build -o bin/mcpstream ./cmd/mcpstream

dev:
	$(GO) run ./cmd/mcpstream dev

## conformance: the official MCP conformance suite against mcpstream dev,
## with the known failures in conformance/baseline-*.yml (installs Node 22
## and the suite from npm into .cache/conformance on first use)
conformance:
	bash conformance/run.sh

## conformance-upstream: the same suite through a hosted upstream: the
## go-sdk's conformance/everything-server behind `mcpstream worker
## --upstream`, with the known failures in conformance/baseline-upstream-*.yml
conformance-upstream:
	CONFORMANCE_UPSTREAM=1 bash conformance/run.sh
