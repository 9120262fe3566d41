package agent

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/qos"
)

// A wake-up's own decision re-arms the gate at once whether it cut the
// offline budget or not: a cut to the water level leaves offline work CPU
// a second burst can want.
func TestWakeGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	g := wakeGate{armed: true}
	if !g.event(at(0)) {
		t.Fatal("an armed gate ignored an event")
	}
	if g.event(at(time.Millisecond)) {
		t.Error("a second event acted on before the first's decision")
	}
	if !g.decided(at(confirmWait), 1000) || !g.armed {
		t.Fatal("the wake-up's decision (no cut) did not re-arm")
	}
	if !g.event(at(100 * time.Millisecond)) {
		t.Fatal("re-armed gate ignored an event")
	}
	if !g.decided(at(100*time.Millisecond+confirmWait), 300) {
		t.Error("the wake-up's decision that cut did not re-arm at once")
	}
	// Decisions that are not a wake-up's own leave an armed gate alone.
	if g.decided(at(200*time.Millisecond), 250) || !g.armed {
		t.Error("a tick's decision changed an armed gate")
	}
}

// Quick re-arms, after dismissals and decisions alike, come up to
// quickRearms times a second; past that the gate waits for the budget to
// grow past what the last wake-up's decision left, or for rearmAfter.
func TestWakeGateAllowance(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	g := wakeGate{armed: true}
	if g.handled(at(0)) {
		t.Fatal("an armed gate re-armed")
	}
	var d time.Duration
	for i := range quickRearms {
		d = time.Duration(i) * 30 * time.Millisecond
		if !g.event(at(d)) {
			t.Fatalf("event %d ignored", i)
		}
		rearmed := false
		if i%2 == 0 {
			rearmed = g.handled(at(d + confirmWait))
		} else {
			rearmed = g.decided(at(d+confirmWait), 500)
		}
		if !rearmed {
			t.Fatalf("wake-up %d did not re-arm", i)
		}
	}
	d += 30 * time.Millisecond
	if !g.event(at(d)) {
		t.Fatal("re-armed gate ignored an event")
	}
	if g.decided(at(d+confirmWait), 500) {
		t.Fatalf("wake-up %d in a second re-armed", quickRearms+1)
	}
	if g.event(at(d + 50*time.Millisecond)) {
		t.Error("acted on an event while disarmed")
	}
	if g.decided(at(d+100*time.Millisecond), 500) || g.decided(at(d+200*time.Millisecond), 400) {
		t.Error("re-armed with a steady or falling budget before rearmAfter")
	}
	if !g.decided(at(d+300*time.Millisecond), 600) {
		t.Error("did not re-arm when the budget grew past the wake-up's decision")
	}

	// Spent again, now by dismissals: a dismissed wake-up has no decision,
	// so the next tick's stands in for it.
	d = 2 * time.Second
	for i := range quickRearms + 1 {
		if !g.event(at(d)) {
			t.Fatalf("event %d ignored", i)
		}
		if got := g.handled(at(d + confirmWait)); got != (i < quickRearms) {
			t.Fatalf("dismissal %d re-armed: %v", i, got)
		}
		d += 30 * time.Millisecond
	}
	g.decided(at(d), 500)
	if g.decided(at(d+100*time.Millisecond), 500) {
		t.Error("re-armed with a steady budget before rearmAfter")
	}
	if !g.decided(at(d-30*time.Millisecond+rearmAfter), 500) {
		t.Error("did not re-arm after rearmAfter")
	}
	// A new second brings a new allowance.
	if !g.event(at(d+rearmAfter+time.Millisecond)) || !g.handled(at(d+rearmAfter+confirmWait)) {
		t.Error("a dismissal a second later did not re-arm")
	}
}

// fakeWakes is a runq source with wake-ups the test posts.
type fakeWakes struct {
	fakeRunq
	events chan ebpf.WakeEvent
	mu     sync.Mutex
	cfgs   []ebpf.WakeConfig
	marks  map[uint64]ebpf.WakeClass
}

