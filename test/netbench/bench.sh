#!/bin/sh
# Network tiers benchmark (make bench-net): builds and runs the Go driver
# as root. Extra arguments go to the driver (go run ./test/netbench -h
# lists them; -short is a quick check that it works).
set -eu
cd "$(dirname "$0")/../.."
go build -o bin/net-bench ./test/netbench
exec ./bin/net-bench "$@"
