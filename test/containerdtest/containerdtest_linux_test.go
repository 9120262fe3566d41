package containerdtest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/moby/sys/mountinfo"
)

func TestRunContainerPlacesTaskInCgroupEverywhere(t *testing.T) {
	inst := Start(t)
	ctx := context.Background()
	labels := map[string]string{"sluice.io/class": "offline", "sluice.io/priority": "3"}
	c := inst.RunContainer(t, ctx, "sluicetest", "busy",
		WithLabels(labels),
		WithArgs("sh", "-c", "while :; do :; done"))

	nctx := namespaces.WithNamespace(ctx, "sluicetest")
	got, err := c.Container.Labels(nctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range labels {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	spec, err := c.Container.Spec(nctx)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Linux.CgroupsPath != c.CgroupPath {
		t.Errorf("spec cgroupsPath = %q, want %q", spec.Linux.CgroupsPath, c.CgroupPath)
	}
	mounts, err := CgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, mp := range mounts {
		procs, err := os.ReadFile(filepath.Join(mp, c.CgroupPath, "cgroup.procs"))
		if err != nil {
			t.Errorf("hierarchy %s: %v", mp, err)
			continue
		}
		if !strings.Contains(" "+strings.Join(strings.Fields(string(procs)), " ")+" ", " "+itoa(c.Task.Pid())+" ") {
			t.Errorf("hierarchy %s: task pid %d not in cgroup.procs %q", mp, c.Task.Pid(), procs)
		}
	}

	if err := c.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-c.Exited:
		if st.ExitCode() != 128+uint32(syscall.SIGKILL) {
			t.Errorf("exit code %d, want %d", st.ExitCode(), 128+uint32(syscall.SIGKILL))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("task did not exit after SIGKILL")
	}
}

// TestCleanupLeavesNothing runs instances in subtests, one cleaned while
// containerd runs and one after the test stopped it with a container still
// running, then checks nothing of them is left on the host.
func TestCleanupLeavesNothing(t *testing.T) {
	for _, stopDaemon := range []bool{false, true} {
		var inst *Instance
		var c *Container
		name := "daemon-running"
		if stopDaemon {
			name = "daemon-stopped"
		}
		passed := t.Run(name, func(t *testing.T) {
			inst = Start(t)
			c = inst.RunContainer(t, context.Background(), "sluicetest", "leftover")
			if stopDaemon {
				inst.Stop(t)
			}
		})
		if inst == nil || c == nil {
			if passed {
				// The subtest skipped (no containerd on this host, and
				// SLUICE_REQUIRE does not demand it): so does this test.
				t.Skip("containerd missing: the subtest skipped")
			}
			t.Fatal("subtest did not start a container")
		}
		if _, err := os.Stat(inst.Dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: dir %s still there: %v", name, inst.Dir, err)
		}
		mounts, err := CgroupMounts()
		if err != nil {
			t.Fatal(err)
		}
		for _, mp := range mounts {
			if _, err := os.Stat(filepath.Join(mp, inst.CgroupParent)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: cgroup %s still in %s: %v", name, inst.CgroupParent, mp, err)
			}
		}
		if alive, state := processAlive(int(c.Task.Pid())); alive {
			t.Errorf("%s: task pid %d still alive (%s)", name, c.Task.Pid(), state)
		}
		ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(inst.Dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 0 {
			t.Errorf("%s: %d mounts left under %s", name, len(ms), inst.Dir)
		}
		if _, err := os.Stat(shimSocket(inst.Address, "sluicetest", "leftover")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: shim socket left: %v", name, err)
		}
		probe := &Instance{Address: inst.Address}
		if n := probe.countShims(); n != 0 {
			t.Errorf("%s: %d shims of %s still running", name, n, inst.Address)
		}
	}
}

func TestBusyboxLayoutIsDeterministic(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(bin, []byte("not really busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := BusyboxLayout(bin, BusyboxImageName)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BusyboxLayout(bin, BusyboxImageName)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("two layouts of the same binary differ; image digests would not be stable")
	}
	if _, err := BusyboxLayout(filepath.Join(t.TempDir(), "missing"), BusyboxImageName); err == nil {
		t.Error("missing busybox: no error")
	}
}

// BenchmarkStartImportRun measures a private containerd's start, the
// busybox import and one container's create+start. Each iteration leaves
// its instance for cleanup at the end; run with a small -benchtime=Nx.
func BenchmarkStartImportRun(b *testing.B) {
	ctx := context.Background()
	var start, imp, run time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		inst := Start(b)
		t1 := time.Now()
		inst.ImportBusybox(b, ctx, "sluicebench")
		t2 := time.Now()
		inst.RunContainer(b, ctx, "sluicebench", "c")
		t3 := time.Now()
		start, imp, run = start+t1.Sub(t0), imp+t2.Sub(t1), run+t3.Sub(t2)
		n++
	}
	b.ReportMetric(float64(start.Milliseconds())/float64(n), "start-ms/op")
	b.ReportMetric(float64(imp.Milliseconds())/float64(n), "import-ms/op")
	b.ReportMetric(float64(run.Milliseconds())/float64(n), "run-ms/op")
}

func itoa(n uint32) string { return strconv.Itoa(int(n)) }

// processAlive reports whether pid exists and is not a zombie (a killed
// container's init may be reparented to a slow reaper; it is dead then).
func processAlive(pid int) (bool, string) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return false, err.Error()
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "State:") {
			return !strings.Contains(line, "zombie"), line
		}
	}
	return true, "no State line"
}

func TestRequireStatic(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err == nil {
		if err := requireStatic("/bin/busybox"); err != nil {
			t.Errorf("Debian's busybox-static: %v", err)
		}
	}
	if err := requireStatic("/bin/sh"); err == nil {
		t.Error("/bin/sh (dynamically linked on Debian) reported static")
	}
	if err := requireStatic(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
