package qos

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario files (testdata/scenarios/*.yaml) drive Decide through a
// sequence of observations and check plan properties at each step. Time is
// an offset from a fixed epoch; workloads persist from step to step until
// removed; class usage is given per step (offline memory defaults to the
// sum of the offline workloads).
type scenario struct {
	Description string         `yaml:"description"`
	Policy      string         `yaml:"policy"`
	Host        scenarioHost   `yaml:"host"`
	Workloads   []scWorkload   `yaml:"workloads"`
	Steps       []scenarioStep `yaml:"steps"`
}

type scenarioHost struct {
	CPUMilli int64  `yaml:"cpuMilli"`
	Memory   string `yaml:"memory"`
	CPUs     []int  `yaml:"cpus"`
}

type scWorkload struct {
	ID       string `yaml:"id"`
	Class    Class  `yaml:"class"`
	Priority int    `yaml:"priority"`
	// Started is an offset from the epoch ("-100s").
	Started string `yaml:"started"`
	Memory  string `yaml:"memory"`
	Limit   string `yaml:"limit"`
	Cpuset  string `yaml:"cpuset"`
}

type scenarioStep struct {
	At string `yaml:"at"`
	// Repeat runs the step this many times, Every apart (default once).
	Repeat int    `yaml:"repeat"`
	Every  string `yaml:"every"`
	// CPU is per-class usage in milli-CPUs; Cycle overrides it in
	// rotation on repeats (to make usage oscillate). CPU, Memory and
	// RunqP99 carry over to later steps until given again. RunqP99 "none"
	// means no online task waited in the window (no latency sample).
	CPU     map[Class]int64   `yaml:"cpu"`
	Cycle   []map[Class]int64 `yaml:"cycle"`
	Memory  map[Class]string  `yaml:"memory"`
	Set     map[string]string `yaml:"setMemory"`
	Add     []scWorkload      `yaml:"add"`
	Remove  []string          `yaml:"remove"`
	RunqP99 string            `yaml:"runqP99"`
	Targets Targets           `yaml:"targets"`
	Results []struct {
		Intent string       `yaml:"intent"`
		Target string       `yaml:"target"`
		Status ResultStatus `yaml:"status"`
	} `yaml:"results"`
	Expect scenarioExpect `yaml:"expect"`
}

type scenarioExpect struct {
	CPUBudget *int64 `yaml:"cpuBudget"`
	// CPUChangesAtMost bounds how often the budget changed within a repeated step.
	CPUChangesAtMost *int    `yaml:"cpuChangesAtMost"`
	MemoryMax        string  `yaml:"memoryMax"`
	MemoryHigh       string  `yaml:"memoryHigh"`
	Kill             *string `yaml:"kill"` // "" means no kill
	// CPUQuota is what the kernel receives for the budget: "<quota> <period>"
	// in microseconds.
	CPUQuota      string   `yaml:"cpuQuota"`
	OfflineWeight *uint64  `yaml:"offlineWeight"`
	OfflineIdle   *bool    `yaml:"offlineIdle"`
	OOMScoreAdj   *int     `yaml:"oomScoreAdj"`
	CPUReason     []string `yaml:"cpuReason"`
	MemoryReason  []string `yaml:"memoryReason"`
	KillReason    []string `yaml:"killReason"`
	// Cpusets maps cgroup path to cpulist; "none" means no cpuset intents.
	Cpusets map[string]string `yaml:"cpusets"`
}

var scenarioEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var sc scenario
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			if err := dec.Decode(&sc); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			runScenario(t, sc)
		})
	}
}

func runScenario(t *testing.T, sc scenario) {
	polText := sc.Policy
	if polText == "" {
		polText = "version: 1\n"
	}
	pol, err := ParsePolicy("scenario policy", []byte(polText))
	if err != nil {
		t.Fatal(err)
	}
	ws := map[string]WorkloadSample{}
	var order []string
	add := func(w scWorkload) {
		c := WorkloadSample{
			ID: w.ID, Name: w.ID, Class: w.Class, Priority: w.Priority,
			CgroupPath:       "/" + string(w.Class) + "/" + w.ID,
			StartedAt:        scenarioEpoch.Add(mustDuration(t, w.Started)),
			MemoryUsageBytes: mustSize(t, w.Memory),
			MemoryLimitBytes: mustSize(t, w.Limit),
		}
		if w.Class == ClassOffline {
			c.CgroupPath = pol.OfflineParent + "/" + w.ID
		}
		if w.Cpuset != "" {
			mode, n, err := ParseCpuset(w.Cpuset)
			if err != nil {
				t.Fatal(err)
			}
			c.CpusetMode, c.CPUsWanted = mode, n
		}
		if _, ok := ws[w.ID]; !ok {
			order = append(order, w.ID)
		}
		ws[w.ID] = c
	}
	for _, w := range sc.Workloads {
		add(w)
	}
	var state State
	// CPU, memory and latency carry over from the previous step unless given.
	var curCPU map[Class]int64
	var curMem map[Class]string
	var curRunq string
	for si, st := range sc.Steps {
		if st.CPU != nil {
			curCPU = st.CPU
		}
		if st.Memory != nil {
			curMem = st.Memory
		}
		if st.RunqP99 != "" {
			curRunq = st.RunqP99
		}
		for _, w := range st.Add {
			add(w)
		}
		for _, id := range st.Remove {
			delete(ws, id)
			order = slices.DeleteFunc(order, func(s string) bool { return s == id })
		}
		for id, size := range st.Set {
			w, ok := ws[id]
			if !ok {
				t.Fatalf("step %d: setMemory of unknown workload %q", si, id)
			}
			w.MemoryUsageBytes = mustSize(t, size)
			ws[id] = w
		}
		repeat := max(st.Repeat, 1)
		every := mustDuration(t, st.Every)
		at := mustDuration(t, st.At)
		changes, last := 0, int64(-1)
		var plan Plan
		for i := range repeat {
			obs := Observation{
				Time: scenarioEpoch.Add(at + time.Duration(i)*every),
				Host: HostSample{CPUCapacityMilli: sc.Host.CPUMilli, MemTotalBytes: mustSize(t, sc.Host.Memory), CPUs: sc.Host.CPUs},
			}
			cpu := curCPU
			if len(st.Cycle) > 0 {
				cpu = st.Cycle[i%len(st.Cycle)]
			}
			obs.Classes = map[Class]ClassUsage{}
			for _, id := range order {
				obs.Workloads = append(obs.Workloads, ws[id])
			}
			for _, c := range Classes {
				u := ClassUsage{CPUUsedMilli: cpu[c]}
				if m, ok := curMem[c]; ok {
					u.MemoryUsageBytes = mustSize(t, m)
				} else if c == ClassOffline {
					for _, w := range obs.Workloads {
						if w.Class == c {
							u.MemoryUsageBytes += w.MemoryUsageBytes
						}
					}
				}
				for _, w := range obs.Workloads {
					if w.Class == c {
						u.Count++
					}
				}
				obs.Classes[c] = u
			}
			if curRunq != "" && curRunq != "none" {
				u := obs.Classes[ClassOnline]
				u.RunqLatency = &LatencySummary{P99: mustDuration(t, curRunq), Count: 100}
				obs.Classes[ClassOnline] = u
			}
			if i == 0 {
				for _, r := range st.Results {
					obs.Results = append(obs.Results, IntentResult{Intent: r.Intent, Target: r.Target, Status: r.Status, At: obs.Time})
				}
			}
			plan, state = Decide(obs, pol, st.Targets, state)
			checkPlanSafety(t, obs, plan)
			if last >= 0 && plan.OfflineCPU.BudgetMilli != last {
				changes++
			}
			last = plan.OfflineCPU.BudgetMilli
		}
		checkStep(t, fmt.Sprintf("step %d (at %s)", si, st.At), st.Expect, plan, changes)
	}
}

func checkStep(t *testing.T, name string, e scenarioExpect, plan Plan, changes int) {
	t.Helper()
	if e.CPUBudget != nil && plan.OfflineCPU.BudgetMilli != *e.CPUBudget {
		t.Errorf("%s: cpu budget %dm, want %dm (%s)", name, plan.OfflineCPU.BudgetMilli, *e.CPUBudget, plan.OfflineCPU.Reason.String())
	}
	if cpu := plan.OfflineCPU; e.CPUQuota != "" && fmt.Sprintf("%d %d", cpu.QuotaMicros, cpu.PeriodMicros) != e.CPUQuota {
		t.Errorf("%s: cpu quota %d %d, want %s", name, cpu.QuotaMicros, cpu.PeriodMicros, e.CPUQuota)
	}
	if e.OfflineWeight != nil && plan.OfflineCPU.Weight != *e.OfflineWeight {
		t.Errorf("%s: offline weight %d, want %d", name, plan.OfflineCPU.Weight, *e.OfflineWeight)
	}
	if e.OfflineIdle != nil && plan.OfflineCPU.Idle != *e.OfflineIdle {
		t.Errorf("%s: offline idle %t, want %t", name, plan.OfflineCPU.Idle, *e.OfflineIdle)
	}
	if e.OOMScoreAdj != nil && (plan.OfflineOOMScore.Adj != *e.OOMScoreAdj || plan.OfflineOOMScore.Reason.IsZero()) {
		t.Errorf("%s: offline oom_score_adj %d (%s), want %d", name, plan.OfflineOOMScore.Adj, plan.OfflineOOMScore.Reason, *e.OOMScoreAdj)
	}
	if e.CPUChangesAtMost != nil && changes > *e.CPUChangesAtMost {
		t.Errorf("%s: cpu budget changed %d times, want at most %d", name, changes, *e.CPUChangesAtMost)
	}
	if e.MemoryMax != "" && plan.OfflineMemory.MaxBytes != mustSize(t, e.MemoryMax) {
		t.Errorf("%s: memory max %d, want %s (%s)", name, plan.OfflineMemory.MaxBytes, e.MemoryMax, plan.OfflineMemory.Reason.String())
	}
	if e.MemoryHigh != "" && plan.OfflineMemory.HighBytes != mustSize(t, e.MemoryHigh) {
		t.Errorf("%s: memory high %d, want %s", name, plan.OfflineMemory.HighBytes, e.MemoryHigh)
	}
	if e.Kill != nil {
		var got []string
		for _, k := range plan.Kills {
			got = append(got, k.ID)
		}
		want := []string{}
		if *e.Kill != "" {
			want = []string{*e.Kill}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: kills %v, want %v", name, got, want)
		}
	}
	for _, w := range e.CPUReason {
		if !strings.Contains(plan.OfflineCPU.Reason.String(), w) {
			t.Errorf("%s: cpu reason %q lacks %q", name, plan.OfflineCPU.Reason.String(), w)
		}
	}
	for _, w := range e.MemoryReason {
		if !strings.Contains(plan.OfflineMemory.Reason.String(), w) {
			t.Errorf("%s: memory reason %q lacks %q", name, plan.OfflineMemory.Reason.String(), w)
		}
	}
	for _, w := range e.KillReason {
		if len(plan.Kills) == 0 || !strings.Contains(plan.Kills[0].Reason.String(), w) {
			t.Errorf("%s: kill reason %v lacks %q", name, plan.Kills, w)
		}
	}
	if e.Cpusets != nil {
		got := map[string]string{}
		for _, c := range plan.Cpusets {
			got[c.CgroupPath] = formatCPUList(c.CPUs)
		}
		if e.Cpusets["none"] != "" {
			if len(got) != 0 {
				t.Errorf("%s: cpusets %v, want none", name, got)
			}
		} else if fmt.Sprint(got) != fmt.Sprint(e.Cpusets) {
			t.Errorf("%s: cpusets\n got %v\nwant %v", name, got, e.Cpusets)
		}
	}
}

// checkPlanSafety holds every plan to the rules no scenario may break.
func checkPlanSafety(t *testing.T, obs Observation, plan Plan) {
	t.Helper()
	if len(plan.Kills) > 1 {
		t.Errorf("%v: %d kills planned at once", obs.Time, len(plan.Kills))
	}
	for _, k := range plan.Kills {
		i := slices.IndexFunc(obs.Workloads, func(c WorkloadSample) bool { return c.ID == k.ID })
		if i < 0 || obs.Workloads[i].Class != ClassOffline || k.Class != ClassOffline {
			t.Errorf("%v: kill of %q, which is not an offline workload", obs.Time, k.ID)
		}
	}
	if plan.OfflineMemory.HighBytes > plan.OfflineMemory.MaxBytes {
		t.Errorf("memory high %d above max %d", plan.OfflineMemory.HighBytes, plan.OfflineMemory.MaxBytes)
	}
	for _, in := range plan.Intents() {
		if in.Reason == "" {
			t.Errorf("intent %+v has no reason", in)
		}
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// mustSize reads "1.5GiB", "512MiB", "100B" or a bare byte count.
func mustSize(t *testing.T, s string) uint64 {
	t.Helper()
	if s == "" {
		return 0
	}
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = num, u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("size %q: %v", s, err)
	}
	return uint64(math.Round(v * mult))
}
