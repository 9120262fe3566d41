package vm

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
	"github.com/sluicehq/sluice/test/vm/lane"
)

// TestVMGuestEnvironment checks the promises doc.go makes to guest tests.
func TestVMGuestEnvironment(t *testing.T) {
	if !kerneltest.InVM() {
		t.Skip("runs only inside the VM lane (SLUICE_IN_VM=1); use test/vm/test.sh")
	}
	if got := os.Getenv("SLUICE_REQUIRE"); got != lane.GuestRequire {
		t.Errorf("SLUICE_REQUIRE = %q, want %q", got, lane.GuestRequire)
	}
	data, err := os.ReadFile("testdata/lane.txt")
	if err != nil {
		t.Errorf("package testdata not in the working directory: %v", err)
	} else if string(data) != "sluice vm lane testdata\n" {
		t.Errorf("testdata/lane.txt = %q", data)
	}

	root := kerneltest.RequireCgroupV2Controllers(t, lane.GuestControllers()...)
	if root != "/sys/fs/cgroup" {
		t.Errorf("cgroup2 root = %s, want /sys/fs/cgroup", root)
	}
	kerneltest.RequirePSI(t)

	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	for _, line := range strings.Split(string(mods), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			loaded = append(loaded, f[0])
		}
	}
	for _, m := range append(lane.DefaultModules(), "configfs") {
		if !slices.Contains(loaded, m) {
			t.Errorf("module %s not loaded (/proc/modules: %v)", m, loaded)
		}
	}
	if _, err := os.Stat("/dev/nullb0"); err != nil {
		t.Errorf("null_blk device: %v", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Flags&net.FlagUp == 0 {
		t.Errorf("lo is down (flags %v)", lo.Flags)
	}
}

// TestVMCPUMaxCapsBusyLoop: cpu.max 20000 100000 holds a busy loop to 20%
// of a CPU. The bound is an upper bound with slack because the guest clock
// follows the host's; that the kernel throttled the group at all is
// counted by the kernel in cpu.stat.
func TestVMCPUMaxCapsBusyLoop(t *testing.T) {
	root := kerneltest.RequireCgroupV2Controllers(t, "cpu")
	cg := newCgroup(t, root)
	writeFile(t, cg, "cpu.max", "20000 100000")
	if got := readFile(t, cg, "cpu.max"); got != "20000 100000" {
		t.Fatalf("cpu.max reads back %q", got)
	}
	child := startHelper(t, cg, "busy")
	if got, want := readFile(t, "/proc", strconv.Itoa(child.Process.Pid), "cgroup"), "0::/"+filepath.Base(cg); got != want {
		t.Fatalf("child's /proc/PID/cgroup = %q, want %q", got, want)
	}

	before := flatKeyed(t, cg, "cpu.stat")
	start := time.Now()
	// Three seconds span 30 periods, so a period cut by the window's edges
	// moves the share by at most about 0.007.
	time.Sleep(3 * time.Second)
	after := flatKeyed(t, cg, "cpu.stat")
	wall := time.Since(start)

	usedUsec := after["usage_usec"] - before["usage_usec"]
	share := float64(usedUsec) / float64(wall.Microseconds())
	t.Logf("busy loop under cpu.max 20000 100000: %.3f CPU over %v, nr_throttled +%d",
		share, wall.Round(time.Millisecond), after["nr_throttled"]-before["nr_throttled"])
	if usedUsec == 0 {
		t.Fatal("the busy loop used no CPU in its cgroup")
	}
	if share > 0.25 {
		t.Errorf("busy loop used %.3f of a CPU, want at most 0.25 under a 0.20 cap", share)
	}
	if after["nr_throttled"] <= before["nr_throttled"] || after["throttled_usec"] <= before["throttled_usec"] {
		t.Errorf("kernel never throttled the group: before %v, after %v", before, after)
	}
}

// TestVMMemoryMaxOOMKillsHog: memory.max 64 MiB makes the kernel OOM-kill
// a process that touches 256 MiB, and memory.events counts the kill.
func TestVMMemoryMaxOOMKillsHog(t *testing.T) {
	root := kerneltest.RequireCgroupV2Controllers(t, "memory")
	cg := newCgroup(t, root)
	const limitBytes = 64 << 20
	writeFile(t, cg, "memory.max", strconv.Itoa(limitBytes))
	if _, err := os.Stat(filepath.Join(cg, "memory.swap.max")); err == nil {
		// Without this, a host with swap would page the hog out instead.
		writeFile(t, cg, "memory.swap.max", "0")
	}
	if got := flatKeyed(t, cg, "memory.events")["oom_kill"]; got != 0 {
		t.Fatalf("new cgroup starts with oom_kill %d", got)
	}

	child := startHelper(t, cg, "hog")
	err := child.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("hog of 256 MiB under memory.max 64 MiB survived: %v", err)
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hog ended with %v, want killed by SIGKILL", err)
	}
	events := flatKeyed(t, cg, "memory.events")
	if events["oom_kill"] != 1 {
		t.Errorf("memory.events oom_kill = %d, want 1 (%v)", events["oom_kill"], events)
	}
	if peak, err := os.ReadFile(filepath.Join(cg, "memory.peak")); err == nil {
		// The kernel force-charges a dying OOM victim's last faults
		// (mm/memcontrol.c try_charge, "force:"), in batches of up to
		// MEMCG_CHARGE_BATCH (64) pages, so the peak may pass the limit by
		// that much; the hog's 256 MiB never came close.
		const slackBytes = 64 * 4096
		n, err := strconv.ParseInt(strings.TrimSpace(string(peak)), 10, 64)
		if err != nil || n > limitBytes+slackBytes {
			t.Errorf("memory.peak = %q, want at most %d + %d", peak, limitBytes, slackBytes)
		}
		t.Logf("memory.peak %d bytes under memory.max %d", n, limitBytes)
	}
}

