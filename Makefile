# Sluice build and test entry points. `make test` is what CI runs (.ci/run).
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
# Tests that need root, real cgroups, containerd or BPF run inside `make test`
# too when the machine offers them; SLUICE_REQUIRE turns their skips into
# failures (CI declares what its machine has). -p 1: real-kernel tests
# measure CPU shares and throttling, and offline work runs at the idle
# weight, so another package's CPU-heavy tests running beside them would
# starve what they measure.
TESTFLAGS ?= -count=1 -timeout 30m -p 1
# The openb production trace ships beside the repository (../shared); the
# brain's replay tests look there themselves (test/openbdata), and read
# SLUICE_OPENB_DATA first when it is set.
export SLUICE_OPENB_DATA ?= $(wildcard $(abspath ../shared/data/openb))

.PHONY: all build run test test-unit test-kernel test-vm lint bench bench-colo bench-rdt bench-net generate generate-proto verify-generate fuzz screenshot clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Build and start the agent in dry-run mode with the embedded default policy.
run: build
	./$(BIN)/sluice-agent -dry-run -listen 127.0.0.1:9477

# Everything: lint first (cheap, and a red lint is reason enough to stop),
# then unit tests, real-kernel tests (when root), then the cgroup v2 lane
# under QEMU.
test: lint
	$(MAKE) test-unit test-vm

test-unit:
	$(GO) test $(TESTFLAGS) $(PKGS)

# Real-kernel tests only, with every feature declared present: a missing one
# fails instead of skipping.
test-kernel:
	SLUICE_REQUIRE=root,cgroupv1,cgroupv2,psi,bpf,containerd $(GO) test $(TESTFLAGS) -run 'Kernel|Real|Containerd|BPF' $(PKGS)

# cgroup v2 enforcement for real: Debian's kernel under QEMU (see test/vm).
test-vm:
	./test/vm/test.sh

# gofmt, go.mod as tidy leaves it (direct requirements marked direct, no
# unused modules), go vet, staticcheck (pinned in go.mod's tool block).
lint:
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

bench-colo: build
	./test/colo/bench.sh

# Cache and memory-bandwidth partitioning (rdt/): online p99 alone, beside
# stress-ng without partitioning, and with Sluice's dynamic partitioning.
# Needs a host with resctrl and refuses clearly without it; the fake-resctrl
# mode (ARGS=-fake) runs anywhere and is also a test in `make test`.
bench-rdt:
	$(GO) run ./test/rdtbench $(ARGS)

bench-net:
	./test/netbench/bench.sh $(ARGS)

generate: generate-proto
	./ebpf/generate.sh

# The brain's protobuf and Connect stubs (brain/api/gen), with the
# generators pinned in go.mod's tool block.
generate-proto:
	./brain/api/generate.sh

verify-generate:
	./ebpf/generate.sh --verify
	./brain/api/generate.sh --verify

# The README's picture of the fleet view: a synthetic 10,000-host fleet in
# headless Chromium (Debian's chromium package).
screenshot:
	$(GO) test -count=1 -run '^TestBrowserLoadsTenThousandHosts$$' ./brain/web -args -screenshot=$(abspath docs/fleet-view.png)

clean:
	rm -rf $(BIN)
