package sample

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// hasCapSysResource reports whether this process may register PSI triggers
// with any window (the kernel checks the opener's effective capabilities).
func hasCapSysResource(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			const capSysResource = 24
			return caps&(1<<capSysResource) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

func watcherGoroutines() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*PSIWatcher).run")
}

// TestRealPSITriggerWindows registers host triggers with a 2 s window
// (always allowed) and a 1 s window, which the kernel refuses without
// CAP_SYS_RESOURCE: the watcher must then fall back to 2 s and say so once.
func TestRealPSITriggerWindows(t *testing.T) {
	kerneltest.RequirePSI(t)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	before := watcherGoroutines()
	w, err := NewPSIWatcher("/proc", []PSITrigger{
		{Resource: "cpu", Stall: 150 * time.Millisecond, Window: 2 * time.Second},
		{Resource: "memory", Stall: 150 * time.Millisecond, Window: time.Second},
		{Resource: "io", Full: true, Stall: 500 * time.Millisecond, Window: 4 * time.Second},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	got := w.Triggers()
	if got[0].Window != 2*time.Second || got[0].Stall != 150*time.Millisecond {
		t.Errorf("2 s trigger in force as %v", got[0])
	}
	if got[2].Window != 4*time.Second || got[2].Stall != 500*time.Millisecond || !got[2].Full {
		t.Errorf("4 s trigger in force as %v", got[2])
	}
	fallbacks := strings.Count(logBuf.String(), "psi trigger window refused")
	if hasCapSysResource(t) {
		if got[1].Window != time.Second || fallbacks != 0 {
			t.Errorf("with CAP_SYS_RESOURCE the 1 s window should stand: in force %v, %d fallback logs", got[1], fallbacks)
		}
	} else {
		if got[1].Window != 2*time.Second || got[1].Stall != 300*time.Millisecond {
			t.Errorf("without CAP_SYS_RESOURCE: 1 s trigger in force as %v, want 300ms/2s", got[1])
		}
		if fallbacks != 1 {
			t.Errorf("fallback logged %d times, want once:\n%s", fallbacks, logBuf.String())
		}
	}
	t.Logf("triggers in force: %v; log: %s", got, logBuf.String())
	// A goroutine just created may not show in stack dumps yet: wait for
	// it, so that the check after Close means something.
	for i := 0; watcherGoroutines() != before+1; i++ {
		if i == 500 {
			t.Fatalf("watcher goroutine never showed up (%d running, want %d)", watcherGoroutines(), before+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waits for the goroutine, which closes C on its way out.
	for range w.C() {
	}
	if n := watcherGoroutines(); n != before {
		t.Errorf("after Close: %d watcher goroutines, want %d (leak)", n, before)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestRealPSITriggerFires loads a fresh cgroup2 cgroup with more busy tasks
// than CPUs, so its tasks wait for CPU all the time, and expects its
// cpu.pressure trigger to fire; removing the cgroup must then report the
// trigger dead instead of spinning.
func TestRealPSITriggerFires(t *testing.T) {
	kerneltest.RequirePSI(t)
	root := kerneltest.RequireCgroupV2(t)
	dir := kerneltest.MakeCgroup(t, kerneltest.UniqueName("sluice-sample"), root)[0]
	w, err := NewPSIWatcher("/proc", []PSITrigger{
		{Resource: "cpu", Stall: 100 * time.Millisecond, Window: 2 * time.Second, Cgroup: dir},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	var children []*kerneltest.Child
	for range runtime.NumCPU() + 1 {
		children = append(children, kerneltest.StartChild(t, kerneltest.WorkloadSpin, dir))
	}
	// A bound on how long to wait, not a measurement: the kernel checks
	// unprivileged triggers every 2 s.
	select {
	case ev := <-w.C():
		if ev.Err != nil || ev.Trigger.Cgroup != dir {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cpu.pressure trigger did not fire within 30 s with more busy tasks than CPUs")
	}

	for _, c := range children {
		_ = c.Cmd.Process.Kill()
		<-c.Done()
	}
	kerneltest.RemoveTree(t, dir)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-w.C():
			if !ok {
				t.Fatal("C closed before reporting the dead trigger")
			}
			if ev.Err == nil {
				continue // a late pressure event
			}
			if !errors.Is(ev.Err, ErrCgroupGone) {
				t.Fatalf("dead trigger error %v, want ErrCgroupGone", ev.Err)
			}
			return
		case <-deadline:
			t.Fatal("removed cgroup's trigger was not reported dead within 30 s")
		}
	}
}

func TestRealPSIWatcherRejects(t *testing.T) {
	kerneltest.RequirePSI(t)
	if _, err := NewPSIWatcher("/proc", nil, nil); err == nil {
		t.Error("no triggers: want error")
	}
	_, err := NewPSIWatcher("/proc", []PSITrigger{{Resource: "cpu", Stall: time.Second, Window: 2 * time.Second, Cgroup: "/sys/fs/cgroup/unified/no-such-cgroup-sluice"}}, nil)
	if !errors.Is(err, ErrCgroupGone) {
		t.Errorf("trigger on a missing cgroup: %v, want ErrCgroupGone", err)
	}
	before := watcherGoroutines()
	_, err = NewPSIWatcher(t.TempDir(), []PSITrigger{{Resource: "cpu", Stall: time.Second, Window: 2 * time.Second}}, nil)
	if err == nil {
		t.Error("proc root without pressure files: want error")
	}
	if n := watcherGoroutines(); n != before {
		t.Errorf("failed NewPSIWatcher left %d goroutines", n-before)
	}
}