// newCgroup creates a uniquely named child of root and removes it (after
// killing whatever is left in it) when the test ends.
func newCgroup(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("sluice-vmcheck-%d-%s", os.Getpid(), strings.ToLower(rand.Text()[:12])))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		// rmdir fails with EBUSY until the killed tasks are gone.
		var err error
		for range 100 {
			if err = os.Remove(dir); err == nil || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	})
	return dir
}

// startHelper re-executes the test binary as role, born inside cgroup cg
// (clone3 CLONE_INTO_CGROUP), so none of its usage lands elsewhere.
func startHelper(t *testing.T, cg, role string) *exec.Cmd {
	t.Helper()
	fd, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s helper in %s: %v", role, cg, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func readFile(t *testing.T, elem ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(elem...))
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(data))
}

func writeFile(t *testing.T, dir, name, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0); err != nil {
		t.Fatalf("write %q to %s: %v", value, filepath.Join(dir, name), err)
	}
}

// flatKeyed reads a cgroup "key value" file (cpu.stat, memory.events).
func flatKeyed(t *testing.T, dir, name string) map[string]int64 {
	t.Helper()
	out, err := parseFlatKeyed(readFile(t, dir, name))
	if err != nil {
		t.Fatalf("%s: %v", filepath.Join(dir, name), err)
	}
	return out
}

func parseFlatKeyed(text string) (map[string]int64, error) {
	out := map[string]int64{}
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: %q is not \"key value\"", i+1, line)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out[f[0]] = n
	}
	return out, nil
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add("usage_usec 123\nnr_throttled 4")
	f.Add("oom_kill -1")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseFlatKeyed(text)
		if err != nil {
			return
		}
		for k := range m {
			if k == "" || strings.ContainsAny(k, " \t\n") {
				t.Fatalf("bad key %q from %q", k, text)
			}
		}
	})
}
