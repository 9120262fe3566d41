#!/bin/sh
# Colocation benchmark (make bench-colo): builds the binaries, then runs the
# Go driver as root. ROUNDS and DURATION set -rounds and -duration
# (ROUNDS=1 DURATION=10s is the quick look, under 5 minutes); extra
# arguments go to the driver (go run ./test/colo -h lists them).
set -eu
cd "$(dirname "$0")/../.."
go build -o bin/ ./cmd/...
go build -o bin/colo-bench ./test/colo
set -- -agent bin/sluice-agent "$@"
if [ -n "${ROUNDS:-}" ]; then set -- -rounds "$ROUNDS" "$@"; fi
if [ -n "${DURATION:-}" ]; then set -- -duration "$DURATION" "$@"; fi
exec ./bin/colo-bench "$@"
