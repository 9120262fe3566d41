package target

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/qos"
)

func TestSpecFromBrainContainer(t *testing.T) {
	c := brainlink.Container{
		ID: "web-12", Job: "web", App: "web", Image: "busybox:latest", Command: []string{"httpd", "-f"},
		Env: map[string]string{"B": "2", "A": "1"}, Resources: map[string]int64{"cpu": 500, "memory": 256 << 20},
		Class: "online", Priority: 100, Restart: "always",
		Labels: map[string]string{"sluice.io/job": "web", "sluice.io/replica": "web-12", "team": "edge"},
	}
	got := Spec(c)
	want := converge.Spec{
		ID: "web-12", Job: "web", Replica: 12, Image: "busybox:latest", Command: []string{"httpd", "-f"},
		Env: []string{"A=1", "B=2"}, CPUMilli: 500, MemoryBytes: 256 << 20, Class: qos.ClassOnline, Priority: 100,
		Labels: map[string]string{"team": "edge"}, Restart: converge.RestartAlways,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Spec:\n got %+v\nwant %+v", got, want)
	}
	// The brain's own sluice.io/ labels are dropped, so the spec is valid:
	// the converger sets them from the spec's fields.
	if err := got.Validate(); err != nil {
		t.Fatalf("converted spec invalid: %v", err)
	}
	if r := Spec(brainlink.Container{ID: "odd", Job: "web"}).Replica; r != 0 {
		t.Errorf("replica of an ID without the job prefix: %d, want 0", r)
	}
}

func TestQoSFromOverrides(t *testing.T) {
	lvl, capMilli := 0.6, int64(800)
	q := QoS(brainlink.Target{Version: 9, Overrides: &brainlink.Overrides{CPUWaterLevel: &lvl, OfflineCPUCapMilli: &capMilli}})
	if q.CPUWaterLevelPercent != 60 || q.MemoryWaterLevelPercent != 0 || q.Version != 9 ||
		q.OfflineCPUCapMilli == nil || *q.OfflineCPUCapMilli != 800 || q.OfflineMemoryCapBytes != nil {
		t.Fatalf("QoS = %+v", q)
	}
	if q := QoS(brainlink.Target{Version: 9}); !q.IsZero() {
		t.Fatalf("no overrides gave %+v", q)
	}
}

// fakeLink is a stateful brainlink stand-in: a held target and the
// acknowledgements it received; it refuses versions it does not hold, as
// the real link does.
type fakeLink struct {
	mu      sync.Mutex
	target  brainlink.Target
	changed chan struct{}
	acks    []uint64
	results [][]brainlink.ItemResult
	fail    error
}

func newFakeLink() *fakeLink { return &fakeLink{changed: make(chan struct{})} }

func (l *fakeLink) set(t brainlink.Target) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.target = t
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *fakeLink) Effective() brainlink.Target {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.target
}

func (l *fakeLink) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *fakeLink) Status() brainlink.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	var applied uint64
	if n := len(l.acks); n > 0 {
		applied = l.acks[n-1]
	}
	return brainlink.Status{Registered: true, TargetVersion: l.target.Version, AppliedVersion: applied}
}

func (l *fakeLink) Applied(_ context.Context, v uint64, rs []brainlink.ItemResult) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v > l.target.Version {
		return errors.New("version from the future")
	}
	if l.fail != nil {
		return l.fail
	}
	l.acks = append(l.acks, v)
	l.results = append(l.results, rs)
	return nil
}

// fakeConverger records the specs of each pass and answers with a status
// per container the test sets.
type fakeConverger struct {
	passes [][]converge.Spec
	status map[string]qos.ResultStatus
}

func (c *fakeConverger) Apply(_ context.Context, specs []converge.Spec) []qos.IntentResult {
	c.passes = append(c.passes, specs)
	var rs []qos.IntentResult
	for _, s := range specs {
		st := c.status[s.ID]
		if st == "" {
			st = qos.ResultApplied
		}
		r := qos.IntentResult{Intent: converge.IntentLaunch, Target: s.ID, Status: st}
		if st == qos.ResultFailed {
			r.Err = "boom"
		}
		rs = append(rs, r)
	}
	return rs
}

func (c *fakeConverger) States() []converge.ContainerState { return nil }

