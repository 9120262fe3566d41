package killer_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent/killer"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestMain lets the test binary run as a kerneltest child (the memory
// hogs the real-kernel tests kill).
func TestMain(m *testing.M) {
	kerneltest.RunChild()
	os.Exit(m.Run())
}

type hog struct {
	sample qos.WorkloadSample
	memDir string
	child  *kerneltest.Child
}

func (h *hog) gone() bool {
	select {
	case <-h.child.Done():
		return true
	default:
		return false
	}
}

// TestRealKillOfflineByPriorityWithCoolDown drives the decision core with
// observations of real memory hogs on this host: offline memory stays above
// its limit (v1 refuses to shrink it: no swap), so after the grace the
// killer kills the lowest-priority offline hog (through cgroup.kill on the
// unified hierarchy), waits out the cool-down, then kills the next one
// (per-pid SIGKILL from the v1 memory cgroup), while the online process
// keeps running. Time is the observation's: nothing waits for real except
// the victims' exit.
func TestRealKillOfflineByPriorityWithCoolDown(t *testing.T) {
	memRoot := kerneltest.RequireCgroupV1Controller(t, "memory")
	unified := kerneltest.RequireCgroupV2(t)
	cpuRoot := filepath.Join(filepath.Dir(memRoot), "cpu")
	enf := func(parent string) (cgroup.Enforcer, error) {
		return cgroup.NewV1(cgroup.Config{OfflineParent: parent},
			cgroup.V1Roots{CPU: cgroup.Dir(cpuRoot), Memory: cgroup.Dir(memRoot)})
	}
	k, err := killer.New(killer.Config{Unified: cgroup.Dir(unified), V1: cgroup.Dir(memRoot)})
	if err != nil {
		t.Fatal(err)
	}
	killScenario(t, layout{memRoot: memRoot, usageFile: "memory.usage_in_bytes", unified: unified, extra: []string{cpuRoot}}, enf, k)
}

// TestRealV2KillOfflineByPriority is the same scenario on a pure cgroup v2
// host (the VM lane): memory.max is enforced, every kill is cgroup.kill.
func TestRealV2KillOfflineByPriority(t *testing.T) {
	root := kerneltest.RequireCgroupV2Controllers(t, "memory")
	enf := func(parent string) (cgroup.Enforcer, error) {
		return cgroup.NewV2(cgroup.Config{OfflineParent: parent}, cgroup.Dir(root))
	}
	k, err := killer.New(killer.Config{Unified: cgroup.Dir(root)})
	if err != nil {
		t.Fatal(err)
	}
	killScenario(t, layout{memRoot: root, usageFile: "memory.current"}, enf, k)
}

type layout struct {
	memRoot   string // hierarchy with memory accounting
	usageFile string
	unified   string   // hybrid hosts: also put the first victim here (cgroup.kill)
	extra     []string // other hierarchies the enforcer creates the parent in
}

