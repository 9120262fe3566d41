package netqos

import "fmt"

// Tier is a network class. The order is the HTB priority order: gold's
// spare bandwidth is offered first, bronze's last.
type Tier uint8

const (
	// Gold is system and control traffic, and everything unclassified.
	Gold Tier = iota
	// Silver is online (latency-sensitive) traffic.
	Silver
	// Bronze is offline (batch) traffic; its ceiling follows what gold and
	// silver leave.
	Bronze
	// NumTiers is the number of tiers.
	NumTiers = 3
)

// Tiers lists the tiers in priority order.
var Tiers = [NumTiers]Tier{Gold, Silver, Bronze}

func (t Tier) String() string {
	switch t {
	case Gold:
		return "gold"
	case Silver:
		return "silver"
	case Bronze:
		return "bronze"
	}
	return fmt.Sprintf("tier(%d)", uint8(t))
}

// ParseTier reads a tier name.
func ParseTier(s string) (Tier, error) {
	for _, t := range Tiers {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tier %q (want gold, silver or bronze)", s)
}

// Handles. Sluice owns the tc handle majors [HandleMajorFirst,
// HandleMajorLast] on the devices it shapes: the root HTB qdisc is
// RootMajor:, its classes RootMajor:1 (the link) and RootMajor:10/20/30
// (gold/silver/bronze), and each tier's leaf qdisc has its own major
// (LeafMajor(t)). Qdiscs and classes with other majors are never touched.
const (
	HandleMajorFirst uint16 = 0x5100
	HandleMajorLast  uint16 = 0x51ff
	RootMajor               = HandleMajorFirst
	linkMinor        uint16 = 0x1
)

// MakeHandle builds a tc handle from its major and minor halves.
func MakeHandle(major, minor uint16) uint32 { return uint32(major)<<16 | uint32(minor) }

// HandleMajor returns the major half of a tc handle.
func HandleMajor(h uint32) uint16 { return uint16(h >> 16) }

// Owned reports whether handle h lies in Sluice's range.
func Owned(h uint32) bool {
	m := HandleMajor(h)
	return m >= HandleMajorFirst && m <= HandleMajorLast
}

// RootHandle is the handle of Sluice's root HTB qdisc.
func RootHandle() uint32 { return MakeHandle(RootMajor, 0) }

// LinkClassID is the class under the root holding the whole link rate.
func LinkClassID() uint32 { return MakeHandle(RootMajor, linkMinor) }

// ClassID is the HTB class of tier t. It is also the socket priority the
// classifier stamps, so the HTB qdisc steers a packet by its priority
// without a filter (htb_classify checks skb->priority first).
func ClassID(t Tier) uint32 { return MakeHandle(RootMajor, uint16(t+1)*0x10) }

// LeafMajor is the handle major of tier t's leaf qdisc.
func LeafMajor(t Tier) uint16 { return RootMajor + 1 + uint16(t) }

// TierOfClass maps a class id back to its tier.
func TierOfClass(id uint32) (Tier, bool) {
	for _, t := range Tiers {
		if ClassID(t) == id {
			return t, true
		}
	}
	return 0, false
}

// MarshalText writes the tier's name, so JSON and YAML show "bronze", not 2.
func (t Tier) MarshalText() ([]byte, error) {
	if t >= NumTiers {
		return nil, fmt.Errorf("unknown %s", t)
	}
	return []byte(t.String()), nil
}

// UnmarshalText reads a tier name.
func (t *Tier) UnmarshalText(b []byte) error {
	v, err := ParseTier(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
