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
# brain's replay tests read it from here.
export SLUICE_OPENB_DATA ?= $(wildcard $(abspath ../shared/data/openb))

.PHONY: all build run test test-unit test-kernel test-vm lint bench bench-colo generate generate-proto verify-generate fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Build and start the agent in dry-run mode with the embedded default policy.
run: build
	./$(BIN)/sluice-agent -dry-run -listen 127.0.0.1:9477

# Everything: unit tests, real-kernel tests (when root), then the cgroup v2
# lane under QEMU.
test: test-unit test-vm

test-unit:
	$(GO) test $(TESTFLAGS) $(PKGS)

# Real-kernel tests only, with every feature declared present: a missing one
# fails instead of skipping.
test-kernel:
	SLUICE_REQUIRE=root,cgroupv1,cgroupv2,psi,bpf,containerd $(GO) test $(TESTFLAGS) -run 'Kernel|Real|Containerd|BPF' $(PKGS)

# cgroup v2 enforcement for real: Debian's kernel under QEMU (see test/vm).
test-vm:
	./test/vm/test.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

bench-colo: build
	./test/colo/bench.sh

generate: generate-proto
	./ebpf/generate.sh

# The brain's protobuf and Connect stubs (brain/api/gen), with the
# generators pinned in go.mod's tool block.
generate-proto:
	./brain/api/generate.sh

verify-generate:
	./ebpf/generate.sh --verify
	./brain/api/generate.sh --verify

clean:
	rm -rf $(BIN)