func killScenario(t *testing.T, l layout, newEnforcer func(parent string) (cgroup.Enforcer, error), k *killer.Killer) {
	memRoot, unified := l.memRoot, l.unified
	roots := append([]string{memRoot}, l.extra...)
	if unified != "" {
		roots = append(roots, unified)
	}
	top := kerneltest.UniqueCgroup(t, "sluice-killtest", roots...)
	for _, d := range []string{"/offline/low", "/offline/high", "/online"} {
		kerneltest.MakeCgroup(t, top+d, memRoot)
	}
	if unified != "" {
		kerneltest.MakeCgroup(t, top+"/offline/low", unified)
	} else {
		// Pure v2: the memory controller must reach the leaves.
		for _, p := range []string{top, top + "/offline"} {
			kerneltest.WriteCgroupFile(t, filepath.Join(memRoot, p, "cgroup.subtree_control"), "+memory")
		}
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hogs := []*hog{
		{sample: qos.WorkloadSample{ID: "low", Name: "batch-low", Class: qos.ClassOffline, Priority: 1, CgroupPath: top + "/offline/low", StartedAt: start.Add(-time.Hour)}},
		{sample: qos.WorkloadSample{ID: "high", Name: "batch-high", Class: qos.ClassOffline, Priority: 5, CgroupPath: top + "/offline/high", StartedAt: start}},
		{sample: qos.WorkloadSample{ID: "web", Name: "web", Class: qos.ClassOnline, Priority: 0, CgroupPath: top + "/online", StartedAt: start}},
	}
	for i, h := range hogs {
		h.memDir = filepath.Join(memRoot, h.sample.CgroupPath)
		dirs := []string{h.memDir}
		if h.sample.ID == "low" && unified != "" {
			dirs = append(dirs, filepath.Join(unified, h.sample.CgroupPath))
		}
		h.child = kerneltest.StartChild(t, kerneltest.WorkloadHogPrefix+strconv.Itoa([]int{40, 40, 16}[i]), dirs...)
	}

	pol := qos.DefaultPolicy()
	pol.OfflineParent = top + "/offline"
	enf, err := newEnforcer(pol.OfflineParent)
	if err != nil {
		t.Fatal(err)
	}

	var state qos.State
	var results []qos.IntentResult
	type kill struct {
		id string
		at time.Duration
	}
	var kills []kill
	for step := range 60 {
		now := start.Add(time.Duration(step) * time.Second)
		obs := qos.Observation{Time: now, Results: results,
			Host:    qos.HostSample{CPUCapacityMilli: 2000, CPUUsedMilli: 200, MemTotalBytes: 256 << 20},
			Classes: map[qos.Class]qos.ClassUsage{qos.ClassSystem: {MemoryUsageBytes: 158 << 20}}}
		for _, h := range hogs {
			if h.gone() {
				continue
			}
			s := h.sample
			u := uint64(kerneltest.ReadCgroupInt(t, filepath.Join(h.memDir, l.usageFile)))
			s.MemoryUsageBytes = u
			obs.Workloads = append(obs.Workloads, s)
			cu := obs.Classes[s.Class]
			cu.MemoryUsageBytes += u
			cu.Count++
			obs.Classes[s.Class] = cu
		}
		var plan qos.Plan
		plan, state = qos.Decide(obs, pol, qos.Targets{}, state)
		enforced := plan
		if unified == "" {
			// On v2 a memory.max below usage makes the kernel OOM-kill by
			// itself (the backstop), which would pre-empt the killer under
			// test; v1 refuses the limit instead (EBUSY).
			enforced.OfflineMemory = qos.MemoryIntent{}
		}
		results = enf.Apply(context.Background(), enforced)
		kr := k.Apply(context.Background(), plan)
		results = append(results, kr...)
		for i, r := range kr {
			if r.Status != qos.ResultApplied {
				t.Fatalf("step %d: kill %s: %s %s", step, r.Target, r.Status, r.Err)
			}
			t.Logf("t+%ds kill %s: %s", step, r.Target, plan.Kills[i].Reason.String())
			kills = append(kills, kill{r.Target, time.Duration(step) * time.Second})
			for _, h := range hogs {
				if h.sample.ID == r.Target {
					select { // liveness bound for SIGKILL, not a speed check
					case <-h.child.Done():
					case <-time.After(30 * time.Second):
						t.Fatalf("%s still running after its kill", r.Target)
					}
				}
			}
		}
		if hogs[2].gone() {
			t.Fatalf("step %d: the online process died", step)
		}
		if len(kills) == 2 {
			break
		}
	}
	if len(kills) != 2 || kills[0].id != "low" || kills[1].id != "high" {
		t.Fatalf("kills %v, want low then high", kills)
	}
	if gap := kills[1].at - kills[0].at; gap < pol.Kill.CoolDown {
		t.Errorf("second kill %v after the first, inside the cool-down %v", gap, pol.Kill.CoolDown)
	}
	if kills[0].at < pol.Kill.Grace {
		t.Errorf("first kill at %v, inside the grace %v", kills[0].at, pol.Kill.Grace)
	}
}
