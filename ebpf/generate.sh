#!/bin/sh
# Regenerate the committed bpf2go output of every BPF program from its C
# source in bpf/, with Debian's clang 14, the libbpf headers from
# libbpf-dev (/usr/include/bpf) and the kernel UAPI headers from
# linux-libc-dev:
#
#   runq      ebpf/runq_bpfel.{go,o}                 from bpf/runq.c
#   netclass  netqos/classify/netclass_bpfel.{go,o}  from bpf/netclass.c
#
#   ./ebpf/generate.sh [--verify] [PROGRAM...]
#
# Without programs it does all of them (make generate). --verify
# regenerates into a temp dir and fails if the committed files differ
# (make verify-generate).
#
# The output is byte-for-byte reproducible for one compiler version only, so
# the compiler is pinned; override with BPF2GO_CC / BPF2GO_STRIP to try another.
# Each program is built from its package's directory with the source's
# relative path, as committed: the paths end up in the object's BTF.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
: "${BPF2GO_CC:=clang-14}"
: "${BPF2GO_STRIP:=llvm-strip-14}"
export BPF2GO_CC BPF2GO_STRIP

usage() {
	echo "usage: $0 [--verify] [runq|netclass ...]" >&2
	exit 2
}
verify=false
if [ "${1:-}" = --verify ]; then
	verify=true
	shift
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stale=0

# gen DIR GOPACKAGE STEM TYPES -- CFLAGS...: run bpf2go for bpf/STEM.c in
# package directory DIR (relative to the repository root).
gen() {
	dir=$1 pkg=$2 stem=$3 types=$4
	shift 5
	out=.
	if $verify; then
		out=$tmp/$stem
		mkdir -p "$out"
	fi
	up=$(echo "$dir" | sed 's|[^/][^/]*|..|g')
	typeflags=""
	for t in $types; do
		typeflags="$typeflags -type $t"
	done
	# Little endian only: x86_64 and arm64.
	# shellcheck disable=SC2086 # typeflags is a word list
	(cd "$root/$dir" && GOPACKAGE=$pkg go tool bpf2go -target bpfel -output-dir "$out" -output-stem "$stem" \
		$typeflags "$stem" "$up/bpf/$stem.c" -- -I"$up/bpf" "$@" -O2 -g -Wall -Werror)
	if $verify; then
		for f in "${stem}_bpfel.go" "${stem}_bpfel.o"; do
			if ! cmp -s "$out/$f" "$root/$dir/$f"; then
				echo "$dir/$f is stale: run make generate (ebpf/generate.sh) and commit" >&2
				stale=1
			fi
		done
	fi
}

for prog in ${*:-runq netclass}; do
	case $prog in
	runq)
		gen ebpf ebpf runq "cgroup_stats last_switch_out task_wait_sum wake_config wake_event" -- ;;
	netclass)
		# asm/types.h lives in the multiarch include directory.
		gen netqos/classify classify netclass "settings police tier_counter" -- -I/usr/include/x86_64-linux-gnu ;;
	*) usage ;;
	esac
done
exit $stale
