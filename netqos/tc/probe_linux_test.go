package tc

import (
	"slices"
	"testing"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestProbe: the kinds Sluice needs are found and kinds no kernel has are
// not.
func TestProbe(t *testing.T) {
	kerneltest.RequireRoot(t)
	kinds := ProbeKinds()
	kinds.Qdiscs = append(kinds.Qdiscs, "sluice-none")
	kinds.Classifiers = append(kinds.Classifiers, "sluice-none")
	p, err := Probe(kinds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("qdiscs %v classifiers %v", p.Qdiscs, p.Classifiers)
	for _, k := range []string{"htb", "tbf", "pfifo", "clsact", "ingress"} {
		if !slices.Contains(p.Qdiscs, k) {
			t.Errorf("qdisc %s not found: %v", k, p.Qdiscs)
		}
	}
	for _, k := range []string{"bpf", "u32"} {
		if !slices.Contains(p.Classifiers, k) {
			t.Errorf("classifier %s not found: %v", k, p.Classifiers)
		}
	}
	if slices.Contains(p.Qdiscs, "sluice-none") || slices.Contains(p.Classifiers, "sluice-none") {
		t.Errorf("a kind no kernel has was reported: %+v", p)
	}
}
