package sample

import (
	"strings"
	"testing"
	"time"
)

func TestPSITriggerValidate(t *testing.T) {
	ok := PSITrigger{Resource: "memory", Stall: 150 * time.Millisecond, Window: time.Second}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid trigger: %v", err)
	}
	for _, tc := range []struct {
		mut  func(*PSITrigger)
		want string
	}{
		{func(t *PSITrigger) { t.Resource = "irq" }, `resource "irq"`},
		{func(t *PSITrigger) { t.Window = 400 * time.Millisecond }, "window 400ms outside"},
		{func(t *PSITrigger) { t.Window = 11 * time.Second }, "window 11s outside"},
		{func(t *PSITrigger) { t.Stall = 0 }, "stall 0s must be positive"},
		{func(t *PSITrigger) { t.Stall = 2 * time.Second }, "at most the window"},
		{func(t *PSITrigger) { t.Stall = 150*time.Millisecond + 1 }, "whole microseconds"},
	} {
		tr := ok
		tc.mut(&tr)
		if err := tr.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: validate = %v, want %q", tr, err, tc.want)
		}
	}
}

func TestPSITriggerText(t *testing.T) {
	tr := PSITrigger{Resource: "cpu", Full: true, Stall: 150 * time.Millisecond, Window: 2 * time.Second}
	if got, want := tr.text(), "full 150000 2000000\x00"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	if got := tr.file("/proc"); got != "/proc/pressure/cpu" {
		t.Errorf("file = %q", got)
	}
	tr.Cgroup = "/sys/fs/cgroup/unified/x"
	if got := tr.file("/proc"); got != "/sys/fs/cgroup/unified/x/cpu.pressure" {
		t.Errorf("cgroup file = %q", got)
	}
}

func TestPSITriggerFallback(t *testing.T) {
	for _, tc := range []struct {
		stall, window, wantStall, wantWindow time.Duration
		ok                                   bool
	}{
		{150 * time.Millisecond, time.Second, 300 * time.Millisecond, 2 * time.Second, true},
		{100 * time.Millisecond, 500 * time.Millisecond, 400 * time.Millisecond, 2 * time.Second, true},
		{time.Second, 3 * time.Second, 1333334 * time.Microsecond, 4 * time.Second, true}, // rounded up
		{9 * time.Second, 9 * time.Second, 10 * time.Second, 10 * time.Second, true},
		{time.Second, 2 * time.Second, time.Second, 2 * time.Second, false},
		{time.Second, 10 * time.Second, time.Second, 10 * time.Second, false},
	} {
		tr := PSITrigger{Resource: "cpu", Stall: tc.stall, Window: tc.window}
		f, ok := tr.unprivilegedFallback()
		if ok != tc.ok || f.Stall != tc.wantStall || f.Window != tc.wantWindow {
			t.Errorf("fallback(%v/%v) = %v/%v %v; want %v/%v %v", tc.stall, tc.window, f.Stall, f.Window, ok, tc.wantStall, tc.wantWindow, tc.ok)
		}
		if ok {
			if err := f.validate(); err != nil {
				t.Errorf("fallback trigger invalid: %v", err)
			}
		}
	}
}
