package trace

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// GenerateConfig shapes a synthetic cluster in the v2018 schema.
type GenerateConfig struct {
	Seed         uint64
	Hosts        int
	CoresPerHost int
	Containers   int
	DeployUnits  int
	// FailureDomains is the number of distinct failure_domain_1 values
	// (racks); failure_domain_2 groups them further (rooms).
	FailureDomains int
	// MaxDeployUnitSize caps the heavy tail of deploy-unit sizes.
	MaxDeployUnitSize int
	// SpanSec is the time the arrivals spread over (the real trace spans 8
	// days); most deploy units exist at time 0, as in the real trace.
	SpanSec int64
}

// V2018Scale is the scale of the published trace: 4,034 hosts of 96 cores,
// ~71,000 containers in ~9,800 deploy units over 8 days.
func V2018Scale(seed uint64) GenerateConfig {
	return GenerateConfig{
		Seed:              seed,
		Hosts:             4034,
		CoresPerHost:      96,
		Containers:        71000,
		DeployUnits:       9800,
		FailureDomains:    80,
		MaxDeployUnitSize: 1000,
		SpanSec:           8 * 24 * 3600,
	}
}

func (c GenerateConfig) validate() error {
	switch {
	case c.Hosts <= 0:
		return fmt.Errorf("hosts must be positive, got %d", c.Hosts)
	case c.CoresPerHost <= 0:
		return fmt.Errorf("cores per host must be positive, got %d", c.CoresPerHost)
	case c.DeployUnits <= 0:
		return fmt.Errorf("deploy units must be positive, got %d", c.DeployUnits)
	case c.Containers < c.DeployUnits:
		return fmt.Errorf("containers (%d) must be at least deploy units (%d)", c.Containers, c.DeployUnits)
	case c.FailureDomains <= 0:
		return fmt.Errorf("failure domains must be positive, got %d", c.FailureDomains)
	case c.MaxDeployUnitSize <= 0 || c.MaxDeployUnitSize*c.DeployUnits < c.Containers:
		return fmt.Errorf("max deploy unit size %d cannot hold %d containers in %d deploy units", c.MaxDeployUnitSize, c.Containers, c.DeployUnits)
	case c.SpanSec < 0:
		return fmt.Errorf("span must not be negative, got %d", c.SpanSec)
	}
	return nil
}

// containerShape is a container size class: cores and a memory-per-core
// ratio relative to the host's (1 = the host's own memory/CPU ratio).
type containerShape struct {
	cores  int64
	weight float64
}

// Most containers in the published trace request 4 or 8 cores; a few are
// small sidecars and a few are 16-core giants.
var shapes = []containerShape{{1, 0.10}, {2, 0.20}, {4, 0.45}, {8, 0.20}, {16, 0.05}}

var memRatios = []float64{0.5, 0.75, 1, 1.25, 1.5}

// GenerateV2018 writes a synthetic machine_meta.csv to machines and
// container_meta.csv to containers. The same config writes the same bytes.
func GenerateV2018(cfg GenerateConfig, machines, containers io.Writer) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("generate v2018: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5e1ce))
	hosts := genHosts(cfg, rng)
	if err := writeMachines(machines, hosts, cfg); err != nil {
		return fmt.Errorf("generate v2018: %s: %w", MachineMetaFile, err)
	}
	cs := genContainers(cfg, rng)
	placeRecorded(cfg, hosts, cs)
	if err := writeContainers(containers, cs); err != nil {
		return fmt.Errorf("generate v2018: %s: %w", ContainerMetaFile, err)
	}
	return nil
}

// WriteV2018Dir generates into dir/machine_meta.csv and
// dir/container_meta.csv, creating dir if needed.
func WriteV2018Dir(dir string, cfg GenerateConfig) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("generate v2018: %w", err)
	}
	mf, err := os.Create(filepath.Join(dir, MachineMetaFile))
	if err != nil {
		return fmt.Errorf("generate v2018: %w", err)
	}
	defer closeInto(mf, &err)
	cf, err := os.Create(filepath.Join(dir, ContainerMetaFile))
	if err != nil {
		return fmt.Errorf("generate v2018: %w", err)
	}
	defer closeInto(cf, &err)
	return GenerateV2018(cfg, mf, cf)
}

func closeInto(f *os.File, err *error) {
	if cerr := f.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("generate v2018: %w", cerr)
	}
}

type genHost struct {
	m        Machine
	freeCPU  int64   // centi-cores
	freeMem  float64 // normalised
	lastUnit int     // last deploy unit placed here, to keep units apart
}

func genHosts(cfg GenerateConfig, rng *rand.Rand) []genHost {
	// Racks are assigned in a shuffled order: in the published trace a
	// machine's id says nothing about its failure domain.
	perm := rng.Perm(cfg.Hosts)
	hosts := make([]genHost, cfg.Hosts)
	for i := range hosts {
		fd1 := int64(perm[i] % cfg.FailureDomains)
		hosts[i] = genHost{
			m: Machine{
				ID:             "m_" + strconv.Itoa(i+1),
				FailureDomain1: fd1,
				FailureDomain2: string(rune('A' + fd1%8)),
				CPUCores:       int64(cfg.CoresPerHost),
				MemNormalized:  100,
				Status:         "USING",
			},
			freeCPU:  int64(cfg.CoresPerHost) * 100,
			freeMem:  100,
			lastUnit: -1,
		}
	}
	return hosts
}

