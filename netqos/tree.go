package netqos

import "fmt"

// Tree is the tc tree Sluice wants on one device: a root HTB qdisc, a
// class holding the link rate, one class per tier under it, and a leaf
// qdisc per tier where the kernel has a better one than HTB's default.
type Tree struct {
	Root    Qdisc
	Classes []Class // parents before children
	Leaves  []Qdisc // one per tier, or none
}

// Qdisc is one queueing discipline of the tree.
type Qdisc struct {
	Handle uint32
	Parent uint32 // 0xffffffff (TC_H_ROOT) for the root
	Kind   string // "htb", "fq_codel", "pfifo"...
	// DefaultClass is the HTB class of unclassified traffic (root only).
	DefaultClass uint32
}

// Class is one HTB class. Rates are in bits per second, bursts in bytes.
type Class struct {
	ID             uint32
	Parent         uint32
	RateBitsPerSec uint64
	CeilBitsPerSec uint64
	BurstBytes     uint32
	CburstBytes    uint32
	QuantumBytes   uint32
	Prio           uint32
}

// RootParent is TC_H_ROOT, the parent of a device's root qdisc.
const RootParent uint32 = 0xffffffff

// Link is what the enforcer knows of one device.
type Link struct {
	Device string
	// RateBitsPerSec is the rate to share out (policy value, else the
	// device's speed); 0 means unknown and the device is not shaped.
	RateBitsPerSec uint64
	// LeafQdisc is the leaf qdisc kind the kernel offers ("fq_codel"), or
	// "" to keep HTB's default FIFO.
	LeafQdisc string
}

// Shaping constants.
const (
	mtuBytes = 1600
	// burstTime is the burst allowance per class: 1 ms worth of its rate
	// (the tc default at HZ=1000) plus one MTU, so HTB does not
	// undershoot at multi-gigabit rates when the timer fires late.
	burstPerSecDivisor = 1000
	// minQuantum and maxQuantum bound the DRR quantum: HTB derives it from
	// rate/r2q otherwise and warns ("quantum is big") at high rates.
	minQuantum = mtuBytes
	maxQuantum = 200000
)

// Burst is the burst allowance of a class of rate bits, in bytes.
func Burst(bits uint64) uint32 {
	b := bits/8/burstPerSecDivisor + mtuBytes
	if b > 1<<30 {
		b = 1 << 30
	}
	return uint32(b)
}

// Quantum is the DRR quantum of a class of rate bits, set explicitly.
func Quantum(bits uint64) uint32 {
	return uint32(min(max(bits/8/1000, minQuantum), maxQuantum))
}

// BronzeFloor is bronze's guaranteed rate on a link: what the gold and
// silver guarantees and the headroom leave. Bronze's ceiling never goes
// below it.
func BronzeFloor(pol Policy, linkBits uint64) uint64 {
	g, over := pol.Guaranteed()
	if over || g >= linkBits {
		return 0
	}
	return linkBits - g
}

// Desire builds the tree for link with bronze's ceiling at bronzeCeil
// (clamped to [BronzeFloor, link]).
func Desire(pol Policy, link Link, bronzeCeilBits uint64) (Tree, error) {
	if link.RateBitsPerSec == 0 {
		return Tree{}, fmt.Errorf("device %s: no link rate (the driver reports no speed and the policy sets no linkRate)", link.Device)
	}
	if err := pol.Fits(link.RateBitsPerSec); err != nil {
		return Tree{}, fmt.Errorf("device %s: %w", link.Device, err)
	}
	l := link.RateBitsPerSec
	floor := BronzeFloor(pol, l)
	bronzeCeil := min(max(bronzeCeilBits, floor), l)
	rates := [NumTiers]uint64{pol.GoldRateBitsPerSec, pol.SilverRateBitsPerSec, floor}
	ceils := [NumTiers]uint64{l, l, bronzeCeil}
	t := Tree{
		Root:    Qdisc{Handle: RootHandle(), Parent: RootParent, Kind: "htb", DefaultClass: ClassID(Gold)},
		Classes: []Class{newClass(LinkClassID(), RootHandle(), l, l, 0)},
	}
	for _, tier := range Tiers {
		t.Classes = append(t.Classes, newClass(ClassID(tier), LinkClassID(), rates[tier], ceils[tier], uint32(tier)))
	}
	if link.LeafQdisc != "" {
		for _, tier := range Tiers {
			t.Leaves = append(t.Leaves, Qdisc{Handle: MakeHandle(LeafMajor(tier), 0), Parent: ClassID(tier), Kind: link.LeafQdisc})
		}
	}
	return t, nil
}

func newClass(id, parent uint32, rate, ceil uint64, prio uint32) Class {
	return Class{
		ID: id, Parent: parent, RateBitsPerSec: rate, CeilBitsPerSec: ceil,
		BurstBytes: Burst(rate), CburstBytes: Burst(ceil), QuantumBytes: Quantum(rate), Prio: prio,
	}
}

// Class returns the tree's class id, if present.
func (t Tree) Class(id uint32) (Class, bool) {
	for _, c := range t.Classes {
		if c.ID == id {
			return c, true
		}
	}
	return Class{}, false
}
