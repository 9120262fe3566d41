package rdt_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestScenarios replays testdata/scenarios/*.txt through Decide and
// compares each step's verdict and offline schemata with the .golden file
// beside it (go test -run Scenarios -update rewrites them).
//
// A scenario is one directive per line ('#' starts a comment):
//
//	hardware NAME            a resctrltest variant (intel-two-socket, amd...)
//	policy KEY=VALUE...      target=5ms hold=5s every=1s ways=1 mb=10%
//	step t=DUR p99=DUR [GROUP:DOMAIN:BYTES_PER_SEC:OCCUPANCY_BYTES...]
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			got, err := runScenario(file)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func runScenario(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var hw rdt.Hardware
	pol := rdt.DefaultPolicy()
	var st rdt.State
	var out strings.Builder
	t0 := time.Unix(0, 0)
	for n, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		fail := func(format string, args ...any) (string, error) {
			return "", fmt.Errorf("%s:%d: %s", file, n+1, fmt.Sprintf(format, args...))
		}
		kv := map[string]string{}
		var rest []string
		for _, w := range f[1:] {
			if k, v, ok := strings.Cut(w, "="); ok {
				kv[k] = v
			} else {
				rest = append(rest, w)
			}
		}
		dur := func(k string) time.Duration {
			d, _ := time.ParseDuration(kv[k])
			return d
		}
		switch f[0] {
		case "hardware":
			v, ok := resctrltest.Variants()[rest[0]]
			if !ok {
				return fail("unknown hardware %q", rest[0])
			}
			hw = v
		case "policy":
			for k := range kv {
				switch k {
				case "target":
					pol.OnlineLatencyTarget = dur(k)
				case "hold":
					pol.Ramp.Hold = dur(k)
				case "every":
					pol.Ramp.Every = dur(k)
				case "ways":
					pol.Ramp.Ways, _ = strconv.Atoi(kv[k])
				case "mb":
					v, _ := strconv.ParseFloat(strings.TrimSuffix(kv[k], "%"), 64)
					pol.Ramp.MB = v / 100
				default:
					return fail("unknown policy key %q", k)
				}
			}
			if err := pol.Validate(hw); err != nil {
				return fail("%v", err)
			}
		case "step":
			in := rdt.Signals{Now: t0.Add(dur("t")), OnlineLatencyP99: dur("p99")}
			for _, c := range rest {
				p := strings.Split(c, ":")
				if len(p) != 4 {
					return fail("counter %q is not GROUP:DOMAIN:BYTES_PER_SEC:OCCUPANCY", c)
				}
				d, err1 := strconv.Atoi(p[1])
				bw, err2 := strconv.ParseFloat(p[2], 64)
				occ, err3 := strconv.ParseUint(p[3], 10, 64)
				if err1 != nil || err2 != nil || err3 != nil {
					return fail("counter %q: bad number", c)
				}
				group := map[string]string{"online": rdt.GroupOnline, "offline": rdt.GroupOffline}[p[0]]
				if in.Domains == nil {
					in.Domains = map[int]map[string]rdt.Counters{}
				}
				if in.Domains[d] == nil {
					in.Domains[d] = map[string]rdt.Counters{}
				}
				in.Domains[d][group] = rdt.Counters{TotalBytesPerSec: bw, OccupancyBytes: occ}
			}
			var plan rdt.Plan
			plan, st = rdt.Decide(in, pol, hw, st)
			for _, g := range plan.Groups {
				if g.Group == rdt.GroupOffline {
					fmt.Fprintf(&out, "t=%-5s p99=%-5s %-28s %s\n", kv["t"], kv["p99"], g.Reason.Kind,
						strings.ReplaceAll(strings.TrimSpace(g.Schemata.String()), "\n", " "))
				}
			}
		default:
			return fail("unknown directive %q", f[0])
		}
	}
	return out.String(), nil
}
