// Package lane is the host side of Sluice's cgroup v2 VM lane: it fetches
// Debian's kernel into a cache, packs an initramfs holding the guest /init,
// the kernel modules and a Go test binary, boots it under QEMU with software
// emulation, relays the serial console and turns the guest's exit line into
// an exit status. cmd test/vm/vmrun wraps Run for `go test -exec`.
//
// The kernel comes from the Debian archive (apt-get download of the package
// linux-image-amd64 depends on) because this host's kernel has cgroup v2
// without controllers; /dev/kvm is unusable here (nested virtualisation), so
// QEMU runs with -accel tcg and -cpu qemu64, which is why every guest binary
// must be built with GOAMD64=v1. The uncompressed vmlinux boots in about
// 5 s where the bzImage takes 8-16 s (decompression under emulation).
package lane
