package resctrltest_test

import (
	"errors"
	"reflect"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

func TestProbeReadsBackEveryVariant(t *testing.T) {
	for name, hw := range resctrltest.Variants() {
		t.Run(name, func(t *testing.T) {
			got, err := resctrl.Probe(resctrltest.New(hw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, hw) {
				t.Errorf("probed\n%+v\nwant\n%+v", got, hw)
			}
		})
	}
}

func TestFakeRejectsWhatTheKernelRejects(t *testing.T) {
	cases := []struct {
		hw    rdt.Hardware
		write string
		msg   string
	}{
		{resctrltest.IntelL3(), "L3:0=070f\n", "The mask 70f has non-consecutive 1-bits"},
		{resctrltest.IntelL3(), "L3:0=fff\n", "Mask out of range"},
		{resctrltest.IntelL3(), "L3:1=ff\n", "Unknown domain 1"},
		{resctrltest.IntelL3(), "MB:0=50\n", "Unknown or unsupported resource name 'MB'"},
		{resctrltest.IntelL3(), "L3:0=ff", "schemata must end with a newline"},
		{resctrltest.IntelTwoSocket(), "L3:0=1\n", "Need at least 2 bits in the mask"},
		{resctrltest.IntelL3MB(), "MB:0=5\n", "MB value 5 out of range [10,100]"},
		{resctrltest.IntelL3MB(), "MB:0=110\n", "MB value 110 out of range [10,100]"},
		{resctrltest.IntelCDP(), "L3:0=ff\n", "Unknown or unsupported resource name 'L3'"},
		{resctrltest.AMD(), "L3:1=ff\n", "Unknown domain 1"},
		{resctrltest.AMD(), "MB:0=2049\n", "MB value 2049 out of range [0,2048]"},
	}
	for _, c := range cases {
		f := resctrltest.New(c.hw)
		before := f.Schemata("")
		err := f.WriteFile("schemata", []byte(c.write))
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%q: err = %v, want EINVAL", c.write, err)
		}
		status, _ := f.ReadFile("info/last_cmd_status")
		if string(status) != c.msg+"\n" {
			t.Errorf("%q: last_cmd_status = %q, want %q", c.write, status, c.msg)
		}
		if f.Schemata("") != before {
			t.Errorf("%q: a rejected write changed the schemata", c.write)
		}
	}
}

func TestFakeAppliesWholeWritesAndRounds(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelTwoSocket())
	if got, want := f.Schemata(""), "L3:0=7ff;1=7ff\nMB:0=100;1=100\n"; got != want {
		t.Errorf("default = %q, want %q", got, want)
	}
	// One bad line: nothing applied.
	if err := f.WriteFile("schemata", []byte("L3:0=3\nMB:0=1\n")); err == nil {
		t.Fatal("bad MB accepted")
	}
	if err := f.WriteFile("schemata", []byte("L3:1=3\nMB:0=11\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := f.Schemata(""), "L3:0=7ff;1=003\nMB:0=20;1=100\n"; got != want {
		t.Errorf("after write = %q, want %q", got, want)
	}
	// AMD: sparse masks are fine, values are absolute, names align.
	a := resctrltest.New(resctrltest.AMD())
	if err := a.WriteFile("schemata", []byte("L3:3=f0f\nMB:8=100\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := a.Schemata(""), "L3:0=ffff;3=0f0f;8=ffff\nMB:0=2048;3=2048;8=100\n"; got != want {
		t.Errorf("AMD = %q, want %q", got, want)
	}
	c := resctrltest.New(resctrltest.IntelCDP())
	if got, want := c.Schemata(""), "L3CODE:0=fffff\nL3DATA:0=fffff\n"; got != want {
		t.Errorf("CDP = %q, want %q", got, want)
	}
}

func TestFakeCLOSIDsAndTasks(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelL3MB()) // min(16, 8) = 8 CLOSIDs
	for i := range 7 {
		if err := f.Mkdir("g" + string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Mkdir("full"); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("8th group: %v, want ENOSPC", err)
	}
	if err := f.Mkdir("ga"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("existing group: %v, want EEXIST", err)
	}
	f.AddTask(42)
	if err := f.WriteFile("ga/tasks", []byte("42")); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("ga/tasks", []byte("43")); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("missing task: %v, want ESRCH", err)
	}
	if err := f.Remove("ga"); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.GroupOf(42); g != "" {
		t.Errorf("task of a removed group is in %q, want the default group", g)
	}
}
