package place

import (
	"math/rand/v2"
	"sort"
)

// victimCost orders preemption plans: fewest victims first, then the
// lowest highest-priority victim, then the lowest priority sum. Borrowed
// victims count as lower than any priority.
type victimCost struct {
	n       int
	maxPrio int
	sumPrio int
}

func (a victimCost) less(b victimCost) bool {
	if a.n != b.n {
		return a.n < b.n
	}
	if a.maxPrio != b.maxPrio {
		return a.maxPrio < b.maxPrio
	}
	return a.sumPrio < b.sumPrio
}

const borrowedPrio = -1 << 40

// preempt looks for the host where evicting the fewest, lowest-priority
// placements lets the request fit. Eligible victims have a lower priority
// than the request, or run on borrowed quota while the request does not.
// Every host is examined (preemption is rare and must be right, so no
// sampling); the cluster is restored after each trial.
func (c *Cluster) preempt(pc placed, strat Strategy, rng *rand.Rand, dec Decision, commit bool) (Decision, error) {
	st := &c.st
	type plan struct {
		host    int
		victims []string
		cost    victimCost
		e       eval
	}
	var best *plan
	var sc scratch
	for hi := range st.hosts {
		elig := st.eligibleVictims(hi, &pc)
		if len(elig) == 0 {
			continue
		}
		// Evict in order until the request fits.
		var removed []placed
		fits := false
		for _, slot := range elig {
			removed = append(removed, st.unbind(slot))
			if ok, _, _ := st.feasible(hi, &pc, false); ok {
				fits = true
				break
			}
		}
		if !fits {
			st.rebindAll(removed)
			continue
		}
		// Then spare every victim the request can live next to, trying
		// the most valuable (last in eviction order) first.
		var victims []placed
		for i := len(removed) - 1; i >= 0; i-- {
			slot := st.bind(removed[i])
			if ok, _, _ := st.feasible(hi, &pc, false); ok {
				continue // stays: not a victim
			}
			victims = append(victims, st.unbind(slot))
		}
		cost := victimCost{n: len(victims), maxPrio: borrowedPrio}
		for _, v := range victims {
			p := v.p.Priority
			if v.p.Borrowed && !pc.p.Borrowed {
				p = borrowedPrio
			}
			cost.maxPrio = max(cost.maxPrio, p)
			cost.sumPrio += p
		}
		e := st.evaluate(hi, &pc, strat, rng, &sc)
		if best == nil || cost.less(best.cost) || (!best.cost.less(cost) && st.compare(e, best.e) > 0) {
			ids := make([]string, 0, len(victims))
			for _, v := range victims {
				ids = append(ids, v.p.ID)
			}
			sort.Strings(ids)
			best = &plan{host: hi, victims: ids, cost: cost, e: e}
		}
		st.rebindAll(victims)
	}
	if best == nil {
		dec.Rejections = append(dec.Rejections, ReasonCount{Reason: reasonPreempted, Hosts: len(st.hosts)})
		return dec, nil
	}
	// Apply the plan (and undo it again for Try): evict, place.
	var evicted []placed
	for _, id := range best.victims {
		evicted = append(evicted, st.unbind(st.byID[id]))
	}
	for _, v := range evicted {
		dec.Victims = append(dec.Victims, v.p)
	}
	e := st.evaluate(best.host, &pc, strat, rng, &sc)
	dec.Placed = true
	dec.Placement = st.finish(&pc, best.host, e)
	dec.Score = st.scoreOf(strat, e)
	if commit {
		st.bind(pc)
	} else {
		st.rebindAll(evicted)
	}
	return dec, nil
}

// eligibleVictims lists host hi's placements the request may evict, in
// eviction order: borrowed first, then lowest priority, then the largest
// GPU share, then ID.
func (st *state) eligibleVictims(hi int, pc *placed) []int32 {
	var out []int32
	for _, slot := range st.hosts[hi].pods {
		v := &st.pl[slot].p
		if v.Priority < pc.p.Priority || (v.Borrowed && !pc.p.Borrowed) {
			out = append(out, slot)
		}
	}
	prio := func(s int32) int {
		v := &st.pl[s].p
		if v.Borrowed && !pc.p.Borrowed {
			return borrowedPrio
		}
		return v.Priority
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &st.pl[out[i]].p, &st.pl[out[j]].p
		if pa, pb := prio(out[i]), prio(out[j]); pa != pb {
			return pa < pb
		}
		if ga, gb := a.GPU.Milli(), b.GPU.Milli(); ga != gb {
			return ga > gb
		}
		return a.ID < b.ID
	})
	return out
}

func (st *state) rebindAll(ps []placed) {
	for _, p := range ps {
		st.bind(p)
	}
}
