package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

// ClusterConfig sizes a generated planning cluster (GenerateCluster).
type ClusterConfig struct {
	Seed uint64
	// Hosts are split two to one between a 64-core shape (cost 1) and a
	// 96-core shape (cost 1.6).
	Hosts int
	Apps  int
	// Containers are spread over the apps with a heavy tail, each app at
	// least one.
	Containers int
	// Rules is the number of anti-affinity entries: about a third are
	// same-app caps, the rest cross-app limits, a third of those zero.
	Rules       int
	CurvePoints int
	// Existing is the share of containers given existing placements.
	Existing float64
}

// ClusterScale is the shape of a large online cluster as a capacity
// planner meets it: 6,000 hosts of two shapes, 9,000 apps with 98-point
// CPU and memory curves, 68,000 containers, 33,000 anti-affinity rules,
// 90% of containers already placed.
func ClusterScale(seed uint64) ClusterConfig {
	return ClusterConfig{Seed: seed, Hosts: 6000, Apps: 9000, Containers: 68000, Rules: 33000, CurvePoints: 98, Existing: 0.9}
}

// GenerateCluster writes a seeded generic file of cfg's shape: the same
// config gives the same file. Apps have one of four daily shapes (day,
// night, the two complementary; flat; two peaks), CPU peaks of 1 to 16
// cores and 2 to 8 GiB of memory per core. Existing placements are found
// with the placement core itself (random strategy over a sample of
// feasible hosts), so they respect capacity at every point and every rule;
// a request's existing placements are the prefix of its instances that
// fit.
func GenerateCluster(cfg ClusterConfig) (*trace.Generic, error) {
	switch {
	case cfg.Hosts < 1 || cfg.Apps < 1 || cfg.CurvePoints < 1:
		return nil, errors.New("generate cluster: hosts, apps and curve points must be at least 1")
	case cfg.Containers < cfg.Apps:
		return nil, fmt.Errorf("generate cluster: %d containers for %d apps: want at least one each", cfg.Containers, cfg.Apps)
	case cfg.Rules < 0 || cfg.Existing < 0 || cfg.Existing > 1:
		return nil, errors.New("generate cluster: rules must be >= 0 and existing in [0,1]")
	case cfg.Apps < 2 && cfg.Rules > 0:
		return nil, errors.New("generate cluster: rules need at least two apps")
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x51a7))
	g := &trace.Generic{Version: trace.GenericVersion, CurvePoints: cfg.CurvePoints, DomainLabel: "rack"}
	large := cfg.Hosts / 3
	g.Hosts = []trace.GenericHost{
		{Name: "s", Count: cfg.Hosts - large, CPU: 64000, Memory: 256 << 30, Cost: 1},
		{Name: "l", Count: large, CPU: 96000, Memory: 512 << 30, Cost: 1.6},
	}
	if large == 0 {
		g.Hosts = g.Hosts[:1]
	}
	counts := heavyTail(rng, cfg.Apps, cfg.Containers)
	for i := range cfg.Apps {
		g.Apps = append(g.Apps, genApp(rng, "app"+strconv.Itoa(i), cfg.CurvePoints))
		g.Requests = append(g.Requests, trace.GenericRequest{App: g.Apps[i].Name, Count: counts[i]})
	}
	genRules(rng, g, counts, cfg.Rules)
	if err := placeExisting(g, counts, cfg.Existing, cfg.Seed); err != nil {
		return nil, err
	}
	return g, nil
}

// heavyTail splits total over n apps, each at least one, the rest by
// Pareto weights (a few apps with hundreds of containers, most with a few).
func heavyTail(rng *rand.Rand, n, total int) []int {
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = math.Pow(1-rng.Float64(), -1/1.3) // Pareto, alpha 1.3
		sum += w[i]
	}
	counts := make([]int, n)
	rest := total - n
	given := 0
	var acc float64
	for i := range counts {
		acc += w[i] / sum * float64(rest)
		k := int(acc) - given // cumulative rounding: sums exactly
		counts[i] = 1 + k
		given += k
	}
	counts[n-1] += rest - given
	return counts
}

var coreSizes = []struct {
	cores  int64
	weight int
}{{1, 25}, {2, 35}, {4, 25}, {8, 12}, {16, 3}}

func genApp(rng *rand.Rand, name string, points int) trace.GenericApp {
	pick := rng.IntN(100)
	cores := coreSizes[len(coreSizes)-1].cores
	for _, s := range coreSizes {
		if pick < s.weight {
			cores = s.cores
			break
		}
		pick -= s.weight
	}
	memPerCore := int64(2) << rng.IntN(3) // 2, 4 or 8 GiB
	shape := rng.IntN(4)
	phase := rng.Float64() * 0.1
	cpu := dayCurve(rng, shape, phase, points, 0.15+0.25*rng.Float64())
	// Memory follows the CPU shape but stays higher off-peak.
	mem := dayCurve(rng, shape, phase, points, 0.6+0.2*rng.Float64())
	return trace.GenericApp{
		Name:   name,
		CPU:    trace.MilliCPU(cores * 1000),
		Memory: trace.Bytes(cores * memPerCore << 30),
		Curves: map[string]trace.Curve{"cpu": cpu, "memory": mem},
	}
}

