package vm

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// helperEnv selects a child-process role when the test binary re-executes
// itself: the guest has no other programs to run as load.
const helperEnv = "SLUICE_VM_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "busy":
		busy()
	case "hog":
		os.Exit(hog(256 << 20))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// hog touches every page of an anonymous mapping of sizeBytes, so the
// memory is charged to its cgroup, then exits 0 (it survived).
func hog(sizeBytes int) int {
	mem, err := unix.Mmap(-1, 0, sizeBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hog: mmap: %v\n", err)
		return 3
	}
	for i := 0; i < len(mem); i += os.Getpagesize() {
		mem[i] = 1
	}
	return 0
}

// busy spins until killed: the load cpu.max must cap.
func busy() {
	for n := 0; ; n++ {
	}
}
