package lane

import (
	"strconv"
	"strings"
	"time"
)

// Machine is one QEMU guest.
type Machine struct {
	// QEMU is the qemu-system-x86_64 binary.
	QEMU string
	// Kernel is the uncompressed vmlinux (QEMU boots it through its PVH
	// note, skipping the in-guest decompression that is slow under TCG).
	Kernel string
	Initrd string
	// MemoryMiB and CPUs size the guest.
	MemoryMiB int
	CPUs      int
	// Append is extra kernel command-line words. Words the kernel does not
	// know become /init arguments, so only put kernel parameters here.
	Append []string
	// Heartbeat, when set, is a host file that the guest's second serial
	// port (ttyS1) writes to: /init beats on it while the test runs, so
	// Boot can tell a stalled guest from a slow test.
	Heartbeat string
	// StallAfter is how long Boot waits for a beat before it stops the
	// guest as stalled; 0 means the default StallAfter.
	StallAfter time.Duration
}

// Args returns QEMU's command line. The guest has no network device and
// no display; its only I/O is the serial console on QEMU's stdout, and
// -no-reboot turns both power-off and a kernel panic (panic=-1 reboots
// at once) into QEMU exiting.
func (m Machine) Args() []string {
	cmdline := append([]string{"console=ttyS0", "loglevel=1", "panic=-1"}, m.Append...)
	args := []string{
		"-accel", "tcg", "-cpu", "qemu64",
		"-m", strconv.Itoa(m.MemoryMiB), "-smp", strconv.Itoa(m.CPUs),
		"-nodefaults", "-display", "none", "-serial", "stdio", "-net", "none", "-no-reboot",
		"-kernel", m.Kernel, "-initrd", m.Initrd,
		"-append", strings.Join(cmdline, " "),
	}
	if m.Heartbeat != "" {
		args = append(args, "-serial", "file:"+m.Heartbeat)
	}
	return args
}
