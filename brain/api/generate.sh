#!/bin/sh
# Regenerate the Go and Connect stubs under gen/ from v1/*.proto with the
# generators pinned in go.mod's tool block (buf, protoc-gen-go,
# protoc-gen-connect-go), run through `go tool`: nothing to install.
#
#   ./generate.sh           lint the protos and regenerate in place (make generate-proto)
#   ./generate.sh --verify  regenerate into a temp dir and fail if the
#                           committed files differ (make verify-generate)
set -eu

cd "$(dirname "$0")"
verify=false
case "${1:-}" in
"") ;;
--verify) verify=true ;;
*) echo "usage: $0 [--verify]" >&2; exit 2 ;;
esac

go tool buf lint
if ! $verify; then
	go tool buf generate
	exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go tool buf generate -o "$out"
if ! diff -r "$out/gen" gen >/dev/null; then
	echo "brain/api/gen is stale: run make generate-proto (brain/api/generate.sh) and commit" >&2
	diff -r "$out/gen" gen >&2 || true
	exit 1
fi
