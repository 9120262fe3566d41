package place

import (
	"fmt"
)

const (
	reasonSelector  Reason = "selector"
	reasonGPUModel  Reason = "gpu model"
	reasonGPUCount  Reason = "insufficient whole gpus"
	reasonGPUShare  Reason = "no gpu with enough free share"
	reasonNoGPU     Reason = "no gpus"
	reasonPreempted Reason = "no preemption frees enough"
)

// feasible runs every filter on host hi, cheapest first. detail asks for
// the numbers behind a rejection (only when explaining).
func (st *state) feasible(hi int, pc *placed, detail bool) (bool, Reason, string) {
	h := &st.hosts[hi]
	if len(pc.p.Selector) > 0 {
		if ok, r, d := st.selectorOK(h, pc, detail); !ok {
			return false, r, d
		}
	}
	if ok, r, d := st.fitsResources(h, pc, detail); !ok {
		return false, r, d
	}
	if app := pc.p.App; app != "" {
		if ok, r, d := st.rulesOK(hi, pc, detail); !ok {
			return false, r, d
		}
		for _, si := range pc.spreads {
			if ok, r, d := st.spreadOK(hi, si, detail); !ok {
				return false, r, d
			}
		}
	}
	return true, "", ""
}

func (st *state) selectorOK(h *hostState, pc *placed, detail bool) (bool, Reason, string) {
	// the first mismatch named must not depend on map order
	var buf [8]string
	for _, k := range appendSortedKeys(buf[:0], pc.p.Selector) {
		want := pc.p.Selector[k]
		if got, ok := h.labels[k]; !ok || got != want {
			d := ""
			if detail {
				if !ok {
					d = fmt.Sprintf("label %s missing, want %q", k, want)
				} else {
					d = fmt.Sprintf("label %s is %q, want %q", k, got, want)
				}
			}
			return false, reasonSelector + " " + Reason(k), d
		}
	}
	return true, "", ""
}

// fitsResources checks every dimension (and every curve point) and GPUs.
func (st *state) fitsResources(h *hostState, pc *placed, detail bool) (bool, Reason, string) {
	if pc.needsGPU() {
		if len(h.gpu) == 0 {
			return false, reasonNoGPU, ""
		}
		if !pc.modelOK(st, h) {
			d := ""
			if detail {
				d = fmt.Sprintf("host has %s, request allows %v", st.models[h.model], pc.p.GPU.Models)
			}
			return false, reasonGPUModel, d
		}
	}
	ci := 0
	for d, v := range pc.demand {
		var pts []int64
		if ci < len(pc.curves) && pc.curves[ci].dim == d {
			pts = pc.curves[ci].pts
			ci++
		}
		if v == 0 {
			continue
		}
		if pts != nil && h.curve[d] != nil {
			// The host's peak plus the request's peak (v) within capacity
			// fits at every point: the pointwise pass is for hosts near
			// full.
			if h.used[d]+v <= h.capac[d] {
				continue
			}
			for t, need := range pts {
				if h.curve[d][t]+need > h.capac[d] {
					det := ""
					if detail {
						det = fmt.Sprintf("point %d: need %d, free %d", t, need, h.capac[d]-h.curve[d][t])
					}
					return false, st.curveReas[d], det
				}
			}
			continue
		}
		// A flat demand (or a curve on a host whose usage is flat) must
		// fit under the host's peak usage.
		if h.used[d]+v > h.capac[d] {
			det := ""
			if detail {
				det = fmt.Sprintf("need %d, free %d", v, h.capac[d]-h.used[d])
			}
			return false, st.dimReason[d], det
		}
	}
	g := pc.p.GPU
	if g.Count > 0 {
		n := 0
		for _, f := range h.gpu {
			if f == GPUMilliPerDevice {
				n++
			}
		}
		if n < g.Count {
			det := ""
			if detail {
				det = fmt.Sprintf("need %d whole gpus, %d free", g.Count, n)
			}
			return false, reasonGPUCount, det
		}
	} else if g.SharedMilli > 0 {
		var best int32
		for _, f := range h.gpu {
			best = max(best, f)
		}
		if int64(best) < g.SharedMilli {
			det := ""
			if detail {
				det = fmt.Sprintf("need %d milli on one gpu, largest free %d", g.SharedMilli, best)
			}
			return false, reasonGPUShare, det
		}
	}
	return true, "", ""
}

// ruleCheck is one anti-affinity rule resolved for one request: the apps
// whose per-host counts it reads and the reason it gives, so the host loop
// builds no strings.
type ruleCheck struct {
	rule AntiAffinity
	// kind: 0 = the app's own per-host cap, 1 = the request is App (reads
	// Other's counts), 2 = the request is Other (reads App's and its own).
	kind   int
	counts int32 // app id whose count the rule reads
	own    int32 // kind 2: the request's own app id
	reason Reason
}