// dayCurve is a daily curve in [floor, 1] with its maximum exactly 1:
// shape 0 peaks at midday, 1 at midnight (complementary to 0), 2 is flat
// with noise, 3 has a morning and an evening peak. Values have two
// decimals, as recorded curves usually do.
func dayCurve(rng *rand.Rand, shape int, phase float64, points int, floor float64) []float64 {
	c := make([]float64, points)
	top, at := 0.0, 0
	for i := range c {
		x := float64(i)/float64(points) + phase
		var v float64
		switch shape {
		case 0:
			v = 0.5 - 0.5*math.Cos(2*math.Pi*x)
		case 1:
			v = 0.5 + 0.5*math.Cos(2*math.Pi*x)
		case 2:
			v = 0.9
		case 3:
			v = 0.5 - 0.5*math.Cos(4*math.Pi*x)
		}
		v = floor + (1-floor)*v + 0.05*(rng.Float64()-0.5)
		v = math.Round(math.Max(0, math.Min(1, v))*100) / 100
		c[i] = v
		if v > top {
			top, at = v, i
		}
	}
	c[at] = 1
	return c
}

// genRules adds n anti-affinity entries: same-app caps (1 to 3 per host)
// on apps with several containers, cross-app limits (0 to 2) between
// distinct apps, no pair twice.
func genRules(rng *rand.Rand, g *trace.Generic, counts []int, n int) {
	type pair struct{ a, b int }
	seen := map[pair]bool{}
	var multi []int
	for i, c := range counts {
		if c > 1 {
			multi = append(multi, i)
		}
	}
	sameApp := min(n/3, len(multi))
	for k := range sameApp {
		i := multi[k*len(multi)/max(sameApp, 1)]
		seen[pair{i, i}] = true
		g.Apps[i].AntiAffinity = append(g.Apps[i].AntiAffinity, trace.GenericAntiAffinity{App: g.Apps[i].Name, MaxTogether: 1 + rng.IntN(3)})
	}
	for added := sameApp; added < n; {
		a, b := rng.IntN(len(g.Apps)), rng.IntN(len(g.Apps))
		if a == b || seen[pair{a, b}] {
			continue
		}
		seen[pair{a, b}] = true
		limit := 1 + rng.IntN(2)
		if rng.IntN(3) == 0 {
			limit = 0
		}
		g.Apps[a].AntiAffinity = append(g.Apps[a].AntiAffinity, trace.GenericAntiAffinity{App: g.Apps[b].Name, MaxTogether: limit})
		added++
	}
}

// placeExisting gives each request's first instances existing placements,
// share of all containers in all (cumulative rounding over requests), by
// placing them with the placement core in a seeded order of apps.
func placeExisting(g *trace.Generic, counts []int, share float64, seed uint64) error {
	w, err := FromGeneric(g)
	if err != nil {
		return fmt.Errorf("generate cluster: %w", err)
	}
	prof := w.Profile
	prof.Strategy = place.StrategyRandom
	prof.SampleFeasible = 8
	c, err := place.New(w.Snapshot, prof)
	if err != nil {
		return fmt.Errorf("generate cluster: %w", err)
	}
	// first[i] is the index in w.Requests of request i's first instance
	// (one request per app; instances past an app's bound are not there).
	firstOf := map[string]int{}
	for k := len(w.Requests) - 1; k >= 0; k-- {
		firstOf[w.Requests[k].App] = k
	}
	first := make([]int, len(counts))
	have := make([]int, len(counts))
	for i, r := range g.Requests {
		first[i] = firstOf[r.App]
		have[i] = r.Count
	}
	for _, u := range w.Unplaceable {
		for i, r := range g.Requests {
			if r.App == u.App {
				have[i] -= u.Count
			}
		}
	}
	want := make([]int, len(counts))
	var total, given int
	for i, n := range counts {
		total += n
		want[i] = int(float64(total)*share) - given
		given += want[i]
	}
	rng := rand.New(rand.NewPCG(seed, 0xe715))
	for _, i := range rng.Perm(len(counts)) {
		for k := range min(want[i], have[i]) {
			req := w.Requests[first[i]+k]
			req.Seed = mixSeed(seed, uint64(first[i]+k))
			d, err := c.Place(req)
			if err != nil {
				return fmt.Errorf("generate cluster: %w", err)
			}
			if !d.Placed {
				break // existing placements are a prefix of the request
			}
			g.Requests[i].On = append(g.Requests[i].On, d.Placement.Host)
		}
	}
	return nil
}
