package qos

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/rdt"
)

func TestLLCIsADeprecatedAliasOfRDTOfflineCeilings(t *testing.T) {
	pol, err := ParsePolicy("old.yaml", []byte("version: 1\nllc:\n  offlineWaysMax: 25%\n  offlineMemBandwidthMax: 40%\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := rdt.DefaultPolicy()
	want.Offline.WaysCeiling, want.Offline.MBCeiling = rdt.Ways{Share: 0.25}, 0.4
	if !reflect.DeepEqual(pol.RDT, want) {
		t.Errorf("rdt = %+v\nwant %+v", pol.RDT, want)
	}
	if len(pol.Deprecated) != 1 || pol.Deprecated[0].Line != 2 || pol.Deprecated[0].Path != "llc" || pol.Deprecated[0].Msg != llcDeprecated {
		t.Errorf("deprecated = %+v", pol.Deprecated)
	}
	if p, _ := ParsePolicy("new.yaml", []byte("version: 1\n")); p.Deprecated != nil {
		t.Errorf("no llc, deprecated = %+v", p.Deprecated)
	}
}

func TestLLCAndRDTTogetherAndAliasProblemsPointAtLLC(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []Problem
	}{
		{"version: 1\nllc:\n  offlineWaysMax: 25%\nrdt:\n  offline:\n    waysCeiling: 30%\n", []Problem{
			{6, "llc.offlineWaysMax", "set both here and as rdt.offline.waysCeiling (line 6); keep rdt.offline.waysCeiling"},
		}},
		{"version: 1\nllc:\n  offlineMemBandwidthMax: 5%\n", []Problem{
			{3, "rdt.offline.mbFloor", "10% is above rdt.offline.mbCeiling 5%"},
		}},
	} {
		_, err := ParsePolicy("p.yaml", []byte(tc.file))
		var pe *PolicyError
		if !errors.As(err, &pe) {
			t.Fatalf("%q: err = %v", tc.file, err)
		}
		if !reflect.DeepEqual(pe.Problems, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.file, pe.Problems, tc.want)
		}
	}
}