func (f *fakeWakes) SetWakeClass(id uint64, c ebpf.WakeClass) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c == ebpf.WakeClassNone {
		delete(f.marks, id)
	} else {
		f.marks[id] = c
	}
	return nil
}

func (f *fakeWakes) SetWakes(c ebpf.WakeConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfgs = append(f.cfgs, c)
	return nil
}

func (f *fakeWakes) NextWake() (ebpf.WakeEvent, error) {
	ev, ok := <-f.events
	if !ok {
		return ebpf.WakeEvent{}, os.ErrClosed
	}
	return ev, nil
}

func (f *fakeWakes) configs() []ebpf.WakeConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cfgs)
}

// newFakeWakes returns wake-ups the test posts, for r's web (id 11) and
// batch-a (id 22) cgroups.
func newFakeWakes(t *testing.T, r *rig) *fakeWakes {
	w := &fakeWakes{
		fakeRunq: fakeRunq{ids: map[string]uint64{"/online/web": 11, r.a.policy.OfflineParent + "/a": 22}, next: map[uint64]ebpf.CgroupStats{}},
		events:   make(chan ebpf.WakeEvent), marks: map[uint64]ebpf.WakeClass{},
	}
	t.Cleanup(func() { close(w.events) })
	return w
}

// runLoop runs r's loop on the wall clock, with src as its run-queue
// source and web's and batch-a's counters standing still, until the test
// ends.
func runLoop(t *testing.T, r *rig, src RunqSource) {
	r.a.runq = newRunqTracker(src)
	r.a.now = time.Now
	r.cg.add("/online/web", 0, 0)
	r.cg.add(r.a.policy.OfflineParent+"/a", 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond until it holds; it fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A wake-up from the programs makes the loop decide at once (after the
// confirm wait, not at its next tick), disarms the programs until the
// decision is in, and workloads are marked with their classes.
func TestWakeUpsDriveTheLoop(t *testing.T) {
	r := newRig(t)
	w := newFakeWakes(t, r)
	r.a.policy.CPU.OnlineRunqLatencyP99 = 2 * time.Millisecond
	// Ticks far apart: any iteration in this test is the wake-up's.
	r.a.policy.Sampling.HostInterval = time.Hour
	r.a.policy.Sampling.ContainerInterval = time.Hour
	runLoop(t, r, w)
	waitFor(t, "the programs armed", func() bool { return len(w.configs()) == 1 })
	if got, want := w.configs()[0], (ebpf.WakeConfig{RunqThreshold: 2 * time.Millisecond, MinGap: wakeMinGap}); got != want {
		t.Errorf("armed with %+v, want %+v", got, want)
	}
	w.mu.Lock()
	marks := maps.Clone(w.marks)
	w.mu.Unlock()
	if want := map[uint64]ebpf.WakeClass{11: ebpf.WakeClassOnline, 22: ebpf.WakeClassOffline}; !maps.Equal(marks, want) {
		t.Errorf("cgroups marked %v, want %v", marks, want)
	}
	w.events <- ebpf.WakeEvent{CgroupID: 11, Kind: ebpf.WakePreempt}
	woke := func() float64 {
		return testutil.ToFloat64(r.a.metrics.wakeups.WithLabelValues("ebpf-online-preempts-offline"))
	}
	waitFor(t, "an iteration caused by the wake-up", func() bool { return woke() == 1 })
	if cfgs := w.configs(); len(cfgs) < 2 || cfgs[1] != (ebpf.WakeConfig{}) {
		t.Errorf("wake-up configs %+v: want the programs disarmed after the event", cfgs)
	}
	// Online use did not move (the fake's counters stand still): the
	// wake-up is dismissed and the programs are armed again at once.
	waitFor(t, "the programs re-armed after the dismissal", func() bool { return len(w.configs()) == 3 })
	if got := testutil.ToFloat64(r.a.metrics.wakesDismissed); got != 1 {
		t.Errorf("dismissed wake-ups %v, want 1", got)
	}
	if got, want := w.configs()[2], (ebpf.WakeConfig{RunqThreshold: 2 * time.Millisecond, MinGap: wakeMinGap}); got != want {
		t.Errorf("re-armed with %+v, want %+v", got, want)
	}
}

// A wake-up decides only when online use over its window jumped by a
// fifth of the host over the last decided tick: a steady service taking a
// CPU is dismissed, a burst is not; ticks are never dismissed.
func TestDismissWake(t *testing.T) {
	r := newRig(t) // 8000m host
	a := r.a
	acct := func(online int64) *qos.CPUAccounting { return &qos.CPUAccounting{OnlineMilli: online} }
	if a.dismissWake("host", acct(500), 8000) {
		t.Fatal("a tick was dismissed")
	}
	if !a.dismissWake("ebpf-online-woken", acct(1500), 8000) {
		t.Error("a 1000m rise (12.5% of the host) decided")
	}
	if a.dismissWake("ebpf-online-preempts-offline", acct(2100), 8000) {
		t.Error("a 1600m rise (20% of the host) was dismissed")
	}
	if !a.dismissWake("ebpf-online-runq-delay", acct(2200), 8000) {
		t.Error("the bar did not move to the decided wake-up's online use")
	}
	if a.dismissWake("ebpf-online-woken", nil, 8000) {
		t.Error("dismissed without a measurement")
	}
	if got := testutil.ToFloat64(a.metrics.wakesDismissed); got != 2 {
		t.Errorf("dismissed wake-ups counted %v, want 2", got)
	}
}

// passLog records, in the loop's own order, the programs' arming and each
// pass (at its host sample) with the wake-up passes counted so far.
type passLog struct {
	mu  sync.Mutex
	seq []string
}

func (l *passLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq = append(l.seq, s)
}

func (l *passLog) entries() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seq)
}

type loggedWakes struct {
	*fakeWakes
	log *passLog
}

func (w loggedWakes) SetWakes(c ebpf.WakeConfig) error {
	if c == (ebpf.WakeConfig{}) {
		w.log.add("disarm")
	}
	return w.fakeWakes.SetWakes(c)
}

type loggedHost struct {
	HostSampler
	log   *passLog
	woken func() float64
}

func (h loggedHost) Sample() (qos.HostSample, error) {
	h.log.add(fmt.Sprintf("pass wake-ups=%v", h.woken()))
	return h.HostSampler.Sample()
}

// While a wake-up's pass is pending (confirmWait), host ticks run no pass:
// one would read the counters within MinClassWindow of the wake-up's mark
// and decide on the window before the burst. With ticks every millisecond
// one would otherwise always come first.
func TestTicksWaitForTheWakeUpsPass(t *testing.T) {
	r := newRig(t)
	log := &passLog{}
	fw := newFakeWakes(t, r)
	woke := func() float64 {
		return testutil.ToFloat64(r.a.metrics.wakeups.WithLabelValues("ebpf-online-woken"))
	}
	r.a.cfg.Host = loggedHost{HostSampler: r.a.cfg.Host, log: log, woken: woke}
	r.a.policy.Sampling.HostInterval = time.Millisecond
	r.a.policy.Sampling.ContainerInterval = time.Hour
	runLoop(t, r, loggedWakes{fakeWakes: fw, log: log})
	waitFor(t, "the programs armed and a host pass", func() bool { return len(fw.configs()) >= 1 && len(log.entries()) >= 2 })
	fw.events <- ebpf.WakeEvent{CgroupID: 11, Kind: ebpf.WakeWoken}
	waitFor(t, "the wake-up's pass", func() bool { return woke() == 1 })
	seq := log.entries()
	i := slices.Index(seq, "disarm")
	if i < 0 || i+1 >= len(seq) {
		t.Fatalf("passes %q: want the programs disarmed, then a pass", seq)
	}
	if got, want := seq[i+1], "pass wake-ups=1"; got != want {
		t.Errorf("first pass after the wake-up: %q, want the wake-up's (%q); passes %q", got, want, seq[max(i-2, 0):])
	}
}
