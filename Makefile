# ctid — the two commands: `make run` and `make test`. See README.md.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Programs the tests need besides Go; deps installs missing ones on Debian as root.
PG_PKGS := postgresql
TEST_PKGS := chromium sip-tester baresip-core

.PHONY: run build test lint deps deps-test e2e bench bench-lookup bench-sip bench-pop bench-consoles bench-workorder bench-wallboard bench-query clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ctid ./cmd/ctid

## run: build and start ctid with its own PostgreSQL and the demo tenant on 127.0.0.1:8080
run: deps build
	./bin/ctid serve --demo --demo-traffic --config configs/ctid.example.yaml

## test: every test, with the race detector (and the 100k-row import at full size without it)
test: deps-test
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 -timeout 10m -run '^TestImportLargeCSV$$' ./dataobject

## lint: gofmt check and go vet
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## deps: PostgreSQL server binaries (for run and test)
deps:
	@./scripts/deps.sh server

## deps-test: what the tests need besides PostgreSQL
deps-test:
	@./scripts/deps.sh test

## bench: every benchmark; each prints "name: value unit (conditions)" lines
bench: bench-lookup bench-sip bench-pop bench-consoles bench-workorder bench-wallboard bench-query

## bench-lookup: caller lookup p50/p99 and CSV import rows/s with 1,000,000 customers (~5 min)
bench-lookup: deps
	$(GO) test ./dataobject -run '^$$' -bench BenchmarkLookupMillion -benchtime 1x -timeout 60m

## bench-sip: REGISTER with digest and inbound calls through the ACD (sipgo peers in process),
## then SIPp trunk and SIPp agent phones at rising rates, 60 s a step (~10 min)
bench-sip: deps deps-test
	$(GO) test ./cti -run '^$$' -bench 'RegisterDigest|InboundCalls' -benchtime 3000x -timeout 30m
	CTIDTEST_BENCH_SECONDS=60 $(GO) test ./cti -run '^$$' -bench SIPp -benchtime 1x -timeout 60m

## bench-pop: pop latency, INVITE received → pop frame read by the console, at 100 calls/s with
## 500 agents and consoles and 1,000,000 customers (~10 min, most of it loading customers)
bench-pop: deps
	$(GO) test ./cmd/ctid -run '^$$' -bench BenchmarkPopLatency -benchtime 1x -timeout 60m

## bench-consoles: server memory per idle console (10,000 open) and agent.state delivery to 100 supervisors
bench-consoles: deps
	$(GO) test ./screenpop -run '^$$' -bench BenchmarkIdleConsoles -benchtime 1x -timeout 10m

## e2e: the slower end-to-end suites with real SIP peers (SIPp trunk and phones, baresip softphone)
e2e: deps-test
	CTIDTEST_E2E=1 $(GO) test -race -count=1 -run 'TestE2E' -timeout 20m ./cmd/ctid ./cti

## bench-workorder: work-order saves through the API by 100 agents, saturated and paced (one save a second each)
bench-workorder: deps
	$(GO) test ./web -run '^$$' -bench 'WorkOrderSave' -benchtime 3000x -timeout 30m

## bench-wallboard: event → board frame delay and CPU per 100 boards (500 agents, 20 queues, 100 calls/s)
bench-wallboard: deps
	$(GO) test ./wallboard -run '^$$' -bench BenchmarkWallboard -benchtime 1x -timeout 10m

## bench-query: agent/queue statistics p95 for 1 and 12 months (from the daily rollups), call-history
## first page p95 (one agent; a team of 20) and a 1,000,000-row CSV export, over 10,000,000 generated
## CDRs of 200 agents, vacuumed and analyzed after loading (~4 min, most of it loading;
## CTIDTEST_QUERY_CDRS=1000000 for a smaller run, CTIDTEST_QUERY_EXPLAIN=1 prints the call-history plans)
bench-query: deps
	$(GO) test ./query -run '^$$' -bench BenchmarkQueryStatistics -benchtime 1x -timeout 120m

clean:
	rm -rf bin
