package trace

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestGenericExampleRoundTrip(t *testing.T) {
	f, err := os.Open("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := DecodeGeneric(f, "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Hosts) != 3 || g.Hosts[0].CPU != 32000 || g.Hosts[0].Memory != 128<<30 || g.Hosts[0].Disk != 1<<40 {
		t.Fatalf("hosts decoded wrong: %+v", g.Hosts[0])
	}
	if g.Apps[2].CPU != 500 || g.Apps[3].GPU.SharedMilli != 250 || g.Apps[0].Curves["cpu"][1] != 1 {
		t.Fatalf("apps decoded wrong: %+v", g.Apps)
	}
	var buf bytes.Buffer
	if err := EncodeGeneric(&buf, g); err != nil {
		t.Fatal(err)
	}
	g2, err := DecodeGeneric(&buf, "round-trip")
	if err != nil {
		t.Fatalf("re-decode: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(g, g2) {
		t.Fatalf("round trip changed the trace:\n%+v\n%+v", g, g2)
	}
}

func TestGenericBadInput(t *testing.T) {
	base := "version: 1\nhosts:\n  - {name: h, cpu: 8, memory: 16Gi}\napps:\n  - {name: a, cpu: 1, memory: 1Gi}\nrequests:\n  - {app: a, count: 1}\n"
	cases := []struct{ in, want string }{
		{"", "f.yaml: invalid generic trace: empty file"},
		{base + "bogus: 1\n", "line 8: field bogus not found in type trace.Generic"},
		{strings.Replace(base, "cpu: 8", "cpu: eight", 1), `line 3: cpu "eight": want cores`},
		{strings.Replace(base, "16Gi", "16Gb", 1), `line 3: size "16Gb"`},
		{strings.Replace(base, "version: 1", "version: 2", 1), "f.yaml:1: version: got 2, want 1"},
		{strings.Replace(base, "app: a,", "app: nope,", 1), `f.yaml:7: requests[0].app: unknown app "nope"`},
		{strings.Replace(base, "count: 1}", "count: 0}", 1), "f.yaml:7: requests[0].count: must be at least 1, got 0"},
		{base + "---\nversion: 1\n", "more than one document"},
		{strings.Replace(base, "memory: 1Gi}", "memory: 1Gi, curves: {cpu: [0.5, 2]}}", 1),
			"f.yaml:5: apps[0].curves.cpu: has 2 points, curve_points is 0\nf.yaml:5: apps[0].curves.cpu[1]: 2 is outside [0,1]"},
		{strings.Replace(base, "memory: 1Gi}", "memory: 1Gi, spread: {max_skew: 0}}", 1), "apps[0].spread.max_skew: must be at least 1, got 0"},
		{strings.Replace(base, "{name: h,", "{name: h, count: 2, gpus: 1,", 1), "f.yaml:3: hosts[0].gpu_model: empty for a host with gpus"},
		{strings.Replace(base, "memory: 16Gi}", "memory: 16Gi}\n  - {name: h, cpu: 1, memory: 1}", 1), `f.yaml:4: hosts[1].name: duplicate host "h"`},
		{strings.Replace(base, "memory: 16Gi}", "memory: 16Gi, cost: -1}", 1), "f.yaml:3: hosts[0].cost: -1: want a finite cost >= 0"},
		{strings.Replace(base, "count: 1}", "count: 1, on: [nope]}", 1), `f.yaml:7: requests[0].on[0]: unknown host "nope"`},
		{strings.Replace(base, "count: 1}", "count: 1, on: [h, h]}", 1), "f.yaml:7: requests[0].on: 2 existing placements for a count of 1"},
		{strings.Replace(base, "memory: 1Gi}", "memory: 1Gi, anti_affinity: [{app: a, max_together: 0}]}", 1), `apps[0].anti_affinity[0].max_together: 0 for the app itself`},
	}
	for _, c := range cases {
		_, err := DecodeGeneric(strings.NewReader(c.in), "f.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("input:\n%s\n got %v\nwant containing %q", c.in, err, c.want)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v does not wrap ErrInvalid", err)
		}
	}
}

// Every problem is reported at once.
func TestGenericReportsAllProblems(t *testing.T) {
	in := "version: 3\nhosts: []\napps:\n  - {name: a, cpu: 1, memory: 1}\nrequests:\n  - {app: b, count: -1}\n"
	_, err := DecodeGeneric(strings.NewReader(in), "f.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"f.yaml:1: version", "f.yaml:2: hosts: no hosts", "f.yaml:6: requests[0].app", "f.yaml:6: requests[0].count"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nmissing %q", err, want)
		}
	}
}

