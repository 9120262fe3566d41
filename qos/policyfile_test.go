package qos

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/rdt"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func TestDefaultPolicyFileSpellsOutTheDefaults(t *testing.T) {
	def := DefaultPolicy()
	minimal, err := ParsePolicy("minimal.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Rules) == 0 {
		t.Error("default policy has no class rules; it should class systemd services as system")
	}
	if minimal.Rules != nil {
		t.Errorf("omitted rules = %v, want none", minimal.Rules)
	}
	// Everything but the example rules must equal what omitted fields mean,
	// or the SRE documentation lies.
	def.Rules = nil
	if !reflect.DeepEqual(def, minimal) {
		t.Errorf("default-policy.yaml and builtin defaults differ:\nfile:    %+v\nbuiltin: %+v", def, minimal)
	}
}

func TestParsePolicyFull(t *testing.T) {
	data, err := os.ReadFile("testdata/policy/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePolicy("full.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{
		Version:       1,
		DryRun:        true,
		OfflineParent: "/kubepods/besteffort",
		OnStop:        StopRelease,
		Rules: []ClassRule{
			{Name: "daemons", Cgroup: "/system.slice/*.service", Class: ClassSystem, Priority: 3},
			{Name: "batch", Cgroup: "/batch/[a-z]*", Class: ClassOffline, Priority: -2},
		},
		Sampling: SamplingPolicy{
			HostInterval:      50 * time.Millisecond,
			ContainerInterval: 2 * time.Second,
			PSIWindow:         4 * time.Second,
			PSIThreshold:      300 * time.Millisecond,
		},
		CPU: CPUPolicy{
			HighWater: 0.65, OfflineFloor: 0.125, RampPerSecond: 0.2, DeadBand: 0.01,
			GrowHold: 3 * time.Second, OnlineRunqLatencyP99: 5 * time.Millisecond,
		},
		Memory: MemoryPolicy{
			HighWater: 0.9, OfflineFloor: 0, RampPerSecond: 0.01, DeadBand: 0, GrowHold: 0,
		},
		Kill: KillPolicy{Grace: 0, CoolDown: time.Minute + 30*time.Second},
		RDT: rdt.Policy{
			Enabled: true, OnlineLatencyTarget: 2 * time.Millisecond, CalmBelow: 0.7, SuspectShare: 0.2,
			OfflinePriorityGroups: true,
			Online:                rdt.ClassPolicy{WaysFloor: rdt.Ways{Count: 4}, WaysCeiling: rdt.Ways{Share: 1}, MBFloor: 0.5, MBCeiling: 1},
			Offline:               rdt.ClassPolicy{WaysFloor: rdt.Ways{Count: 2}, WaysCeiling: rdt.Ways{Count: 6}, MBFloor: 0.2, MBCeiling: 0.6},
			System:                &rdt.ClassPolicy{WaysFloor: rdt.Ways{Count: 1}, WaysCeiling: rdt.Ways{Share: 0.75}, MBFloor: 1, MBCeiling: 1},
			Ramp:                  rdt.Ramp{Ways: 2, MB: 0.05, Every: 500 * time.Millisecond, Hold: 10 * time.Second},
		},
		Network: NetworkPolicy{
			Devices:            []string{"eth0", "bond0.100"},
			LinkRateBitsPerSec: 10_000_000_000, GoldRateBitsPerSec: 200_000_000,
			SilverRateBitsPerSec: 7_500_000_000, HeadroomBitsPerSec: 500_000,
			RampBitsPerSecPerSec: 2_000_000_000, Ingress: true,
			DSCP: map[netqos.Tier]uint8{netqos.Silver: 26, netqos.Bronze: 8}, ReplaceForeignRoot: true,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParsePolicy(full.yaml):\n got %+v\nwant %+v", got, want)
	}
}

func TestParsePolicyOmittedSectionsKeepDefaults(t *testing.T) {
	got, err := ParsePolicy("p.yaml", []byte("version: 1\ncpu:\n  highWater: 60%\nmemory:\nkill: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := builtinDefaults()
	want.CPU.HighWater = 0.6
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestParsePolicyBad checks every broken file against its golden .err file
// (go test ./qos -run TestParsePolicyBad -update rewrites them).
func TestParsePolicyBad(t *testing.T) {
	files, err := filepath.Glob("testdata/policy/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad policy corpus: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pol, err := ParsePolicy(filepath.Base(f), data)
			if err == nil {
				t.Fatalf("accepted a broken file: %+v", pol)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error %T %q is not a *PolicyError with problems", err, err)
			}
			if !reflect.DeepEqual(pol, Policy{}) {
				t.Errorf("returned a policy along with the error: %+v", pol)
			}
			lines := strings.Count(string(data), "\n") + 1
			for _, p := range pe.Problems {
				if p.Line < 0 || p.Line > lines || p.Msg == "" {
					t.Errorf("problem %+v: line outside the file (%d lines) or empty message", p, lines)
				}
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestParsePolicyReportsEveryProblemWithLine(t *testing.T) {
	data := "version: 1\n" + // 1
		"cpu:\n" + // 2
		"  highWater: 130%\n" + // 3
		"  rampPerSecond: fast\n" + // 4
		"sampling:\n" + // 5
		"  psiWindow: 20s\n" + // 6
		"rdt:\n" + // 7
		"  calmBelow: 0%\n" + // 8
		"bogus: 1\n" // 9
	_, err := ParsePolicy("policy.yaml", []byte(data))
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PolicyError", err)
	}
	want := []Problem{
		{3, "cpu.highWater", "130% is above 100%"},
		{4, "cpu.rampPerSecond", `"fast" is not a percentage (want e.g. "70%")`},
		{6, "sampling.psiWindow", "20s is above 10s"},
		{8, "rdt.calmBelow", "0% must be above 0%"},
		{9, "bogus", "unknown field (want one of version, dryRun, offlineParent, onStop, rules, sampling, cpu, memory, kill, rdt, llc, network)"},
	}
	if !reflect.DeepEqual(pe.Problems, want) {
		t.Errorf("problems:\n got %+v\nwant %+v", pe.Problems, want)
	}
	if first := strings.Split(err.Error(), "\n")[0]; first != "policy.yaml:3: cpu.highWater: 130% is above 100%" {
		t.Errorf("first line of Error() = %q", first)
	}
}

func TestParsePercent(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"70%", 0.7, ""},
		{"12.5%", 0.125, ""},
		{" 5 %", 0.05, ""},
		{"0%", 0, ""},
		{"0.7", 0, "ambiguous"},
		{"70", 0, "ambiguous"},
		{"%", 0, "not a percentage"},
		{"NaN%", 0, "not a percentage"},
		{"Inf%", 0, "not a percentage"},
		{"seventy%", 0, "not a percentage"},
	} {
		got, err := parsePercent(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parsePercent(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parsePercent(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr string
	}{
		{"700Mbit", 700_000_000, ""},
		{"1.5Gbit", 1_500_000_000, ""},
		{"100kbit", 100_000, ""},
		{"64bit", 64, ""},
		{"2tbit", 2_000_000_000_000, ""},
		{"100MBps", 0, "bytes per second"},
		{"100mbps", 0, "bytes per second"},
		{"0Mbit", 0, "not positive"},
		{"-1Mbit", 0, "not positive"},
		{"0.0001bit", 0, "not positive"},
		{"2000Tbit", 0, "above"},
		{"700", 0, "no unit"},
		{"Mbit", 0, "not a bit rate"},
		{"NaNMbit", 0, "not a bit rate"},
	} {
		got, err := parseRate(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseRate(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for bits, want := range map[uint64]string{700_000_000: "700Mbit", 1_500_000_000: "1500Mbit", 64: "64bit", 10_000_000_000: "10Gbit"} {
		if got := formatRate(bits); got != want {
			t.Errorf("formatRate(%d) = %q, want %q", bits, got, want)
		}
	}
}

func TestNetworkFits(t *testing.T) {
	n := NetworkPolicy{GoldRateBitsPerSec: 200e6, SilverRateBitsPerSec: 700e6, HeadroomBitsPerSec: 50e6}
	if err := n.Fits(1e9); err != nil {
		t.Errorf("950Mbit of 1Gbit: %v", err)
	}
	if err := n.Fits(950e6); err == nil {
		t.Error("950Mbit of 950Mbit fits; bronze would get nothing")
	}
	huge := NetworkPolicy{GoldRateBitsPerSec: 1 << 63, SilverRateBitsPerSec: 1 << 63}
	if err := huge.Fits(1 << 62); err == nil {
		t.Error("overflowing sum fits")
	}
}

// checkPolicyInvariants is what every accepted policy must satisfy; the
// fuzzer holds ParsePolicy to it.
func checkPolicyInvariants(t *testing.T, p Policy) {
	t.Helper()
	in01 := func(name string, v float64, zeroOK bool) {
		if v < 0 || v > 1 || (!zeroOK && v == 0) || v != v {
			t.Errorf("%s = %v outside its range", name, v)
		}
	}
	in01("cpu.highWater", p.CPU.HighWater, false)
	in01("cpu.offlineFloor", p.CPU.OfflineFloor, true)
	in01("cpu.rampPerSecond", p.CPU.RampPerSecond, false)
	in01("memory.highWater", p.Memory.HighWater, false)
	in01("memory.offlineFloor", p.Memory.OfflineFloor, true)
	in01("memory.rampPerSecond", p.Memory.RampPerSecond, false)
	in01("rdt.offline.mbCeiling", p.RDT.Offline.MBCeiling, false)
	in01("rdt.offline.mbFloor", p.RDT.Offline.MBFloor, false)
	if p.RDT.Offline.MBFloor > p.RDT.Offline.MBCeiling || p.RDT.Online.MBFloor > p.RDT.Online.MBCeiling {
		t.Errorf("rdt MB floor above ceiling: %+v", p.RDT)
	}
	if p.Version != PolicyVersion {
		t.Errorf("version %d", p.Version)
	}
	if p.CPU.OfflineFloor >= p.CPU.HighWater || p.Memory.OfflineFloor >= p.Memory.HighWater {
		t.Errorf("floor not below high water: %+v %+v", p.CPU, p.Memory)
	}
	s := p.Sampling
	if s.PSIWindow < 500*time.Millisecond || s.PSIWindow > 10*time.Second || s.PSIThreshold <= 0 || s.PSIThreshold >= s.PSIWindow {
		t.Errorf("psi window/threshold %v/%v", s.PSIWindow, s.PSIThreshold)
	}
	if s.HostInterval <= 0 || s.ContainerInterval < s.HostInterval {
		t.Errorf("intervals %v/%v", s.HostInterval, s.ContainerInterval)
	}
	if p.Kill.Grace < 0 || p.Kill.CoolDown < 0 || p.CPU.GrowHold < 0 || p.Memory.GrowHold < 0 || p.CPU.OnlineRunqLatencyP99 < 0 {
		t.Errorf("negative duration: %+v %+v", p.Kill, p.CPU)
	}
	if checkCgroupPath(p.OfflineParent) != nil {
		t.Errorf("offline parent %q", p.OfflineParent)
	}
	for _, r := range p.Rules {
		if _, err := ParseClass(string(r.Class)); err != nil || r.Name == "" || !strings.HasPrefix(r.Cgroup, "/") {
			t.Errorf("rule %+v", r)
		}
		if _, err := pathMatch(r.Cgroup); err != nil {
			t.Errorf("rule glob %q: %v", r.Cgroup, err)
		}
	}
	n := p.Network
	if n.LinkRateBitsPerSec > 0 && n.Fits(n.LinkRateBitsPerSec) != nil {
		t.Errorf("network does not fit: %+v", n)
	}
	if len(n.Devices) > 0 && (n.GoldRateBitsPerSec == 0 || n.SilverRateBitsPerSec == 0 || n.HeadroomBitsPerSec == 0) {
		t.Errorf("devices without rates: %+v", n)
	}
	for _, d := range n.Devices {
		if checkDeviceName(d) != nil {
			t.Errorf("device %q", d)
		}
	}
	if p.OnStop != StopKeep && p.OnStop != StopRelease {
		t.Errorf("onStop %q", p.OnStop)
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add(DefaultPolicyYAML)
	for _, dir := range []string{"testdata/policy/bad/*.yaml", "testdata/policy/good/*.yaml"} {
		files, _ := filepath.Glob(dir)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("version: 1\nrules: &r\n  - {name: a, cgroup: /a, class: system}\nnetwork: {devices: *r}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := ParsePolicy("fuzz.yaml", data)
		if err == nil {
			checkPolicyInvariants(t, pol)
			return
		}
		var pe *PolicyError
		if !errors.As(err, &pe) || len(pe.Problems) == 0 {
			t.Fatalf("error %T %q is not a *PolicyError with problems", err, err)
		}
		for _, p := range pe.Problems {
			if p.Msg == "" || p.Line < 0 {
				t.Fatalf("bad problem %+v", p)
			}
		}
		if !reflect.DeepEqual(pol, Policy{}) {
			t.Fatalf("policy returned with error")
		}
	})
}

func TestNotEnforcedNamesSectionsThatAskForSomething(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		want []string
	}{
		{"rdt is enforced (on by default)", "version: 1\n", nil},
		{"rdt off asks for nothing", "version: 1\nrdt: {enabled: false}\n", nil},
		{"network with devices is enforced", "version: 1\nrdt: {enabled: false}\n" +
			"network: {devices: [eth0], goldRate: 1Mbit, silverRate: 1Mbit, headroom: 1Mbit}\n", nil},
		{"rdt and network are enforced", "version: 1\nnetwork: {devices: [eth0], goldRate: 1Mbit, silverRate: 1Mbit, headroom: 1Mbit}\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := ParsePolicy(tc.name, []byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := pol.NotEnforced(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NotEnforced() = %q, want %q", got, tc.want)
			}
		})
	}
	if got := DefaultPolicy().NotEnforced(); got != nil {
		t.Errorf("default policy: NotEnforced() = %q, want none (its rdt section is enforced)", got)
	}
}