func writeMachines(w io.Writer, hosts []genHost, cfg GenerateConfig) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf []byte
	for _, h := range hosts {
		m := h.m
		buf = append(buf[:0], m.ID...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, m.TimeStampSec, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, m.FailureDomain1, 10)
		buf = append(buf, ',')
		buf = append(buf, m.FailureDomain2...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, m.CPUCores, 10)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, m.MemNormalized, 'f', -1, 64)
		buf = append(buf, ',')
		buf = append(buf, m.Status...)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

type genContainer struct {
	c    Container
	unit int
}

// deployUnitSizes splits total containers over n units with a heavy
// (Pareto, alpha 1.2) tail: most units hold a handful, a few hold hundreds.
func deployUnitSizes(cfg GenerateConfig, rng *rand.Rand) []int {
	n, total := cfg.DeployUnits, cfg.Containers
	weights := make([]float64, n)
	var sum float64
	for i := range weights {
		u := 1 - rng.Float64() // (0,1]
		weights[i] = math.Pow(u, -1/1.2) - 1
		sum += weights[i]
	}
	sizes := make([]int, n)
	extra := total - n
	type frac struct {
		i int
		f float64
	}
	fracs := make([]frac, n)
	given := 0
	for i, w := range weights {
		share := 0.0
		if sum > 0 {
			share = float64(extra) * w / sum
		}
		sizes[i] = 1 + int(share)
		given += int(share)
		fracs[i] = frac{i, share - math.Floor(share)}
	}
	// Largest remainders get the containers the floors left over.
	sort.SliceStable(fracs, func(a, b int) bool { return fracs[a].f > fracs[b].f })
	for k := 0; given < extra; k++ {
		sizes[fracs[k%n].i]++
		given++
	}
	// Clip the tail and hand the excess to random units below the cap.
	excess := 0
	for i := range sizes {
		if sizes[i] > cfg.MaxDeployUnitSize {
			excess += sizes[i] - cfg.MaxDeployUnitSize
			sizes[i] = cfg.MaxDeployUnitSize
		}
	}
	for excess > 0 {
		i := rng.IntN(n)
		if sizes[i] < cfg.MaxDeployUnitSize {
			sizes[i]++
			excess--
		}
	}
	return sizes
}

func pickShape(rng *rand.Rand) int64 {
	x := rng.Float64()
	for _, s := range shapes {
		if x < s.weight {
			return s.cores
		}
		x -= s.weight
	}
	return shapes[len(shapes)-1].cores
}

func genContainers(cfg GenerateConfig, rng *rand.Rand) []genContainer {
	sizes := deployUnitSizes(cfg, rng)
	out := make([]genContainer, 0, cfg.Containers)
	for u, n := range sizes {
		cores := pickShape(rng)
		ratio := memRatios[rng.IntN(len(memRatios))]
		mem := math.Round(float64(cores)/float64(cfg.CoresPerHost)*100*ratio*100) / 100
		mem = math.Max(0.01, math.Min(mem, 100))
		var start int64
		if cfg.SpanSec > 0 && rng.Float64() >= 0.7 {
			start = rng.Int64N(cfg.SpanSec)
		}
		du := "app_" + strconv.Itoa(u+1)
		for k := range n {
			out = append(out, genContainer{unit: u, c: Container{
				AppDU:                du,
				TimeStampSec:         start + int64(k),
				Status:               "started",
				CPURequestCentiCores: cores * 100,
				CPULimitCentiCores:   cores * 100,
				MemNormalized:        mem,
			}})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].c.TimeStampSec < out[j].c.TimeStampSec })
	for i := range out {
		out[i].c.ID = "c_" + strconv.Itoa(i+1)
	}
	return out
}

// placeRecorded fills machine_id the way a simple recorded scheduler would
// have: round-robin first fit that respects capacity and keeps consecutive
// containers of a unit off the same host. Containers that fit nowhere keep
// an empty machine_id.
func placeRecorded(cfg GenerateConfig, hosts []genHost, cs []genContainer) {
	next := 0
	for i := range cs {
		c := &cs[i]
		for k := range hosts {
			h := &hosts[(next+k)%len(hosts)]
			if h.freeCPU >= c.c.CPURequestCentiCores && h.freeMem >= c.c.MemNormalized && h.lastUnit != c.unit {
				h.freeCPU -= c.c.CPURequestCentiCores
				h.freeMem -= c.c.MemNormalized
				h.lastUnit = c.unit
				c.c.MachineID = h.m.ID
				next = (next + k + 1) % len(hosts)
				break
			}
		}
	}
}

func writeContainers(w io.Writer, cs []genContainer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf []byte
	for _, gc := range cs {
		c := gc.c
		buf = append(buf[:0], c.ID...)
		buf = append(buf, ',')
		buf = append(buf, c.MachineID...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, c.TimeStampSec, 10)
		buf = append(buf, ',')
		buf = append(buf, c.AppDU...)
		buf = append(buf, ',')
		buf = append(buf, c.Status...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, c.CPURequestCentiCores, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, c.CPULimitCentiCores, 10)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, c.MemNormalized, 'f', 2, 64)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}
