package main

import (
	"fmt"
	"time"
)

// counters is one reading of every exact CPU counter the benchmark uses.
// All come from v1 cpuacct.usage (nanoseconds, updated at every context
// switch and tick), the host's from the root cgroup: /proc/stat is
// sampled at the tick and would not add up with the cgroups' counters.
// The agent runs alone in its own cgroup (tree.agent), so its figure is
// exact too (its BPF programs' run time is charged by the kernel to the
// tasks they run beside, not to it).
type counters struct {
	at                                      time.Time
	host, online, loadgen, offline, spinner time.Duration
	agent                                   time.Duration
}

func readCounters(t tree) (counters, error) {
	c := counters{at: time.Now()}
	for _, x := range []struct {
		cg  string
		dst *time.Duration
	}{{"/", &c.host}, {t.online(), &c.online}, {t.loadgen(), &c.loadgen}, {t.offline(), &c.offline}, {t.spinner(), &c.spinner}, {t.agent(), &c.agent}} {
		var err error
		if *x.dst, err = t.cpuUsage(x.cg); err != nil {
			return c, fmt.Errorf("cgroup cpu usage: %w", err)
		}
	}
	return c, nil
}

// window is the CPU each part used between two readings on cpus CPUs.
func window(a, b counters, cpus int) cpuWindow {
	s := func(x, y time.Duration) float64 { return (y - x).Seconds() }
	return cpuWindow{
		capacity: float64(cpus) * b.at.Sub(a.at).Seconds(),
		host:     s(a.host, b.host),
		online:   s(a.online, b.online),
		loadgen:  s(a.loadgen, b.loadgen),
		offline:  s(a.offline, b.offline),
		spinner:  s(a.spinner, b.spinner),
	}
}
