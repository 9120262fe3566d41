package sample

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as a workload instead of running tests:
// "busy" spins forever, "alloc:<MiB>" touches that much anonymous memory,
// prints "ready" and sleeps.
const childEnv = "SLUICE_SAMPLE_CHILD"

func TestMain(m *testing.M) {
	switch v := os.Getenv(childEnv); {
	case v == "":
		os.Exit(m.Run())
	case v == "busy":
		spin()
	case strings.HasPrefix(v, "alloc:"):
		mib, _ := strconv.Atoi(strings.TrimPrefix(v, "alloc:"))
		b := make([]byte, mib<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour)
			b[0]++ // keep b alive
		}
	}
	os.Exit(2)
}

// spin burns CPU until killed: the busy workload.
func spin() {
	for n := uint64(0); ; n++ {
	}
}

// startChild runs the test binary as a child workload and kills it in
// Cleanup. The child dies with the test process too (Pdeathsig).
func startChild(t *testing.T, kind string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+kind)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t.Cleanup(func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func uniqueName(t *testing.T) string { return uniqueNameTB() }

func uniqueNameTB() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("sluice-sample-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
}

// makeCgroup creates dir (a cgroup under a hierarchy root) and removes it in
// Cleanup, after the children registered later have been killed.
func makeCgroup(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
}

func removeCgroup(t *testing.T, dir string) {
	// A killed task leaves its cgroup a moment after wait returns; EBUSY
	// until then.
	var err error
	for range 100 {
		if err = os.Remove(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", dir, err)
}

func writeFile(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readUint(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseUintValue(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
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

func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func itoa(n int) string { return strconv.Itoa(n) }

func readFileString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
