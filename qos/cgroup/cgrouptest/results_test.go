package cgrouptest

import (
	"testing"

	"github.com/sluicehq/sluice/qos"
)

func TestResults(t *testing.T) {
	rs := []qos.IntentResult{
		{Intent: qos.IntentOfflineCPU, Target: "/a", Status: qos.ResultApplied},
		{Intent: qos.IntentOfflineMemory, Target: "/b", Status: qos.ResultFailed, Err: "write memory.max: busy"},
	}
	if got, want := Results(rs, func(r qos.IntentResult) string { return r.Target }), "/a=applied /b=failed(write memory.max: busy)"; got != want {
		t.Errorf("Results by target = %q, want %q", got, want)
	}
	if got := Results(nil, func(r qos.IntentResult) string { return r.Intent }); got != "" {
		t.Errorf("Results(nil) = %q, want empty", got)
	}
}
