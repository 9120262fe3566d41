package agent

import (
	"errors"
	"io/fs"
	"time"

	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/qos"
)

// fastCPU reads the fast tick's exact counters back to back — the root
// cgroup's, the offline parent's and every online and system workload's —
// and returns each class's CPU since the previous read (see
// qos.CPUAccounting). ok is false when there is no rate yet; when the root
// counter cannot be read (then host busy time is hostBusyMilli, from
// /proc/stat). Offline workloads are read only when the offline parent is
// missing: the parent's counter holds them all.
func (a *Agent) fastCPU(now time.Time, hostBusyMilli int64) (c qos.CPUAccounting, ok bool) {
	host := sample.HostBusy{Exact: true}
	var err error
	if host.Total, err = a.cfg.Usage.CPU("/"); err != nil {
		host = sample.HostBusy{Milli: hostBusyMilli}
		a.warnOnce("root-cpu", "the root cgroup's CPU counter cannot be read; host busy time comes from /proc/stat, sampled at the scheduler tick", "err", err)
	}
	offline, offlineOK := a.offlineParentCPU(now)
	ws := a.fastReads[:0]
	for _, w := range a.workloads {
		if w.Class == qos.ClassOffline && offlineOK {
			continue
		}
		total, err := a.cfg.Usage.CPU(w.CgroupPath)
		if err != nil {
			continue // gone since the container tick: absent from this window
		}
		ws = append(ws, sample.WorkloadCPU{CgroupPath: w.CgroupPath, Class: w.Class, Total: total})
	}
	a.fastReads = ws
	// Stamped after the reads, which take microseconds: each counter's
	// window is between two such stamps.
	return a.classCPU.Observe(a.now(), host, offline, offlineOK, ws)
}

// offlineParentCPU reads the offline parent's cumulative CPU time. A parent
// that does not exist yet (a dry run on a fresh host) is looked for again
// after a container interval, or as soon as an enforcement pass may have
// created it, not on every fast tick: each miss costs a failed path walk.
func (a *Agent) offlineParentCPU(now time.Time) (time.Duration, bool) {
	p := a.policy.OfflineParent
	if p == "" || (a.offlineMissing.path == p && now.Before(a.offlineMissing.until)) {
		return 0, false
	}
	total, err := a.cfg.Usage.CPU(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			a.offlineMissing.path, a.offlineMissing.until = p, now.Add(a.policy.Sampling.ContainerInterval)
		}
		return 0, false
	}
	return total, true
}
