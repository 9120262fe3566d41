package netqos

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	gbit = 1_000_000_000
	mbit = 1_000_000
)

func testPolicy() Policy {
	return Policy{
		Devices:            []string{"eth0"},
		GoldRateBitsPerSec: 200 * mbit, SilverRateBitsPerSec: 600 * mbit, HeadroomBitsPerSec: 100 * mbit,
	}
}

func TestValidate(t *testing.T) {
	if err := (Policy{}).Validate(); err != nil {
		t.Fatalf("zero policy: %v", err)
	}
	p := testPolicy()
	if err := p.Validate(); err != nil {
		t.Fatalf("good policy: %v", err)
	}
	p.Devices = []string{"eth0", "eth0", "a/b", DefaultRoute}
	p.SilverRateBitsPerSec = 0
	p.LinkRateBitsPerSec = 250 * mbit
	p.DSCP = map[Tier]uint8{Bronze: 64, Silver: 46}
	err := p.Validate()
	for _, want := range []string{`devices[1]: "eth0" listed twice`, "devices[2]", "silverRate: must be above zero", "leaves nothing of link rate 250Mbit", "dscp.bronze: 64"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestDesire(t *testing.T) {
	tr, err := Desire(testPolicy(), Link{Device: "eth0", RateBitsPerSec: gbit, LeafQdisc: "fq_codel"}, 5*gbit)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Root.Handle != 0x51000000 || tr.Root.DefaultClass != ClassID(Gold) {
		t.Errorf("root = %+v", tr.Root)
	}
	b, ok := tr.Class(ClassID(Bronze))
	if !ok || b.RateBitsPerSec != 100*mbit || b.CeilBitsPerSec != gbit || b.Prio != 2 || b.Parent != LinkClassID() {
		t.Errorf("bronze = %+v (ceil clamped to the link, rate = link - guarantees - headroom)", b)
	}
	s, _ := tr.Class(ClassID(Silver))
	if s.QuantumBytes != 75000 || s.BurstBytes != 600*mbit/8/1000+1600 {
		t.Errorf("silver quantum/burst = %d/%d", s.QuantumBytes, s.BurstBytes)
	}
	if len(tr.Leaves) != 3 || tr.Leaves[2].Parent != ClassID(Bronze) || tr.Leaves[2].Handle != 0x51030000 {
		t.Errorf("leaves = %+v", tr.Leaves)
	}
	if _, err := Desire(testPolicy(), Link{Device: "eth0"}, 0); err == nil || !strings.Contains(err.Error(), "no link rate") {
		t.Errorf("no link rate: %v", err)
	}
}

// tick feeds Decide one tick with per-tier rates (bits/s) over dt.
type sim struct {
	pol   Policy
	at    time.Time
	bytes [NumTiers]uint64
	st    State
	ceil  uint64 // what the "kernel" holds
}

func (s *sim) tick(dt time.Duration, rates [NumTiers]uint64) Plan {
	s.at = s.at.Add(dt)
	for i, r := range rates {
		s.bytes[i] += uint64(float64(r) / 8 * dt.Seconds())
	}
	in := Signals{At: s.at, Devices: []DeviceSignal{{Link: Link{Device: "eth0", RateBitsPerSec: gbit}, TxBytes: s.bytes, BronzeCeilBitsPerSec: s.ceil}}}
	p, st := Decide(in, s.pol, s.st)
	s.st = st
	s.ceil = p.Devices[0].Ceil.BitsPerSec
	return p
}

func TestDecideCutAtOnceRampBack(t *testing.T) {
	pol := testPolicy()
	pol.RampBitsPerSecPerSec = 100 * mbit
	s := &sim{pol: pol, at: time.Unix(1000, 0)}
	p := s.tick(time.Second, [3]uint64{})
	if c := p.Devices[0].Ceil; c.Reason.Kind != ReasonStart || c.BitsPerSec != 100*mbit {
		t.Fatalf("first tick = %v %s", c.BitsPerSec, c.Reason)
	}
	// Idle link: ramps by 100 Mbit per second up to link - headroom.
	for i, want := range []uint64{200 * mbit, 300 * mbit} {
		p = s.tick(time.Second, [3]uint64{})
		if c := p.Devices[0].Ceil; c.Reason.Kind != ReasonRamp || c.BitsPerSec != want {
			t.Fatalf("ramp %d = %v %s", i, c.BitsPerSec, c.Reason)
		}
	}
	for range 10 {
		p = s.tick(time.Second, [3]uint64{})
	}
	if c := p.Devices[0].Ceil; c.BitsPerSec != 900*mbit || c.Reason.Kind != ReasonHold {
		t.Fatalf("idle ceiling = %v %s, want 900Mbit held", c.BitsPerSec, c.Reason)
	}
	// Silver jumps to 500 Mbit, gold 50: cut at once to 1000-550-100.
	p = s.tick(time.Second, [3]uint64{50 * mbit, 500 * mbit, 300 * mbit})
	c := p.Devices[0].Ceil
	if c.Reason.Kind != ReasonCut || c.BitsPerSec != 350*mbit {
		t.Fatalf("cut = %v %s", c.BitsPerSec, c.Reason)
	}
	want := "eth0 egress: bronze ceil cut 900Mbit -> 350Mbit: link 1Gbit - gold 50Mbit - silver 500Mbit - headroom 100Mbit = 350Mbit (floor 100Mbit)"
	if c.Reason.String() != want {
		t.Errorf("reason\n got %s\nwant %s", c.Reason, want)
	}
	if b, _ := p.Devices[0].Tree.Class(ClassID(Bronze)); b.CeilBitsPerSec != 350*mbit {
		t.Errorf("tree bronze ceil = %d", b.CeilBitsPerSec)
	}
	// Silver floods beyond its guarantee: never below the floor.
	p = s.tick(time.Second, [3]uint64{100 * mbit, 900 * mbit, 0})
	if c := p.Devices[0].Ceil; c.BitsPerSec != 100*mbit {
		t.Errorf("floor = %v %s", c.BitsPerSec, c.Reason)
	}
}

func TestDecideAdoptsKernelCeiling(t *testing.T) {
	s := &sim{pol: testPolicy(), at: time.Unix(1000, 0), ceil: 640 * mbit}
	p := s.tick(time.Second, [3]uint64{})
	if c := p.Devices[0].Ceil; c.Reason.Kind != ReasonAdopt || c.BitsPerSec != 640*mbit {
		t.Fatalf("restart = %v %s, want the kernel's 640Mbit adopted", c.BitsPerSec, c.Reason)
	}
	// Counters going backwards (class re-created) hold, not spike.
	s.bytes = [3]uint64{}
	s.st.devices["eth0"] = dirState{at: s.at, bytes: [3]uint64{1 << 40, 0, 0}, ceil: 640 * mbit}
	if c := s.tick(time.Second, [3]uint64{}).Devices[0].Ceil; c.BitsPerSec != 640*mbit {
		t.Errorf("after counter reset = %v %s", c.BitsPerSec, c.Reason)
	}
}

func TestDecideNoLinkAndIngress(t *testing.T) {
	pol := testPolicy()
	pol.Devices = []string{"eth0", "eth1"}
	pol.Ingress = true
	at := time.Unix(50, 0)
	in := Signals{At: at, Devices: []DeviceSignal{{Link: Link{Device: "eth0", RateBitsPerSec: gbit}}, {Link: Link{Device: "eth1"}}}}
	p, st := Decide(in, pol, State{})
	if p.Devices[1].Shape() || p.Devices[1].Ceil.Reason.Kind != ReasonNoLink || !p.Devices[0].Shape() {
		t.Fatalf("plan = %+v", p.Devices)
	}
	if !strings.Contains(p.Devices[1].Ceil.Reason.String(), "eth1 egress: not shaped") {
		t.Errorf("reason = %s", p.Devices[1].Ceil.Reason)
	}
	in.At = at.Add(time.Second)
	in.RxBytes = [3]uint64{0, 700 * mbit / 8, 0}
	p, _ = Decide(in, pol, st)
	// Started at the floor (100 Mbit); no ramp set, so straight to the target.
	if p.Ingress == nil || p.Ingress.BitsPerSec != 200*mbit || p.Ingress.Reason.Kind != ReasonRamp {
		t.Fatalf("ingress = %+v", p.Ingress)
	}
	if p, _ := Decide(in, Policy{}, st); len(p.Devices) != 0 || p.Ingress != nil {
		t.Errorf("disabled policy planned %+v", p)
	}
}

func TestDiff(t *testing.T) {
	pol := testPolicy()
	link := Link{Device: "eth0", RateBitsPerSec: gbit, LeafQdisc: "fq_codel"}
	want, _ := Desire(pol, link, 500*mbit)
	// From the kernel default: root, four classes, three leaves.
	ch, err := Diff(want, Observed{Root: &Qdisc{Kind: "noqueue", Parent: RootParent}}, false)
	if err != nil || len(ch) != 8 || ch[0].Op != OpReplaceRoot || ch[1].Class.ID != LinkClassID() {
		t.Fatalf("fresh diff = %v, %v", ch, err)
	}
	have := Observed{Root: &want.Root, Classes: append([]Class(nil), want.Classes...), Leaves: want.Leaves}
	if ch, err := Diff(want, have, false); err != nil || len(ch) != 0 {
		t.Fatalf("same tree diff = %v, %v; want nothing", ch, err)
	}
	// Burst read back through ticks differs a little: still the same.
	have.Classes[3].BurstBytes += 5
	if ch, _ := Diff(want, have, false); len(ch) != 0 {
		t.Errorf("tick rounding caused %v", ch)
	}
	next, _ := Desire(pol, link, 300*mbit)
	ch, _ = Diff(next, have, false)
	if len(ch) != 1 || ch[0].Op != OpChangeClass || ch[0].Class.ID != ClassID(Bronze) || ch[0].Class.CeilBitsPerSec != 300*mbit {
		t.Errorf("ceil change diff = %v", ch)
	}
	// A stale class of ours and a missing leaf.
	have.Classes = append(have.Classes, Class{ID: MakeHandle(RootMajor, 0x40), Parent: LinkClassID()})
	have.Leaves = have.Leaves[:2]
	ch, _ = Diff(want, have, false)
	if len(ch) != 2 || ch[0].Op != OpDeleteClass || ch[1].Op != OpReplaceLeaf || ch[1].Qdisc.Parent != ClassID(Bronze) {
		t.Errorf("stale/missing diff = %v", ch)
	}
	// Foreign root: refused unless allowed.
	foreign := Observed{Root: &Qdisc{Handle: 0x10000, Parent: RootParent, Kind: "tbf"}}
	if _, err := Diff(want, foreign, false); !errors.Is(err, ErrForeignRoot) {
		t.Errorf("foreign root err = %v", err)
	}
	if ch, err := Diff(want, foreign, true); err != nil || ch[0].Op != OpReplaceRoot {
		t.Errorf("foreign root replace = %v %v", ch, err)
	}
	// Shaping off: our tree goes, a foreign one stays.
	if ch, _ := Diff(Tree{}, have, false); len(ch) != 1 || ch[0].Op != OpDeleteRoot {
		t.Errorf("off diff = %v", ch)
	}
	if ch, _ := Diff(Tree{}, foreign, false); len(ch) != 0 {
		t.Errorf("off diff on foreign = %v", ch)
	}
}

func TestTierJSON(t *testing.T) {
	b, err := json.Marshal(map[Tier]uint8{Bronze: 8, Silver: 26})
	if err != nil || string(b) != `{"bronze":8,"silver":26}` {
		t.Fatalf("json = %s, %v", b, err)
	}
	var back map[Tier]uint8
	if err := json.Unmarshal(b, &back); err != nil || back[Bronze] != 8 || back[Silver] != 26 {
		t.Errorf("round trip = %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"platinum":1}`), &back); err == nil {
		t.Error("unknown tier accepted")
	}
}
