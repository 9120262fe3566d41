package tc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/netqos"
)

func TestDefaultRouteKeyword(t *testing.T) {
	p := newPair(t)
	pol := policy()
	pol.Devices = []string{netqos.DefaultRoute}
	if _, err := p.e.Links(pol); err == nil {
		t.Error("default-route without a default route: no error")
	}
	p.tx.Run(t, "ip", "route", "add", "default", "via", "10.201.0.2", "dev", "up0")
	links, err := p.e.Links(pol)
	if err != nil || len(links) != 1 || links[0].Device != "up0" {
		t.Fatalf("default-route resolved to %+v, %v; want up0", links, err)
	}
}

// TestSpeedChangeReshapes: with no policy link rate, the tree follows the
// speed the driver reports, and a speed change rewrites only what depends
// on it.
func TestSpeedChangeReshapes(t *testing.T) {
	p := newPair(t)
	sys := t.TempDir()
	p.e.sysNet = sys
	if err := os.MkdirAll(filepath.Join(sys, "up0"), 0o755); err != nil {
		t.Fatal(err)
	}
	setSpeed := func(s string) {
		if err := os.WriteFile(filepath.Join(sys, "up0", "speed"), []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol := policy()
	pol.LinkRateBitsPerSec = 0
	setSpeed("1000")
	plan, st := p.plan(t, pol, netqos.State{}, time.Unix(1, 0))
	mustApply(t, p.e, plan)
	have, _ := p.e.Observe("up0")
	if c := findClass(have, netqos.LinkClassID()); c.RateBitsPerSec != 1000*mbit {
		t.Fatalf("link class at 1000 Mbit/s: %+v", c)
	}
	setSpeed("100")
	plan, _ = p.plan(t, pol, st, time.Unix(2, 0))
	ch := mustApply(t, p.e, plan)
	if len(ch) == 0 {
		t.Fatal("speed change wrote nothing")
	}
	have, _ = p.e.Observe("up0")
	if c := findClass(have, netqos.LinkClassID()); c.RateBitsPerSec != 100*mbit {
		t.Errorf("link class after the speed change: %+v", c)
	}
	if c := findClass(have, netqos.ClassID(netqos.Gold)); c.CeilBitsPerSec != 100*mbit {
		t.Errorf("gold ceil after the speed change: %+v", c)
	}
}

func findClass(o netqos.Observed, id uint32) netqos.Class {
	for _, c := range o.Classes {
		if c.ID == id {
			return c
		}
	}
	return netqos.Class{}
}

// TestLeafQdisc: the tiers' leaf qdisc is installed where the kernel has
// it; where it does not (no fq_codel on the development kernel), that part
// reports ErrNotSupported, the tree is still installed and the enforcer
// stops asking for the leaf.
func TestLeafQdisc(t *testing.T) {
	p := newPair(t)
	pol := policy()
	plan, _ := p.plan(t, pol, netqos.State{}, time.Unix(1, 0))
	if len(plan.Devices[0].Tree.Leaves) != 3 {
		t.Fatalf("plan without leaves: %+v", plan.Devices[0].Tree)
	}
	var leaf, tree *Result
	res := p.e.Apply(t.Context(), plan)
	for i := range res {
		switch res[i].Part {
		case "leaf":
			leaf = &res[i]
		case "tree":
			tree = &res[i]
		}
	}
	if tree == nil || tree.Err != nil || leaf == nil {
		t.Fatalf("results %+v", res)
	}
	have, _ := p.e.Observe("up0")
	if leaf.Err == nil {
		if len(have.Leaves) != 3 || have.Leaves[0].Kind != "fq_codel" {
			t.Errorf("leaves installed: %+v", have.Leaves)
		}
		return
	}
	if !errors.Is(leaf.Err, ErrNotSupported) {
		t.Fatalf("leaf error %v, want ErrNotSupported", leaf.Err)
	}
	if len(have.Classes) != 4 {
		t.Errorf("tree not installed beside the refused leaf: %+v", have)
	}
	plan, _ = p.plan(t, pol, netqos.State{}, time.Unix(2, 0))
	if n := len(plan.Devices[0].Tree.Leaves); n != 0 {
		t.Errorf("after the refusal the plan still asks for %d leaves", n)
	}
}
