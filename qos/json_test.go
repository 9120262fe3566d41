package qos

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/sluicehq/sluice/rdt"
)

// TestJSONNamesAreCamelCase keeps the agent's /state document in one
// naming style: every exported field reachable from the observation, the
// plan, the decision state and the intent summaries carries a json tag
// whose name starts lower-case (Go's default would be the field name).
func TestJSONNamesAreCamelCase(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, at string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] ||
			typ.PkgPath() != reflect.TypeFor[Plan]().PkgPath() && typ.PkgPath() != reflect.TypeFor[rdt.Plan]().PkgPath() {
			return
		}
		seen[typ] = true
		if typ.Implements(reflect.TypeFor[encoding.TextMarshaler]()) {
			return // written as text (rdt.Schemata)
		}
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "":
				t.Errorf("%s.%s (in %s) has no json name", typ.Name(), f.Name, at)
			case name != "-" && !unicode.IsLower(rune(name[0])):
				t.Errorf("%s.%s (in %s) is %q in JSON, want a lower-case start", typ.Name(), f.Name, at, name)
			}
			walk(f.Type, at+"."+f.Name)
		}
	}
	for _, root := range []reflect.Type{reflect.TypeFor[Observation](), reflect.TypeFor[Plan](), reflect.TypeFor[State](), reflect.TypeFor[IntentSummary]()} {
		walk(root, root.Name())
	}
	if len(seen) < 10 {
		t.Fatalf("walked only %d types: the walk is broken", len(seen))
	}
}

// A plan survives the /state round trip: reasons are written as their
// rule and figures plus the wording, and read back to the same words
// (sluicectl status decodes the document the agent serves).
func TestPlanJSONRoundTrip(t *testing.T) {
	obs, pol := bigObservation(300, 2), DefaultPolicy()
	pol.Kill.Grace = 0
	for c := range 8 {
		obs.Host.CPUs = append(obs.Host.CPUs, c)
	}
	obs.Workloads[1].CpusetMode, obs.Workloads[1].CPUsWanted = CpusetExclusive, 2
	plan, _ := Decide(obs, pol, Targets{}, State{})
	if len(plan.Kills) == 0 || len(plan.Cpusets) == 0 {
		t.Fatalf("want a plan with kills and cpusets: %+v", plan)
	}
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"rule":"kill-over-limit"`) || !strings.Contains(string(data), `"text":"offline memory`) {
		t.Errorf("JSON lacks the kill rule or its wording: %.400s", data)
	}
	var back Plan
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(plan) {
		t.Errorf("plan changed in the round trip")
	}
	want, got := plan.Intents(), back.Intents()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("intents after the round trip:\n%+v\nwant\n%+v", got, want)
	}
	if back.Equal(Plan{}) || plan.Equal(func() Plan { p := plan; p.OfflineCPU.QuotaMicros++; return p }()) {
		t.Error("Equal ignores intent values")
	}
}

// An older agent wrote reasons as plain text: they still decode, as words.
func TestReasonReadsPlainText(t *testing.T) {
	var in CPUIntent
	if err := json.Unmarshal([]byte(`{"budgetMilli": 700, "reason": "offline cpu budget 700m"}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.Reason.IsZero() || in.Reason.String() != "offline cpu budget 700m" || in.BudgetMilli != 700 {
		t.Errorf("decoded %+v (%q)", in, in.Reason.String())
	}
	var none Reason
	if err := json.Unmarshal([]byte(`{"rule": ""}`), &none); err != nil || !none.IsZero() {
		t.Errorf("empty rule: %+v, %v", none, err)
	}
}
