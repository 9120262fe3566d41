package netqos

import (
	"errors"
	"fmt"
	"sort"
)

// Observed is what the kernel reports for one device, reduced to what the
// diff needs: the root qdisc, and the classes and qdiscs in Sluice's handle
// range. Everything else is invisible to the diff, so it is never touched.
type Observed struct {
	// Root is the device's root qdisc; nil when the device has none (or
	// only the kernel's built-in default, handle 0).
	Root *Qdisc
	// Classes and Leaves are the HTB classes and non-root qdiscs whose
	// handles lie in Sluice's range.
	Classes []Class
	Leaves  []Qdisc
}

// RootForeign reports whether the root qdisc belongs to someone else: set
// by an administrator or another agent (a non-zero handle outside Sluice's
// range). The kernel's default root (handle 0) is not foreign.
func (o Observed) RootForeign() bool {
	return o.Root != nil && o.Root.Handle != 0 && !Owned(o.Root.Handle)
}

// Op is one kind of tc change.
type Op uint8

const (
	// OpReplaceRoot installs the root HTB qdisc (replacing the kernel's
	// default, or a foreign root when the policy allows).
	OpReplaceRoot Op = iota
	// OpAddClass adds a class.
	OpAddClass
	// OpChangeClass changes a class's rates, bursts, quantum or priority.
	OpChangeClass
	// OpReplaceLeaf installs or replaces a tier's leaf qdisc.
	OpReplaceLeaf
	// OpDeleteLeaf removes a leaf qdisc Sluice owns but no longer wants.
	OpDeleteLeaf
	// OpDeleteClass removes a class Sluice owns but no longer wants.
	OpDeleteClass
	// OpDeleteRoot removes Sluice's root qdisc (and with it its tree).
	OpDeleteRoot
)

