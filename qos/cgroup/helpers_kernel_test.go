package cgroup_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestMain lets the test binary run as a kerneltest child (a spinner or a
// memory hog the real-kernel tests put into their cgroups).
func TestMain(m *testing.M) {
	kerneltest.RunChild()
	os.Exit(m.Run())
}

// cpuStatField reads one field of a v1 or v2 cpu.stat.
func cpuStatField(t *testing.T, p, field string) int64 {
	t.Helper()
	for _, line := range strings.Split(kerneltest.ReadCgroupFile(t, p), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == field {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("%s: no %s", p, field)
	return 0
}
