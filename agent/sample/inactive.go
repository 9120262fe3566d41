package sample

import "sync"

// InactiveMaxPasses is how many sampling passes an inactive file count may
// be reused for by CgroupReader.UsageLazy: with the agent's 1 s container
// tick, memory.stat is read at least every 10 s per cgroup.
const InactiveMaxPasses = 10

// inactiveCache holds each cgroup's inactive file count from its last
// memory.stat read, with the charged usage at that read and its age in
// passes. Safe for concurrent use.
type inactiveCache struct {
	mu sync.Mutex
	m  map[string]*inactiveAt
}

type inactiveAt struct {
	bytes, chargedAt uint64
	// limit is the hard limit read with the count (0: none).
	limit uint64
	// age is in passes; seen tells whether the cgroup was read in the
	// current pass (an entry not read in a whole pass is dropped).
	age  int
	seen bool
}

// reuse returns the count to subtract from charged, the hard limit read
// with it, and its age in passes, if they may stand in for reading
// memory.stat and the limit now.
//
// Why these bounds: the working set is charged minus inactive file pages.
// Pages enter and leave the inactive list mostly by being charged
// (reads, writes) and uncharged (reclaim, truncation), which moves the
// charge; a count read when the charge was within a 32nd (and 1 MiB) of
// where it is now is off by about as much. What moves the count without
// the charge is LRU aging (inactive pages referenced again become active:
// the working set grows), which the age bound covers, and reclaim at a
// limit, which swaps inactive file pages for new ones at a constant
// charge: near its own limit a cgroup is always read afresh.
//
// The limit is reused on the same terms: it changes only when someone
// sets it, and a limit set below the charge reclaims at once (the charge
// moves); one set elsewhere binds nothing yet and is read within the age
// bound.
func (c *inactiveCache) reuse(cgroupPath string, charged uint64) (bytes, limit uint64, age int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[cgroupPath]
	if e == nil {
		return 0, 0, 0, false
	}
	e.seen = true
	if e.age >= InactiveMaxPasses {
		return 0, 0, 0, false
	}
	if e.limit > 0 && charged >= e.limit-e.limit/8 {
		return 0, 0, 0, false
	}
	band := max(e.chargedAt/32, 1<<20)
	if charged > e.chargedAt+band || charged+band < e.chargedAt {
		return 0, 0, 0, false
	}
	return e.bytes, e.limit, e.age, true
}

// store records a count and a limit read now.
func (c *inactiveCache) store(cgroupPath string, bytes, charged, limit uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*inactiveAt{}
	}
	e := c.m[cgroupPath]
	age := 0
	if e == nil {
		// A new cgroup starts part way through the age bound, by its
		// place among the others: cgroups first read together (all of
		// them, when the agent starts) are read again on different
		// passes, not all on every tenth.
		age = len(c.m) % InactiveMaxPasses
		e = &inactiveAt{}
		c.m[cgroupPath] = e
	}
	*e = inactiveAt{bytes: bytes, chargedAt: charged, limit: limit, age: age, seen: true}
}

// endPass ages every count by a pass and drops those of cgroups not read
// in the pass that ends.
func (c *inactiveCache) endPass() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, e := range c.m {
		if !e.seen {
			delete(c.m, p)
			continue
		}
		e.age++
		e.seen = false
	}
}
