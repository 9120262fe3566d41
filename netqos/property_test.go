package netqos

import (
	"math/rand/v2"
	"testing"
	"time"
)

// kernel applies changes to an observed tree the way the kernel would,
// rejecting what it would reject: a class under a missing parent, a leaf
// under a missing class, deleting a class that still has children.
func kernel(t *testing.T, o Observed, changes []Change) Observed {
	t.Helper()
	has := func(id uint32) bool {
		for _, c := range o.Classes {
			if c.ID == id {
				return true
			}
		}
		return o.Root != nil && o.Root.Handle == id
	}
	for _, ch := range changes {
		switch ch.Op {
		case OpReplaceRoot:
			q := ch.Qdisc
			o = Observed{Root: &q}
		case OpDeleteRoot:
			o = Observed{}
		case OpAddClass, OpChangeClass:
			if !has(ch.Class.Parent) {
				t.Fatalf("%s: parent %s missing", ch, FormatHandle(ch.Class.Parent))
			}
			kept := o.Classes[:0:0]
			for _, c := range o.Classes {
				if c.ID != ch.Class.ID {
					kept = append(kept, c)
				}
			}
			o.Classes = append(kept, ch.Class)
		case OpDeleteClass:
			var kept []Class
			for _, c := range o.Classes {
				if c.Parent == ch.Class.ID {
					t.Fatalf("%s: class has child %s", ch, FormatHandle(c.ID))
				}
				if c.ID != ch.Class.ID {
					kept = append(kept, c)
				}
			}
			o.Classes = kept
			var leaves []Qdisc
			for _, q := range o.Leaves {
				if q.Parent != ch.Class.ID {
					leaves = append(leaves, q)
				}
			}
			o.Leaves = leaves
		case OpReplaceLeaf, OpDeleteLeaf:
			if !has(ch.Qdisc.Parent) {
				t.Fatalf("%s: parent class missing", ch)
			}
			var leaves []Qdisc
			for _, q := range o.Leaves {
				if q.Parent != ch.Qdisc.Parent {
					leaves = append(leaves, q)
				}
			}
			if ch.Op == OpReplaceLeaf {
				leaves = append(leaves, ch.Qdisc)
			}
			o.Leaves = leaves
		}
	}
	return o
}

// TestDiffConverges: from random trees (ours with random rates, stale and
// nested stale classes, missing leaves; or the kernel default), applying
// Diff's changes in order is accepted by the kernel model and leaves
// nothing more to change.
func TestDiffConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	pol := testPolicy()
	for i := range 500 {
		link := Link{Device: "eth0", RateBitsPerSec: uint64(rng.IntN(9)+1) * gbit}
		if rng.IntN(2) == 0 {
			link.LeafQdisc = "fq_codel"
		}
		want, err := Desire(pol, link, uint64(rng.Int64N(int64(link.RateBitsPerSec))))
		if err != nil {
			t.Fatal(err)
		}
		var have Observed
		if rng.IntN(4) > 0 {
			other := Link{Device: "eth0", RateBitsPerSec: uint64(rng.IntN(9)+1) * gbit, LeafQdisc: []string{"", "fq_codel", "pfifo"}[rng.IntN(3)]}
			old, _ := Desire(pol, other, uint64(rng.Int64N(gbit)))
			have = Observed{Root: &old.Root, Classes: old.Classes, Leaves: old.Leaves}
			if rng.IntN(3) == 0 {
				p := MakeHandle(RootMajor, 0x40)
				have.Classes = append(have.Classes, Class{ID: p, Parent: LinkClassID()}, Class{ID: MakeHandle(RootMajor, 0x41), Parent: p})
			}
			if rng.IntN(3) == 0 && len(have.Classes) > 2 {
				have.Classes = have.Classes[:len(have.Classes)-1]
				have.Leaves = nil
			}
		}
		got := kernel(t, have, mustDiff(t, want, have))
		if rest := mustDiff(t, want, got); len(rest) != 0 {
			t.Fatalf("case %d: after applying the diff, still %v", i, rest)
		}
	}
}

func mustDiff(t *testing.T, want Tree, have Observed) []Change {
	t.Helper()
	ch, err := Diff(want, have, false)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestDecideBounds: whatever the traffic, bronze's ceiling stays within
// [floor, link], never grows faster than the ramp, and falls to the target
// at once.
func TestDecideBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	pol := testPolicy()
	pol.RampBitsPerSecPerSec = 50 * mbit
	s := &sim{pol: pol, at: time.Unix(0, 0)}
	floor := BronzeFloor(pol, gbit)
	prev := uint64(0)
	for i := range 2000 {
		dt := time.Duration(rng.IntN(2000)+1) * time.Millisecond
		rates := [3]uint64{uint64(rng.Int64N(300 * mbit)), uint64(rng.Int64N(1200 * mbit)), uint64(rng.Int64N(gbit))}
		c := s.tick(dt, rates).Devices[0].Ceil
		if c.BitsPerSec < floor || c.BitsPerSec > gbit {
			t.Fatalf("tick %d: ceil %d outside [%d, %d]", i, c.BitsPerSec, floor, gbit)
		}
		if prev > 0 && c.BitsPerSec > prev && c.BitsPerSec-prev > uint64(float64(pol.RampBitsPerSecPerSec)*dt.Seconds())+1 {
			t.Fatalf("tick %d: grew %d -> %d in %s, faster than the ramp", i, prev, c.BitsPerSec, dt)
		}
		if c.Reason.Kind == ReasonCut && c.BitsPerSec != c.Reason.TargetBits {
			t.Fatalf("tick %d: cut to %d, target %d", i, c.BitsPerSec, c.Reason.TargetBits)
		}
		prev = c.BitsPerSec
	}
}
