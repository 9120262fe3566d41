package resctrl_test

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestRealResctrlAgreesWithTheFake probes a real resctrl mount and checks
// that the kernel reads back the text the model writes and rejects a
// non-contiguous mask with the fake's words. It runs only on hosts with
// RDT (SLUICE_REQUIRE=resctrl makes its absence a failure).
func TestRealResctrlAgreesWithTheFake(t *testing.T) {
	root := kerneltest.RequireResctrl(t)
	fsys := resctrl.Dir(root)
	hw, err := resctrl.Probe(fsys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probed: %+v", hw)
	l3, ok := hw.L3()
	if !ok {
		t.Skip("no L3 allocation on this host")
	}
	group := fmt.Sprintf("sluicetest-%d", os.Getpid()) // not "sluice-": a running agent would remove it
	if err := fsys.Mkdir(group); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsys.Remove(group) })

	var want rdt.Schemata
	low := l3.CBMMask & -l3.CBMMask
	mask := low * ((1 << max(l3.MinCBMBits, 1)) - 1)
	for _, name := range []string{l3.Name} {
		for _, d := range l3.Domains {
			want.Set(name, d, mask)
		}
	}
	if hw.MB != nil {
		for _, d := range hw.MB.Domains {
			want.Set(rdt.ResourceMB, d, uint64(hw.MB.RoundMB(max(hw.MB.Min, hw.MB.MaxValue/2))))
		}
	}
	if err := fsys.WriteFile(group+"/schemata", []byte(want.String())); err != nil {
		t.Fatalf("write %q: %v", want.String(), err)
	}
	b, err := fsys.ReadFile(group + "/schemata")
	if err != nil {
		t.Fatal(err)
	}
	got, err := rdt.ParseSchemata(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if d := want.Diff(got); !d.Empty() {
		t.Errorf("kernel holds %q, wrote %q", b, want.String())
	}
	if l3.SparseMasks || bits.OnesCount64(l3.CBMMask) < 3 {
		return
	}
	gap := low | low<<2
	err = fsys.WriteFile(group+"/schemata", []byte(fmt.Sprintf("%s:%d=%x\n", l3.Name, l3.Domains[0], gap)))
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("non-contiguous mask: %v, want EINVAL", err)
	}
	status, _ := fsys.ReadFile("info/last_cmd_status")
	if !strings.Contains(string(status), "non-consecutive 1-bits") {
		t.Errorf("last_cmd_status = %q, want the fake's message", status)
	}
}
