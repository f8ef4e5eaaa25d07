# rloc — build, test, benchmark.
GO        ?= go
PKGS      ?= ./...
E2E       ?= github.com/rloc-router/rloc/e2e
FUZZTIME  ?= 3s
BENCHTIME ?= 1s
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
TESTLOG   ?= $(or $(TMPDIR),/tmp)/rloc-test.log
SHELL     := /bin/bash

.PHONY: all build test unit deps vet lint fuzz bench demo ddt-lab msx-experiment clean deb

all: build

build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/... 2>/dev/null || $(GO) build $(PKGS)

deps:
	./scripts/deps.sh tshark ip tcpdump tcpreplay scapy promtool systemd-analyze dpkg-deb chromium dot bgpd vtysh ospfd zebra ping

# The Debian package (docs/operating.md): binaries, unit, example config,
# man pages and completions, built with nfpm as a Go library into dist/.
deb:
	$(GO) run ./packaging/cmd/mkdeb -o dist

vet:
	$(GO) vet $(PKGS)

# The README's test command: installs what it needs, vets, runs every test with
# the race detector (namespace and AF_XDP end-to-end tests included), then a
# short smoke run of every fuzz target.
# The daemon end-to-end tests (E2E) run after the others, alone: they pace
# multicast streams through copy-mode AF_XDP on veth, which loses packets when
# the CPU-heavy packages (cache/) run beside them on a 2-core machine.
test: deps vet
	@set -o pipefail; $(GO) test -race -count=1 -timeout 15m $$($(GO) list $(PKGS) | grep -vx '$(E2E)') 2>&1 | tee $(TESTLOG)
	@set -o pipefail; $(GO) test -race -count=1 -timeout 10m $(E2E) 2>&1 | tee -a $(TESTLOG)
	@set -o pipefail; $(MAKE) --no-print-directory fuzz FUZZTIME=3000x | tee -a $(TESTLOG)
	@pkgs=$$(grep -E '^ok ' $(TESTLOG) | grep -vc 'no tests to run'); \
	  fz=$$(grep -c '^fuzz ok ' $(TESTLOG)); \
	  echo "test packages passed: $$pkgs; fuzz targets passed: $$fz"; \
	  echo "summary: $$((pkgs + fz)) passed, 0 failed"

unit:
	$(GO) test -count=1 -short $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	@[ -x $(STATICCHECK) ] || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(STATICCHECK) $(PKGS)

# Each fuzz target for FUZZTIME (a duration, or Nx for N executions: the smoke run
# in `test` uses a count, because a timed -fuzztime can end a loaded run with a
# spurious "context deadline exceeded"). Each package's fuzzing test binary is
# built once and run for each of its targets, in the package's directory and
# with go test's corpus cache, as `go test -fuzz` would (which links it again
# for every target: 1.9 s of each 2.6 s run).
fuzz:
	@set -eo pipefail; bin=$$(mktemp -d); trap 'rm -rf "$$bin"' EXIT; cache=$$($(GO) env GOCACHE)/fuzz; \
	$(GO) list -f '{{.ImportPath}} {{.Dir}}' $(PKGS) | while read -r pkg dir; do \
	  targets=$$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //' || true); \
	  [ -n "$$targets" ] || continue; \
	  $(GO) test -c -fuzz . -o $$bin/fuzz.test $$pkg </dev/null >$$bin/log 2>&1 || { cat $$bin/log; echo "fuzz FAIL $$pkg (build)"; exit 1; }; \
	  for t in $$targets; do \
	    (cd $$dir && $$bin/fuzz.test -test.run '^$$' -test.fuzz "^$$t\$$" -test.fuzztime $(FUZZTIME) \
	      -test.fuzzcachedir $$cache/$$pkg -test.timeout 10m -test.paniconexit0) </dev/null >$$bin/log 2>&1 || { cat $$bin/log; echo "fuzz FAIL $$pkg $$t"; exit 1; }; \
	    echo "fuzz ok $$pkg $$t"; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# A LISP network in namespaces on this machine (needs root): see scripts/demo.sh.
demo:
	./scripts/demo.sh

# The DDT lab (needs root): scripts/ddt-lab.sh, docs/lab.md "The DDT lab"; KEEP=1 leaves it running.
ddt-lab:
	./scripts/ddt-lab.sh

# The LISP-MSX experiment (needs root): BenchmarkMSXResolution, then the CDF plot
# bench/results/msx-fig6.png (scripts/msx-experiment.sh, docs/msx-experiment.md).
msx-experiment:
	GO=$(GO) ./scripts/msx-experiment.sh

clean:
	rm -rf bin
