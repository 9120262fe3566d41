// Package vm is Sluice's cgroup v2 VM lane: Go test binaries run as the
// only program in Debian's kernel (cgroup v2 with controllers, PSI, BPF)
// under QEMU, because the development and CI hosts mount cgroup v2 without
// controllers (KERNEL.md). Its tests (vmcheck_linux_test.go) prove the lane
// enforces for real; the lane itself lives in the subpackages:
//
//   - lane: host side — kernel fetch and cache, initramfs, QEMU boot,
//     console relay, exit status;
//   - init: the guest's /init (PID 1);
//   - bootspec: the spec file and exit line the two share;
//   - vmrun: the `go test -exec` program; ./run builds it and calls it.
//
// # Running tests in the VM
//
//	test/vm/test.sh                      # every package with a Test*V2* or Test*VM* test
//	test/vm/test.sh ./qos/cgroup/        # chosen packages
//	VM_RUN='V2Memory' test/vm/test.sh ./qos/cgroup/
//
// which is
//
//	CGO_ENABLED=0 GOAMD64=v1 go test -p 1 -count=1 -exec "$PWD/test/vm/run" -run 'V2|VM' PKG...
//
// The test binary must be static (CGO_ENABLED=0; the initramfs has no libc)
// and built for GOAMD64=v1 (QEMU emulates a qemu64 CPU); go test builds it
// before calling the -exec program, so these variables go on the go test
// command line. vmrun refuses other binaries with a message saying this.
//
// # What a test sees in the guest
//
//   - It runs as root (PID 1's child) with cwd /sluice/pkg, holding a copy
//     of the package's testdata/ (nothing else of the source tree).
//     Files the test writes stay in the guest, so flags that write
//     results to host paths (-cover, -coverprofile, -cpuprofile) do not
//     work in the lane; -v and -json do.
//   - cgroup2 at /sys/fs/cgroup with cpu, memory, io, cpuset and pids
//     enabled in the root's cgroup.subtree_control; PSI; bpffs at
//     /sys/fs/bpf; tracefs at /sys/kernel/tracing; devtmpfs; lo up; no
//     other network device.
//   - Modules loaded: sch_fq, sch_htb, sch_tbf, sch_netem, sch_ingress,
//     cls_bpf, act_bpf, veth, dummy, configfs, null_blk (so /dev/nullb0
//     exists: a block device for io.max tests).
//   - /bin/busybox with applet links when the host has a static busybox
//     (Debian busybox-static); gate with kerneltest.RequireBinary.
//   - Environment: PATH=/bin:/sbin, HOME=/root, TMPDIR=/tmp,
//     SLUICE_IN_VM=1 (kerneltest.InVM) and
//     SLUICE_REQUIRE=root,cgroupv2,cgroupv2-controllers,psi,bpf, so gates on
//     those features fail rather than skip in the guest; GOTRACEBACK and
//     GODEBUG pass through from the host.
//   - 2 CPUs and 1024 MiB, emulated (TCG), so code runs 5-20x slower than
//     on the host; the guest clock follows the host's, so check CPU limits
//     as upper bounds with slack. The serial console carries about 200 KB/s:
//     keep output short (use -v only when debugging).
//
// Gate v2 tests with kerneltest.RequireCgroupV2Controllers (returns the
// mount root) and name them with V2 or VM so the lane's -run picks them;
// on this host they skip, in the guest they run. Child processes are best
// started by re-executing the test binary (os.Args[0]) from TestMain, as
// vmcheck_linux_test.go does, since the guest has no other programs unless
// busybox is packed.
//
// # Exit status
//
// The test's exit code passes through (128+N when signal N killed it).
// vmrun exits 2 with a "vmrun:" message when the lane itself fails: no
// QEMU, no kernel, a non-static binary, guest setup failure, or a guest
// that ended without printing its exit line (kernel panic, timeout — by
// default the test's -test.timeout plus two minutes; go test itself kills
// the -exec program a minute after its -timeout).
//
// A stalled guest is told from a slow test by a heartbeat: while the test
// runs, /init writes a byte every 2 s to the guest's second serial port,
// which QEMU appends to a host file. A minute without a beat (after a
// first one) stops the guest as stalled, and vmrun boots it once more:
// under TCG a guest has hung a few times, in a different package each
// time, with nothing on the console, and waiting for go test to kill it
// cost eleven minutes and the run. vmrun says so on stderr; a second
// stall fails the package.
//
// # Cache and cost
//
// The kernel (the package linux-image-amd64 depends on, fetched with
// apt-get download; apt-get update only when that fails) is unpacked with
// dpkg -x, its vmlinux decompressed with xz, and the modules above resolved
// from their .modinfo (no depmod needed) into test/vm/.work (git-ignored;
// SLUICE_VM_CACHE moves it; `test/vm/run -fetch` fills it alone). Needs
// Debian packages qemu-system-x86, xz-utils, dpkg and apt; not kmod.
// Measured cold fetch: on an idle host download 2 s and dpkg -x 4 s; on a
// host at load average 11, download 2.8 s, dpkg -x 14.3 s, xz 2.4 s,
// modules 0.02 s. Each package then boots and powers off in about 5 s on
// an idle host (10-13 s at load average 15-24) plus its tests' time
// (BenchmarkBootToExit in lane). To pack another module, add it to
// lane.DefaultModules: its dependencies come along and the cache entry is
// keyed by the module set.
package vm
