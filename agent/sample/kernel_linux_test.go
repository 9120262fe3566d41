package sample

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestMain lets the test binary run as a kerneltest child (the busy loops
// and memory hogs the real-cgroup tests measure).
func TestMain(m *testing.M) {
	kerneltest.RunChild()
	os.Exit(m.Run())
}

// procCPUTime is a task's user+system time from /proc/<pid>/stat, in
// clock ticks (USER_HZ, 100/s): an accounting independent of cgroups.
func procCPUTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised comm; utime and stime are fields 14
	// and 15 of the line, 12 and 13 after ") ".
	s := string(b)
	i := len(s) - 1
	for i >= 0 && s[i] != ')' {
		i--
	}
	var f [13]string
	if _, err := fmt.Sscan(s[i+2:], &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &f[11], &f[12]); err != nil {
		t.Fatalf("parse /proc/%d/stat: %v", pid, err)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func within(got, want, frac float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= frac*want
}

func readFileString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
