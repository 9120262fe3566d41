package ebpf

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestBPFWakes runs more offline busy loops than CPUs, then one online busy
// loop, and checks that the programs post the wake-ups the agent acts on:
// online preempting offline, and an online wait above the threshold, each
// naming the online cgroup and never the offline one.
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

			off := startStoppedSpinners(t, spinners)
			for _, pid := range off {
				kerneltest.WriteCgroupFile(t, filepath.Join(offDir, "cgroup.procs"), strconv.Itoa(pid))
			}
			contAll(t, off)
			on := startStoppedSpinners(t, 1)
			kerneltest.WriteCgroupFile(t, filepath.Join(onDir, "cgroup.procs"), strconv.Itoa(on[0]))
			contAll(t, on)

			seen := map[WakeKind]int{}
			deadline := time.After(time.Minute)
			for seen[WakePreempt] == 0 || seen[WakeRunq] == 0 {
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
					t.Fatalf("wake-ups seen %v; want both kinds", seen)
				}
			}
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
