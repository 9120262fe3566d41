package trace

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func small(seed uint64) GenerateConfig {
	return GenerateConfig{Seed: seed, Hosts: 50, CoresPerHost: 96, Containers: 700, DeployUnits: 100, FailureDomains: 5, MaxDeployUnitSize: 60, SpanSec: 3600}
}

func TestGenerateDeterministic(t *testing.T) {
	gen := func(seed uint64) [2][32]byte {
		var m, c bytes.Buffer
		if err := GenerateV2018(small(seed), &m, &c); err != nil {
			t.Fatal(err)
		}
		return [2][32]byte{sha256.Sum256(m.Bytes()), sha256.Sum256(c.Bytes())}
	}
	a, b, other := gen(7), gen(7), gen(8)
	if a != b {
		t.Fatal("same seed gave different files")
	}
	if a[1] == other[1] {
		t.Fatal("different seeds gave the same containers")
	}
}

func TestGenerateRejectsImpossibleConfig(t *testing.T) {
	cfg := small(1)
	cfg.MaxDeployUnitSize = 5 // 100 units x 5 < 700 containers
	var m, c bytes.Buffer
	if err := GenerateV2018(cfg, &m, &c); err == nil || !strings.Contains(err.Error(), "cannot hold 700 containers") {
		t.Fatalf("got %v", err)
	}
}

// The generated files must read back through the real parsers with every
// column in place, at the published scale.
func TestGenerateFullScaleSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("full scale")
	}
	dir := t.TempDir()
	cfg := V2018Scale(42)
	if err := WriteV2018Dir(dir, cfg); err != nil {
		t.Fatal(err)
	}
	checkColumns(t, filepath.Join(dir, MachineMetaFile), 7)
	checkColumns(t, filepath.Join(dir, ContainerMetaFile), 8)
	tr, err := LoadV2018(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Machines) != 4034 {
		t.Errorf("machines = %d, want 4034", len(tr.Machines))
	}
	if len(tr.Containers) != 71000 {
		t.Errorf("containers = %d, want 71000", len(tr.Containers))
	}
	domains := map[int64]bool{}
	for _, m := range tr.Machines {
		if m.CPUCores != 96 || m.MemNormalized != 100 {
			t.Fatalf("machine %+v is not a 96-core host", m)
		}
		domains[m.FailureDomain1] = true
	}
	if len(domains) != cfg.FailureDomains {
		t.Errorf("failure domains = %d, want %d", len(domains), cfg.FailureDomains)
	}
	units := map[string]int{}
	shapes := map[int64]int{}
	placed := map[string]int64{}
	for _, c := range tr.Containers {
		units[c.AppDU]++
		shapes[c.CPURequestCentiCores]++
		if c.MachineID != "" {
			placed[c.MachineID] += c.CPURequestCentiCores
		}
	}
	if len(units) != 9800 {
		t.Errorf("deploy units = %d, want 9800", len(units))
	}
	for s := range shapes {
		if s != 100 && s != 200 && s != 400 && s != 800 && s != 1600 {
			t.Errorf("unexpected shape %d centi-cores", s)
		}
	}
	if shapes[400] < shapes[100] || shapes[400] < shapes[1600] {
		t.Errorf("4-core shape should dominate, got %v", shapes)
	}
	for m, cpu := range placed {
		if cpu > 9600 {
			t.Errorf("recorded placement overflows %s: %d centi-cores", m, cpu)
		}
	}
	// Heavy tail: most units are small, the largest is far above the mean.
	sizes := make([]int, 0, len(units))
	for _, n := range units {
		sizes = append(sizes, n)
	}
	sort.Ints(sizes)
	median, largest := sizes[len(sizes)/2], sizes[len(sizes)-1]
	if median > 5 || largest < 20*median {
		t.Errorf("deploy unit sizes not heavy-tailed: median %d, largest %d", median, largest)
	}
	t.Logf("deploy units: median %d, p99 %d, largest %d", median, sizes[len(sizes)*99/100], largest)
}

func checkColumns(t *testing.T, path string, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if c := strings.Count(line, ",") + 1; c != n {
			t.Fatalf("%s:%d: %d columns, want %d: %q", path, i+1, c, n, line)
		}
	}
}
