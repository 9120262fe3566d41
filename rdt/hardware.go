package rdt

import (
	"fmt"
	"math/bits"
	"slices"
)

// Resource names as resctrl spells them in info/ and in schemata lines.
const (
	ResourceL3     = "L3"
	ResourceL3Code = "L3CODE"
	ResourceL3Data = "L3DATA"
	ResourceL2     = "L2"
	ResourceMB     = "MB"
)

// Hardware is what resctrl's info/ directory and the default group's
// schemata say the host offers. resctrl.Probe fills it once at start; the
// pure code below only reads it.
type Hardware struct {
	// Caches lists the cache allocation resources present, in the order
	// info/ lists them: L3, or L3CODE and L3DATA when mounted with CDP, and
	// L2 (which Sluice probes but does not partition).
	Caches []CacheResource `json:"caches,omitempty"`
	// MB is memory bandwidth allocation; nil when absent.
	MB *MemBandwidth `json:"mb,omitempty"`
	// Monitoring lists the L3 monitoring events (info/L3_MON/mon_features),
	// e.g. llc_occupancy, mbm_total_bytes, mbm_local_bytes; empty when the
	// host cannot monitor.
	Monitoring []string `json:"monitoring,omitempty"`
	// NumRMIDs is info/L3_MON/num_rmids: how many groups can be monitored.
	NumRMIDs int `json:"numRMIDs"`
}

// CacheResource is one cache allocation resource (info/L3, info/L3CODE...).
type CacheResource struct {
	Name string `json:"name"`
	// CBMMask is info/<res>/cbm_mask: every way set.
	CBMMask uint64 `json:"cbmMask"`
	// MinCBMBits is the fewest ways a mask may have.
	MinCBMBits int `json:"minCBMBits"`
	// ShareableBits are ways other agents (I/O, GPUs) may use too.
	ShareableBits uint64 `json:"shareableBits"`
	// NumCLOSIDs counts the control groups this resource supports,
	// including the default group (already halved under CDP).
	NumCLOSIDs int `json:"numCLOSIDs"`
	// SparseMasks is info/<res>/sparse_masks (kernel 6.8+): when false,
	// or on older kernels without the file, masks must be contiguous.
	SparseMasks bool `json:"sparseMasks"`
	// Domains are the cache ids as the kernel lists them in the default
	// group's schemata; they need not be 0..n-1.
	Domains []int `json:"domains"`
}

// Ways is the number of ways in the cache (bits in cbm_mask).
func (c CacheResource) Ways() int { return bits.OnesCount64(c.CBMMask) }

// MBUnit says what an MB schemata value means.
type MBUnit string

const (
	// MBPercent is Intel MBA: a percentage of full bandwidth, 100 is unthrottled.
	MBPercent MBUnit = "percent"
	// MBAbsolute is AMD's bandwidth limit in 1/8 GB/s units (max typically
	// 2048), or MBps when resctrl is mounted with mba_MBps: values are not
	// percentages and MaxValue is what "unthrottled" means.
	MBAbsolute MBUnit = "absolute"
)

// MemBandwidth is info/MB.
type MemBandwidth struct {
	// Granularity is info/MB/bandwidth_gran: the kernel rounds values up
	// to a multiple of it.
	Granularity int `json:"granularity"`
	// Min is info/MB/min_bandwidth: the lowest value the kernel accepts.
	Min int `json:"min"`
	// MaxValue is the unthrottled value: 100 for percent, the default
	// group's value on absolute hosts (2048 on AMD Zen).
	MaxValue    int    `json:"maxValue"`
	DelayLinear bool   `json:"delayLinear"`
	Unit        MBUnit `json:"unit"`
	NumCLOSIDs  int    `json:"numCLOSIDs"`
	// Domains are the MB domain ids as listed in the default group's schemata.
	Domains []int `json:"domains"`
}

// L3 returns the L3 allocation resource: L3 itself, or L3DATA under CDP
// (both halves get the same masks, so either describes the cache).
func (hw Hardware) L3() (CacheResource, bool) {
	for _, name := range []string{ResourceL3, ResourceL3Data} {
		if i := slices.IndexFunc(hw.Caches, func(c CacheResource) bool { return c.Name == name }); i >= 0 {
			return hw.Caches[i], true
		}
	}
	return CacheResource{}, false
}

// CDP reports whether L3 code and data are allocated separately.
func (hw Hardware) CDP() bool {
	return slices.ContainsFunc(hw.Caches, func(c CacheResource) bool { return c.Name == ResourceL3Code })
}

// l3Names are the schemata resources a cache mask for L3 is written to.
func (hw Hardware) l3Names() []string {
	if hw.CDP() {
		return []string{ResourceL3Code, ResourceL3Data}
	}
	return []string{ResourceL3}
}

// NumCLOSIDs is the number of control groups the host supports, the
// default group included: the smallest count over the resources present.
func (hw Hardware) NumCLOSIDs() int {
	n := 0
	take := func(v int) {
		if v > 0 && (n == 0 || v < n) {
			n = v
		}
	}
	for _, c := range hw.Caches {
		take(c.NumCLOSIDs)
	}
	if hw.MB != nil {
		take(hw.MB.NumCLOSIDs)
	}
	return n
}

// Monitors reports whether the host has the named monitoring event.
func (hw Hardware) Monitors(event string) bool { return slices.Contains(hw.Monitoring, event) }

// RoundMB rounds an MB value the way the kernel's bw_validate does: up to a
// multiple of the granularity (percent hosts only; absolute values are
// taken as written). It does not clamp.
func (m MemBandwidth) RoundMB(v int) int {
	if m.Unit != MBPercent || m.Granularity <= 1 {
		return v
	}
	return (v + m.Granularity - 1) / m.Granularity * m.Granularity
}

// mbValue turns a share of full bandwidth (0..1) into the value to write:
// rounded to the nearest unit, clamped to [Min, MaxValue], then rounded to
// the granularity as the kernel would, and back down a step when that
// overshoots MaxValue.
func (m MemBandwidth) mbValue(share float64) int {
	v := int(share*float64(m.MaxValue) + 0.5)
	v = max(v, m.Min)
	v = min(v, m.MaxValue)
	if r := m.RoundMB(v); r <= m.MaxValue {
		return r
	}
	return v / m.Granularity * m.Granularity
}

// wayMask is a contiguous mask of n ways starting at bit lo.
func wayMask(lo, n int) uint64 {
	if n <= 0 {
		return 0
	}
	if n >= 64 {
		return ^uint64(0) << lo
	}
	return ((uint64(1) << n) - 1) << lo
}

// Contiguous reports whether mask's set bits form one run.
func Contiguous(mask uint64) bool {
	if mask == 0 {
		return true
	}
	m := mask >> bits.TrailingZeros64(mask)
	return m&(m+1) == 0
}

func (c CacheResource) String() string {
	return fmt.Sprintf("%s(mask %x, min %d bits, %d closids, domains %v)", c.Name, c.CBMMask, c.MinCBMBits, c.NumCLOSIDs, c.Domains)
}
