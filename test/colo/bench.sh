#!/bin/sh
# Colocation interference benchmark (make bench-colo): builds the binaries,
# then runs the Go driver as root. Extra arguments go to the driver
# (go run ./test/colo -h lists them).
set -eu
cd "$(dirname "$0")/../.."
go build -o bin/ ./cmd/...
go build -o bin/colo-bench ./test/colo
exec ./bin/colo-bench -agent bin/sluice-agent "$@"