// broken says whether placing the request on host h would break the rule.
func (rc *ruleCheck) broken(h *hostState) bool {
	limit := int32(rc.rule.MaxOther)
	switch rc.kind {
	case 0: // a per-host cap of the app itself
		return h.appCount(rc.counts) > limit
	case 1: // the request is App: the host must not run more than MaxOther of Other
		return h.appCount(rc.counts) > limit
	default: // the request is Other: next to App, Other's count after placement <= MaxOther
		return h.appCount(rc.counts) > 0 && h.appCount(rc.own)+1 > limit
	}
}

// explain gives the numbers behind a broken rule on host h.
func (rc *ruleCheck) explain(h *hostState) string {
	r := rc.rule
	switch rc.kind {
	case 0:
		return fmt.Sprintf("host runs %d of %s, cap %d", h.appCount(rc.counts), r.App, r.MaxOther+1)
	case 1:
		return fmt.Sprintf("host runs %d of %s, at most %d may run next to %s", h.appCount(rc.counts), r.Other, r.MaxOther, r.App)
	default:
		return fmt.Sprintf("host runs %s and %d of %s, at most %d allowed", r.App, h.appCount(rc.own), r.Other, r.MaxOther)
	}
}

// prepareRules resolves the rules and spreads naming the request's app,
// once per request rather than once per host.
func (st *state) prepareRules(pc *placed) {
	pc.rules = pc.rules[:0]
	app := pc.p.App
	if app == "" {
		return
	}
	pc.spreads = st.bySpread[app]
	add := func(ri, kind int, counts, own int32) {
		pc.rules = append(pc.rules, ruleCheck{rule: st.rules[ri], kind: kind, counts: counts, own: own, reason: st.ruleWhy[ri]})
	}
	for _, ri := range st.byApp[app] {
		if r := st.rules[ri]; r.Other == app {
			add(ri, 0, st.appIDs[app], -1)
		} else {
			add(ri, 1, st.appIDs[r.Other], -1)
		}
	}
	for _, ri := range st.byOther[app] {
		add(ri, 2, st.appIDs[st.rules[ri].App], st.appIDs[app])
	}
	pc.rulesReady = true
	st.markRules(pc)
}

// markRules finds, once per request, the hosts that break one of its
// rules: only hosts running the app a rule reads can, and an app runs on
// few hosts, so this visits far fewer hosts than the scan does. Each
// marked host keeps the first rule (in pc.rules order) it breaks, the one
// the per-host check would name.
func (st *state) markRules(pc *placed) {
	if len(pc.rules) == 0 {
		return
	}
	st.markGen++
	if st.markGen == 0 { // wrapped: old marks could match again
		clear(st.ruleMark)
		st.markGen = 1
	}
	for i := range pc.rules {
		rc := &pc.rules[i]
		for _, hi := range st.appHosts[rc.counts] {
			if st.ruleMark[hi] != st.markGen && rc.broken(&st.hosts[hi]) {
				st.ruleMark[hi] = st.markGen
				st.markRule[hi] = int32(i)
			}
		}
	}
	pc.markedAt, pc.markGen = st.version, st.markGen
}

// rulesOK applies every anti-affinity rule that names the request's app.
func (st *state) rulesOK(hi int, pc *placed, detail bool) (bool, Reason, string) {
	if !pc.rulesReady {
		st.prepareRules(pc)
	}
	h := &st.hosts[hi]
	if pc.markGen != 0 && pc.markedAt == st.version && pc.markGen == st.markGen {
		// Nothing moved since the marks: a host breaks a rule iff marked.
		if st.ruleMark[hi] != st.markGen {
			return true, "", ""
		}
		rc := &pc.rules[st.markRule[hi]]
		if !detail {
			return false, rc.reason, ""
		}
		return false, rc.reason, rc.explain(h)
	}
	for i := range pc.rules {
		rc := &pc.rules[i]
		if !rc.broken(h) {
			continue
		}
		if !detail {
			return false, rc.reason, ""
		}
		return false, rc.reason, rc.explain(h)
	}
	return true, "", ""
}

func (st *state) spreadOK(hi, si int, detail bool) (bool, Reason, string) {
	s := &st.spreads[si]
	dom := s.hostDom[hi]
	if dom < 0 {
		return false, s.reasonDom, ""
	}
	if s.count[dom]+1-s.lo <= int32(s.MaxSkew) {
		return true, "", ""
	}
	if !detail {
		return false, s.reason, ""
	}
	return false, s.reason, fmt.Sprintf("%s=%s would hold %d, least loaded domain %d, max skew %d",
		s.DomainLabel, s.domains[dom], s.count[dom]+1, s.lo, s.MaxSkew)
}
