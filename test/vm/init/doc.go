// Command init is /init of the cgroup v2 VM lane's initramfs (see package
// test/vm/lane for the host side). It runs as PID 1 in Debian's kernel
// under QEMU: it mounts proc, sysfs, devtmpfs, cgroup2 (at /sys/fs/cgroup),
// bpffs and tracefs, enables the cgroup controllers the spec names in the
// root cgroup.subtree_control, loads the spec's kernel modules with
// finit_module, brings up lo, runs the test binary with the spec's
// arguments, environment and working directory with its output on the
// serial console, prints the exit line and powers the machine off.
//
// It must be static and runnable on the emulated qemu64 CPU: build it with
// CGO_ENABLED=0 GOAMD64=v1 (test/vm/run does).
package main