func (o Op) String() string {
	switch o {
	case OpReplaceRoot:
		return "replace-root"
	case OpAddClass:
		return "add-class"
	case OpChangeClass:
		return "change-class"
	case OpReplaceLeaf:
		return "replace-leaf"
	case OpDeleteLeaf:
		return "delete-leaf"
	case OpDeleteClass:
		return "delete-class"
	case OpDeleteRoot:
		return "delete-root"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one tc write. Qdisc is set for qdisc ops, Class for class ops.
type Change struct {
	Op    Op
	Qdisc Qdisc
	Class Class
}

func (c Change) String() string {
	switch c.Op {
	case OpAddClass, OpChangeClass, OpDeleteClass:
		return fmt.Sprintf("%s %s rate %s ceil %s", c.Op, FormatHandle(c.Class.ID), FormatRate(c.Class.RateBitsPerSec), FormatRate(c.Class.CeilBitsPerSec))
	}
	return fmt.Sprintf("%s %s %s parent %s", c.Op, c.Qdisc.Kind, FormatHandle(c.Qdisc.Handle), FormatHandle(c.Qdisc.Parent))
}

// FormatHandle writes a tc handle the way tc does ("5100:10").
func FormatHandle(h uint32) string {
	switch h {
	case RootParent:
		return "root"
	case 0:
		return "none"
	}
	if h&0xffff == 0 {
		return fmt.Sprintf("%x:", h>>16)
	}
	return fmt.Sprintf("%x:%x", h>>16, h&0xffff)
}

// ErrForeignRoot is returned when a device's root qdisc is not Sluice's
// and the policy does not allow replacing it.
var ErrForeignRoot = errors.New("root qdisc is not Sluice's")

// Diff lists the writes that turn have into want, in an order the kernel
// accepts (parents before children when adding, children before parents
// when deleting). It lists nothing when the device already matches. An
// empty want removes Sluice's tree, if any. A foreign root is left alone
// (ErrForeignRoot) unless replaceForeign.
func Diff(want Tree, have Observed, replaceForeign bool) ([]Change, error) {
	ours := have.Root != nil && Owned(have.Root.Handle)
	if len(want.Classes) == 0 {
		if ours {
			return []Change{{Op: OpDeleteRoot, Qdisc: *have.Root}}, nil
		}
		return nil, nil
	}
	if have.RootForeign() && !replaceForeign {
		return nil, fmt.Errorf("%w: %s %s (set replaceForeignRoot to let Sluice replace it)",
			ErrForeignRoot, have.Root.Kind, FormatHandle(have.Root.Handle))
	}
	if !ours || have.Root.Handle != want.Root.Handle || have.Root.Kind != want.Root.Kind || have.Root.DefaultClass != want.Root.DefaultClass {
		// A new root starts an empty tree: every class and leaf is added.
		out := []Change{{Op: OpReplaceRoot, Qdisc: want.Root}}
		for _, c := range want.Classes {
			out = append(out, Change{Op: OpAddClass, Class: c})
		}
		for _, q := range want.Leaves {
			out = append(out, Change{Op: OpReplaceLeaf, Qdisc: q})
		}
		return out, nil
	}
	var out []Change
	haveClass := make(map[uint32]Class, len(have.Classes))
	for _, c := range have.Classes {
		haveClass[c.ID] = c
	}
	wantClass := make(map[uint32]bool, len(want.Classes))
	for _, c := range want.Classes {
		wantClass[c.ID] = true
		h, ok := haveClass[c.ID]
		switch {
		case !ok:
			out = append(out, Change{Op: OpAddClass, Class: c})
		case h.Parent != c.Parent:
			// A class cannot move; the kernel refuses a parent change.
			out = append(out, Change{Op: OpDeleteClass, Class: h}, Change{Op: OpAddClass, Class: c})
		case !SameClass(h, c):
			out = append(out, Change{Op: OpChangeClass, Class: c})
		}
	}
	haveLeaf := make(map[uint32]Qdisc, len(have.Leaves))
	for _, q := range have.Leaves {
		haveLeaf[q.Parent] = q
	}
	wantLeaf := make(map[uint32]bool, len(want.Leaves))
	for _, q := range want.Leaves {
		wantLeaf[q.Parent] = true
		if h, ok := haveLeaf[q.Parent]; !ok || h.Handle != q.Handle || h.Kind != q.Kind {
			out = append(out, Change{Op: OpReplaceLeaf, Qdisc: q})
		}
	}
	var dels []Change
	for _, q := range have.Leaves {
		if !wantLeaf[q.Parent] {
			dels = append(dels, Change{Op: OpDeleteLeaf, Qdisc: q})
		}
	}
	var stale []Class
	for _, c := range have.Classes {
		if !wantClass[c.ID] {
			stale = append(stale, c)
		}
	}
	// Children before parents: a class whose parent is also stale goes first.
	sort.SliceStable(stale, func(i, j int) bool { return depth(stale[i], haveClass) > depth(stale[j], haveClass) })
	for _, c := range stale {
		dels = append(dels, Change{Op: OpDeleteClass, Class: c})
	}
	return append(dels, out...), nil
}

func depth(c Class, classes map[uint32]Class) int {
	d := 0
	for seen := 0; seen < len(classes); seen++ {
		p, ok := classes[c.Parent]
		if !ok {
			break
		}
		c, d = p, d+1
	}
	return d
}

// SameClass compares a class the kernel reports with a wanted one. Rates
// are compared in bytes per second (the kernel's unit); bursts come back
// as scheduler ticks, so they match within a rounding tolerance.
func SameClass(have, want Class) bool {
	return have.RateBitsPerSec/8 == want.RateBitsPerSec/8 &&
		have.CeilBitsPerSec/8 == want.CeilBitsPerSec/8 &&
		have.Prio == want.Prio &&
		have.QuantumBytes == want.QuantumBytes &&
		near(have.BurstBytes, want.BurstBytes) && near(have.CburstBytes, want.CburstBytes)
}

// near accepts 1% + 64 bytes of tick rounding.
func near(a, b uint32) bool {
	d := int64(a) - int64(b)
	if d < 0 {
		d = -d
	}
	return d <= int64(b)/100+64
}
