#!/usr/bin/env bash
# Runs Go tests inside the cgroup v2 VM lane (Debian's kernel under QEMU);
# `make test-vm` calls it. With no arguments it runs every package that
# declares a Test...V2... or Test...VM... function (V2 not followed by a
# digit: TestLoadV2018 is no cgroup test); otherwise the packages
# given. VM_RUN overrides the -run pattern ('V2|VM'); extra go test flags
# go in VM_TESTFLAGS (e.g. VM_TESTFLAGS=-v). See test/vm/doc.go.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  # Packages whose tests the -run pattern can select; the rest would boot
  # a VM (about 5 s each) to run nothing.
  mapfile -t pkgs < <(grep -rlE --include='*_test.go' '^func Test[A-Za-z0-9_]*(V2[^0-9]|VM)' . \
    | grep -v '/\.work/' | xargs -r -n1 dirname | sort -u | sed 's|^\./|./|; s|$|/|')
fi
if [ ${#pkgs[@]} -eq 0 ]; then
  echo "test/vm/test.sh: no package has Test*V2*/Test*VM* tests" >&2
  exit 1
fi

# One VM at a time: each wants both host CPUs, and parallel guests slow
# each other's emulated clocks down.
# shellcheck disable=SC2086
CGO_ENABLED=0 GOAMD64=v1 exec go test -p 1 -count=1 ${VM_TESTFLAGS:-} \
  -exec "$here/run" -run "${VM_RUN:-V2|VM}" "${pkgs[@]}"