func (c *fakeConverger) KubeletManaged() bool { return false }

func TestRunnerConvergesAndAcknowledges(t *testing.T) {
	link, conv := newFakeLink(), &fakeConverger{status: map[string]qos.ResultStatus{}}
	r := New(Config{Link: link, Converger: conv})
	ctx := context.Background()

	// Never held a target: nothing converges (an earlier agent's
	// containers must not be stopped), nothing is acknowledged.
	r.pass(ctx)
	if len(conv.passes) != 0 || len(link.acks) != 0 {
		t.Fatalf("without a target: %d passes, acks %v", len(conv.passes), link.acks)
	}

	link.set(brainlink.Target{Version: 3, Containers: []brainlink.Container{{ID: "a-0", Job: "a", Image: "x", Class: "offline", Restart: "never"}}})
	r.pass(ctx)
	r.pass(ctx) // same version, same results: acknowledged once
	if len(conv.passes) != 2 || !reflect.DeepEqual(link.acks, []uint64{3}) {
		t.Fatalf("passes %d acks %v; want 2 passes, one ack of v3", len(conv.passes), link.acks)
	}

	// Results change within a version: acknowledged again, the worst
	// result per container in the brain's words.
	conv.status["a-0"] = qos.ResultFailed
	r.pass(ctx)
	if !reflect.DeepEqual(link.acks, []uint64{3, 3}) || link.results[1][0] != (brainlink.ItemResult{ID: "a-0", Result: "failed", Message: "boom"}) {
		t.Fatalf("acks %v results %+v", link.acks, link.results)
	}

	// A lost acknowledgement is retried on the next pass.
	link.mu.Lock()
	link.fail = errors.New("unavailable")
	link.mu.Unlock()
	link.set(brainlink.Target{Version: 4})
	r.pass(ctx)
	link.mu.Lock()
	link.fail = nil
	link.mu.Unlock()
	r.pass(ctx)
	if !reflect.DeepEqual(link.acks, []uint64{3, 3, 4}) {
		t.Fatalf("acks %v; want v4 acknowledged once the link took it", link.acks)
	}
	if s := r.Status(); s.ConvergedVersion != 4 || s.AppliedVersion != 4 || !s.Connected {
		t.Fatalf("status %+v", s)
	}
}

func TestItemResults(t *testing.T) {
	rs := []qos.IntentResult{
		{Intent: converge.IntentLaunch, Target: "b", Status: converge.StatusPending, Err: "pulling image"},
		{Intent: converge.IntentLaunch, Target: "a", Status: qos.ResultDryRun},
		{Intent: converge.IntentContainer, Target: "c", Status: qos.ResultUnchanged},
		{Intent: converge.IntentContainer, Target: "c", Status: qos.ResultFailed, Err: "targeted twice"},
	}
	want := []brainlink.ItemResult{
		{ID: "a", Result: "unsupported", Message: "dry-run: would launch"},
		{ID: "b", Result: "applied", Message: "pending: pulling image"},
		{ID: "c", Result: "failed", Message: "targeted twice"},
	}
	if got := itemResults(rs); !reflect.DeepEqual(got, want) {
		t.Fatalf("itemResults:\n got %+v\nwant %+v", got, want)
	}
}

func TestMetricsFollowTheLink(t *testing.T) {
	link := newFakeLink()
	r := New(Config{Link: link, Converger: &fakeConverger{}})
	reg := prometheus.NewPedanticRegistry()
	for _, c := range r.Collectors(time.Now) {
		reg.MustRegister(c)
	}
	link.set(brainlink.Target{Version: 5})
	r.pass(context.Background())
	want := `
# HELP sluice_brain_connected 1 while the agent is registered with the brain and hearing from it.
# TYPE sluice_brain_connected gauge
sluice_brain_connected 1
# HELP sluice_brain_target_version_applied Version of the brain target the agent acknowledged as applied.
# TYPE sluice_brain_target_version_applied gauge
sluice_brain_target_version_applied 5
# HELP sluice_brain_target_version_held Version of the brain target the agent holds.
# TYPE sluice_brain_target_version_held gauge
sluice_brain_target_version_held 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_brain_connected",
		"sluice_brain_target_version_applied", "sluice_brain_target_version_held"); err != nil {
		t.Fatal(err)
	}
}
