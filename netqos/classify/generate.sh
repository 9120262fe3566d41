#!/bin/sh
# Regenerate the bpf2go output (netclass_bpfel.go, netclass_bpfel.o) from
# ../../bpf/netclass.c with Debian's clang 14, the libbpf headers from
# libbpf-dev (/usr/include/bpf) and the kernel UAPI headers from
# linux-libc-dev.
#
#   ./generate.sh           regenerate in place (make generate)
#   ./generate.sh --verify  regenerate into a temp dir and fail if the
#                           committed files differ (make verify-generate)
#
# The output is byte-for-byte reproducible for one compiler version only, so
# the compiler is pinned; override with BPF2GO_CC / BPF2GO_STRIP to try another.
set -eu

cd "$(dirname "$0")"
: "${BPF2GO_CC:=clang-14}"
: "${BPF2GO_STRIP:=llvm-strip-14}"
export BPF2GO_CC BPF2GO_STRIP

verify=false
case "${1:-}" in
"") ;;
--verify) verify=true ;;
*) echo "usage: $0 [--verify]" >&2; exit 2 ;;
esac

out=.
if $verify; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

# Little endian only: x86_64 and arm64. asm/types.h lives in the
# multiarch include directory.
GOPACKAGE=classify go tool bpf2go -target bpfel -output-dir "$out" -output-stem netclass \
	-type settings -type police -type tier_counter netclass ../../bpf/netclass.c -- \
	-I../../bpf -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror

if $verify; then
	stale=0
	for f in netclass_bpfel.go netclass_bpfel.o; do
		if ! cmp -s "$out/$f" "$f"; then
			echo "netqos/classify/$f is stale: run make generate (netqos/classify/generate.sh) and commit" >&2
			stale=1
		fi
	done
	exit $stale
fi
