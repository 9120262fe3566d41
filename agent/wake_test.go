package agent

import (
	"testing"
	"time"
)

func TestWakeGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	g := wakeGate{armed: true}
	if !g.event(at(0)) {
		t.Fatal("an armed gate ignored an event")
	}
	if g.event(at(time.Millisecond)) {
		t.Error("a second event acted on before the first's decision")
	}
	if g.decided(at(20*time.Millisecond), 300) {
		t.Error("re-armed by the wake-up's own decision")
	}
	if g.decided(at(100*time.Millisecond), 300) || g.decided(at(200*time.Millisecond), 250) {
		t.Error("re-armed while the budget held or fell")
	}
	if g.event(at(300 * time.Millisecond)) {
		t.Error("acted on an event while disarmed")
	}
	if !g.decided(at(400*time.Millisecond), 350) {
		t.Error("did not re-arm when the budget grew")
	}
	if !g.event(at(500 * time.Millisecond)) {
		t.Error("re-armed gate ignored an event")
	}
	g.decided(at(520*time.Millisecond), 100)
	if g.decided(at(500*time.Millisecond+rearmAfter-time.Millisecond), 100) {
		t.Error("re-armed before rearmAfter with a steady budget")
	}
	if !g.decided(at(500*time.Millisecond+rearmAfter), 100) {
		t.Error("did not re-arm after rearmAfter")
	}
}
