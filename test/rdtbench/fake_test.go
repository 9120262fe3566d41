package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/rdt"
)

// TestFakeEndToEnd runs the whole path on the fake mount: the burst's
// latency shrinks offline's ways and MB on the socket where it streams,
// the counters and latency respond, calm grows offline back one ramp
// step per second up to where online stays within target, and after the
// burst back to the ceilings.
func TestFakeEndToEnd(t *testing.T) {
	rep, err := runFake(fakeConfig{Target: 2 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failed) > 0 {
		t.Fatalf("failed intents: %+v", rep.Failed)
	}
	var got []string
	for _, w := range rep.Writes {
		got = append(got, w.At.String()+" "+strings.ReplaceAll(strings.TrimSpace(w.Text), "\n", " "))
	}
	want := []string{
		// Created at the ceilings: 5 of 11 ways, 50%.
		"0s L3:0=1f;1=1f MB:0=50;1=50",
		// Burst starts at t=3s; offline at its ceilings puts online at
		// 1ms + 8ms x 5/11 x 0.5 = 2.8ms > 2ms, and the counters blame it
		// on socket 0 only: floors there at the next decision.
		"3.1s L3:0=3 MB:0=10",
		// 1.15ms, first seen at 3.2s, is calm (< 80% of 2ms): after the
		// 5s hold, one step a second while online stays calm (3 ways,
		// 20%: 1.44ms)...
		"8.2s L3:0=7 MB:0=20",
		// ...to 4 ways, 30%: 1.87ms is not calm, so offline holds there.
		"9.2s L3:0=f MB:0=30",
		// Burst ends at t=20s: calm, hold, then the ramp to the ceilings.
		"25.1s L3:0=1f MB:0=40",
		"26.1s MB:0=50",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("offline schemata writes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i, lat := range rep.Latencies {
		if lat > 2*time.Millisecond && i > 31 {
			t.Errorf("tick %d: online p99 %v above target after the controller reacted", i, lat)
		}
	}
	if rep.Reasons[31] != rdt.ReasonHarm {
		t.Errorf("reason at the burst = %s, want %s", rep.Reasons[31], rdt.ReasonHarm)
	}
	t.Logf("\n%s", rep)
}
