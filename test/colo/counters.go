package main

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// hostCPU is /proc/stat's all-CPU line at one moment, in seconds.
type hostCPU struct {
	busy, total float64
	cpus        int
}

func readHostCPU(fs procfs.FS) (hostCPU, error) {
	s, err := fs.Stat()
	if err != nil {
		return hostCPU{}, fmt.Errorf("host cpu: %w", err)
	}
	c := s.CPUTotal
	// Guest time is already inside user and nice; iowait is idle time.
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return hostCPU{busy: busy, total: busy + c.Idle + c.Iowait, cpus: len(s.CPU)}, nil
}

// counters is everything a phase measures at its start and end.
type counters struct {
	at                       time.Time
	host                     hostCPU
	online, loadgen, offline time.Duration
	agentCPUSeconds          float64
	agentRSSBytes            uint64
	agentMeasured            bool
}

func readCounters(fs procfs.FS, t tree, agentPID int) (counters, error) {
	c := counters{at: time.Now()}
	var err error
	if c.host, err = readHostCPU(fs); err != nil {
		return c, err
	}
	for _, x := range []struct {
		cg  string
		dst *time.Duration
	}{{t.online(), &c.online}, {t.loadgen(), &c.loadgen}, {t.offline(), &c.offline}} {
		if *x.dst, err = t.cpuUsage(x.cg); err != nil {
			return c, fmt.Errorf("cgroup cpu usage: %w", err)
		}
	}
	if agentPID > 0 {
		p, err := fs.Proc(agentPID)
		if err != nil {
			return c, fmt.Errorf("sluice-agent process: %w", err)
		}
		st, err := p.Stat()
		if err != nil {
			return c, fmt.Errorf("sluice-agent /proc/%d/stat: %w", agentPID, err)
		}
		status, err := p.NewStatus()
		if err != nil {
			return c, fmt.Errorf("sluice-agent /proc/%d/status: %w", agentPID, err)
		}
		c.agentCPUSeconds, c.agentRSSBytes, c.agentMeasured = st.CPUTime(), status.VmRSS, true
	}
	return c, nil
}
