package ebpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestBPFWakes starts an online task that sleeps and wakes, then more
// offline busy loops than CPUs beside it, and checks that the programs post
// the wake-ups the agent acts on: an online task woken, online
// preempting offline, and an online wait above the threshold, each naming
// the online cgroup and never the offline one.
func TestBPFWakes(t *testing.T) {
	kerneltest.RequireBPF(t)
	cpuRoot := kerneltest.RequireCgroupV1Controller(t, "cpu")
	for _, attach := range attachModes() {
		t.Run(attach.String(), func(t *testing.T) {
			offDir, onDir := makeCgroup(t, cpuRoot), makeCgroup(t, cpuRoot)
			ids := map[string]uint64{}
			for name, dir := range map[string]string{"offline": offDir, "online": onDir} {
				id, err := CgroupIDFor(KeyCgroupV1CPU, hostLayout(t), filepath.Base(dir))
				if err != nil {
					t.Fatal(err)
				}
				ids[name] = id
			}
			s := loadForTest(t, Options{Attach: attach, KeyMode: KeyCgroupV1CPU})
			if err := s.SetWakeClass(ids["offline"], WakeClassOffline); err != nil {
				t.Fatal(err)
			}
			if err := s.SetWakeClass(ids["online"], WakeClassOnline); err != nil {
				t.Fatal(err)
			}
			if err := s.SetWakes(WakeConfig{RunqThreshold: time.Microsecond, MinGap: time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			events := make(chan WakeEvent, 64)
			go func() {
				for {
					ev, err := s.NextWake()
					if err != nil {
						close(events)
						return
					}
					events <- ev
				}
			}()

			seen := map[WakeKind]int{}
			collect := func(what string, done func() bool) {
				t.Helper()
				deadline := time.After(time.Minute)
				for !done() {
					select {
					case ev := <-events:
						if ev.CgroupID != ids["online"] {
							t.Fatalf("wake-up %+v names cgroup %d; want the online cgroup %d", ev, ev.CgroupID, ids["online"])
						}
						if ev.Kind == WakeRunq && ev.Delay <= time.Microsecond {
							t.Errorf("run-queue wake-up %+v at or below the 1µs threshold", ev)
						}
						seen[ev.Kind]++
					case <-deadline:
						t.Fatalf("wake-ups seen %v; want %s", seen, what)
					}
				}
			}
			// An online task that sleeps and wakes: each wake-up is posted;
			// it then takes a CPU, idle ones first, then ones offline work
			// holds.
			kerneltest.StartCmd(t, exec.Command("/bin/sh", "-c",
				fmt.Sprintf("echo $$ > %s/cgroup.procs && while :; do sleep 0.005; done", onDir)))
			collect("the online task woken", func() bool { return seen[WakeWoken] > 0 })

			off := startStoppedSpinners(t, spinners)
			for _, pid := range off {
				kerneltest.WriteCgroupFile(t, filepath.Join(offDir, "cgroup.procs"), strconv.Itoa(pid))
			}
			contAll(t, off)
			collect("online preempting offline and waiting", func() bool { return seen[WakePreempt] > 0 && seen[WakeRunq] > 0 })
			t.Logf("wake-ups %v", seen)
		})
	}
}

func TestSetWakesRejectsTinyGap(t *testing.T) {
	var s Sampler
	if err := s.SetWakes(WakeConfig{RunqThreshold: time.Millisecond}); err == nil {
		t.Error("a zero min gap was accepted: every switch-out could post a wake-up")
	}
}

// TestBPFWakeRingWaitsInNetpoller checks that NextWake waits on the ring's
// descriptor in Go's netpoller (not in a blocking epoll_wait, which keeps
// the runtime's sysmon polling), returns nothing while nothing is posted,
// and ends with os.ErrClosed when the sampler closes.
func TestBPFWakeRingWaitsInNetpoller(t *testing.T) {
	kerneltest.RequireBPF(t)
	s, err := Load(Options{KeyMode: KeyCgroupV2})
	if errors.Is(err, ErrNotSupported) {
		kerneltest.Missing(t, kerneltest.FeatureBPF, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	errc := make(chan error, 1)
	go func() {
		_, err := s.NextWake()
		errc <- err
	}()
	runUntil(t, "NextWake to open the ring", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.wake != nil
	})
	if s.wake.f == nil {
		t.Fatal("the wake-up ring's descriptor is not in the netpoller: NextWake blocks in epoll_wait")
	}
	select {
	case err := <-errc:
		t.Fatalf("NextWake returned (%v) with wake-ups off", err)
	case <-time.After(100 * time.Millisecond):
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("NextWake after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("NextWake still waiting 10 s after Close")
	}
}