func TestQuantities(t *testing.T) {
	cpu := map[string]MilliCPU{"4": 4000, "0.5": 500, "500m": 500, "0": 0, "1.25": 1250}
	for in, want := range cpu {
		if got, err := ParseMilliCPU(in); err != nil || got != want {
			t.Errorf("ParseMilliCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "1.0005", "x", "m", "-5m", "NaN", "1e300"} {
		if _, err := ParseMilliCPU(in); err == nil {
			t.Errorf("ParseMilliCPU(%q) accepted", in)
		}
	}
	b := map[string]Bytes{"1Ki": 1024, "2Gi": 2 << 30, "3G": 3e9, "17": 17}
	for in, want := range b {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "1.5Gi", "Gi", "9999999999Ti", "1gi"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func FuzzDecodeGeneric(f *testing.F) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	f.Add("version: 1\nhosts: [{name: h, cpu: 1, memory: 1}]\napps: []\nrequests: []\n")
	f.Add("version: 1\ncurve_points: 16\nhosts: [{name: h, cpu: 1, memory: 1, cost: 2}]\n" +
		"apps: [{name: a, cpu: 1, memory: 1, curves: {cpu: '1 0 .5 0 0 0 0 0 0 0 0 0 0 0 0 0'}}]\nrequests: [{app: a, count: 2, on: [h]}]\n")
	f.Fuzz(func(t *testing.T, in string) {
		g, err := DecodeGeneric(strings.NewReader(in), "f")
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		var buf bytes.Buffer
		if err := EncodeGeneric(&buf, g); err != nil {
			t.Fatal(err)
		}
		g2, err := DecodeGeneric(&buf, "again")
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(g, g2) {
			t.Fatalf("round trip changed:\n%+v\n%+v", g, g2)
		}
	})
}

func FuzzParseQuantities(f *testing.F) {
	for _, s := range []string{"4", "0.5", "500m", "16Gi", "3G", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseMilliCPU(s); err == nil {
			if v < 0 {
				t.Fatalf("negative cpu %d from %q", v, s)
			}
			out, _ := v.MarshalYAML()
			var back MilliCPU
			switch o := out.(type) {
			case int64:
				back, err = ParseMilliCPU(itoa(o))
			case string:
				back, err = ParseMilliCPU(o)
			}
			if err != nil || back != v {
				t.Fatalf("cpu %q -> %d -> %v -> %d, %v", s, v, out, back, err)
			}
		}
		if v, err := ParseBytes(s); err == nil && v < 0 {
			t.Fatalf("negative size %d from %q", v, s)
		}
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// JSON is YAML: a generic file may be written as JSON, with the same
// strictness and line numbers.
func TestGenericJSON(t *testing.T) {
	in := `{"version": 1,
 "hosts": [{"name": "h", "count": 2, "cpu": "500m", "memory": "1Gi"}],
 "apps": [{"name": "a", "cpu": 0.25, "memory": 1024}],
 "requests": [{"app": "a", "count": 3}]}`
	g, err := DecodeGeneric(strings.NewReader(in), "c.json")
	if err != nil {
		t.Fatal(err)
	}
	if g.Hosts[0].CPU != 500 || g.Apps[0].CPU != 250 || g.Apps[0].Memory != 1024 || len(g.Hosts[0].Names()) != 2 {
		t.Fatalf("decoded %+v", g)
	}
	_, err = DecodeGeneric(strings.NewReader(strings.Replace(in, `"count": 3`, `"count": 3, "extra": true`, 1)), "c.json")
	if err == nil || !strings.Contains(err.Error(), "line 4: field extra not found") {
		t.Fatalf("unknown JSON field: %v", err)
	}
}

func TestGenericCostAndExistingPlacements(t *testing.T) {
	in := "version: 1\nhosts:\n  - {name: h, count: 2, cpu: 8, memory: 16Gi, cost: 2.5}\n  - {name: g, cpu: 8, memory: 16Gi}\napps:\n  - {name: a, cpu: 1, memory: 1Gi}\nrequests:\n  - {app: a, count: 3, on: [h-1, h-1]}\n"
	g, err := DecodeGeneric(strings.NewReader(in), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if g.Hosts[0].UnitCost() != 2.5 || g.Hosts[1].UnitCost() != 1 {
		t.Errorf("unit costs %v, %v; want 2.5, 1", g.Hosts[0].UnitCost(), g.Hosts[1].UnitCost())
	}
	if !reflect.DeepEqual(g.Requests[0].On, []string{"h-1", "h-1"}) {
		t.Errorf("on decoded as %v", g.Requests[0].On)
	}
	var buf bytes.Buffer
	if err := EncodeGeneric(&buf, g); err != nil {
		t.Fatal(err)
	}
	g2, err := DecodeGeneric(&buf, "round-trip")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, g2) {
		t.Fatalf("round trip changed the trace:\n%+v\n%+v", g, g2)
	}
}

// A curve may be one string of numbers; it decodes as the list does, and
// long curves encode that way.
func TestCompactCurves(t *testing.T) {
	base := "version: 1\ncurve_points: 2\nhosts:\n  - {name: h, cpu: 8, memory: 16Gi}\napps:\n  - {name: a, cpu: 1, memory: 1Gi, curves: {cpu: CURVE}}\nrequests:\n  - {app: a, count: 1}\n"
	list, err := DecodeGeneric(strings.NewReader(strings.Replace(base, "CURVE", "[0.5, 1]", 1)), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compact, err := DecodeGeneric(strings.NewReader(strings.Replace(base, "CURVE", `"0.5 1"`, 1)), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(list, compact) {
		t.Fatalf("list %v, compact %v", list.Apps[0].Curves, compact.Apps[0].Curves)
	}
	_, err = DecodeGeneric(strings.NewReader(strings.Replace(base, "CURVE", `"0.5 x"`, 1)), "f.yaml")
	if err == nil || !strings.Contains(err.Error(), `curve point 1: "x" is not a number`) {
		t.Fatalf("bad point: %v", err)
	}
	long := make(Curve, 20)
	out, err := long.MarshalYAML()
	if s, ok := out.(string); err != nil || !ok || len(strings.Fields(s)) != 20 {
		t.Fatalf("a 20-point curve encodes as %#v", out)
	}
}
