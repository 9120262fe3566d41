package agent

import (
	"errors"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/qos"
)

// fastCPU reads the fast tick's exact counters back to back — the root
// cgroup's, the offline parent's and the online and system workloads'
// (a.fastPlan: one counter per workload, or one for a directory that holds
// only workloads of one class) — and returns each class's CPU since the
// previous read (see qos.CPUAccounting). ok is false when there is no rate
// yet; when the root counter cannot be read (then host busy time is
// hostBusyMilli, from /proc/stat). Offline workloads are read only when
// the offline parent is missing: the parent's counter holds them all.
func (a *Agent) fastCPU(now time.Time, hostBusyMilli int64) (c qos.CPUAccounting, ok bool) {
	host := sample.HostBusy{Exact: true}
	var err error
	if host.Total, err = a.cfg.Usage.CPU("/"); err != nil {
		host = sample.HostBusy{Milli: hostBusyMilli}
		a.warnOnce("root-cpu", "the root cgroup's CPU counter cannot be read; host busy time comes from /proc/stat, sampled at the scheduler tick", "err", err)
	}
	offline, offlineOK := a.offlineParentCPU(now)
	ws := a.fastReads[:0]
	for _, r := range a.fastPlan {
		if r.class == qos.ClassOffline && offlineOK {
			continue
		}
		total, err := a.cfg.Usage.CPU(r.path)
		if err != nil {
			continue // gone since the container tick: absent from this window
		}
		ws = append(ws, sample.WorkloadCPU{CgroupPath: r.path, Class: r.class, Total: total})
	}
	a.fastReads = ws
	// Stamped after the reads, which take microseconds: each counter's
	// window is between two such stamps.
	return a.classCPU.Observe(a.now(), host, offline, offlineOK, ws)
}

// fastRead is one counter the fast tick reads for a class: a workload's
// cgroup, or a directory whose counter is the sum of its workloads'.
type fastRead struct {
	path  string
	class qos.Class
}

// planFastReads chooses the fast tick's counters for ws: one per workload,
// except that a directory whose child cgroups are all workloads of one
// class, two or more, and which holds no process of its own, is read once
// for them all. The kernel charges CPU time to every level of the tree, so
// that directory's counter is exactly its workloads' sum (children that
// exited included, which keeps it monotonic). On a dry run without an
// offline parent, or a host with many online pods under one slice, this
// turns ten reads a second per workload into ten per directory (measured:
// 100 offline workloads under one directory, the agent's largest cost).
//
// The check is redone at every container tick, one directory listing and
// a one-byte read of cgroup.procs per candidate: a cgroup of another class
// created in the directory meanwhile is counted with it for at most that
// interval, until discovery lists it and the directory is read workload by
// workload again. A change of plan leaves the counters read anew out of
// one fast tick (a rate needs two readings), as a new workload is. A
// directory that is itself a workload, or the root, is never used: the
// first would count twice, the second is host busy time.
func (a *Agent) planFastReads(ws []qos.WorkloadSample) []fastRead {
	plan := a.fastPlan[:0]
	byDir := map[string][]int{}
	isWorkload := make(map[string]bool, len(ws))
	for i, w := range ws {
		isWorkload[w.CgroupPath] = true
		d := path.Dir(w.CgroupPath)
		byDir[d] = append(byDir[d], i)
	}
	for _, w := range ws {
		d := path.Dir(w.CgroupPath)
		idx := byDir[d]
		if idx == nil {
			continue // its directory is planned already
		}
		delete(byDir, d)
		// Offline workloads under the offline parent are read through
		// its counter while it exists: no need to look.
		offlineParent := w.Class == qos.ClassOffline && a.underOfflineParent(d)
		if !offlineParent && a.wholeClass(d, ws, idx, isWorkload) {
			plan = append(plan, fastRead{path: d, class: w.Class})
			continue
		}
		for _, i := range idx {
			plan = append(plan, fastRead{path: ws[i].CgroupPath, class: ws[i].Class})
		}
	}
	return plan
}

// underOfflineParent says whether dir is the policy's offline parent or
// below it.
func (a *Agent) underOfflineParent(dir string) bool {
	p := a.policy.OfflineParent
	return p != "" && (dir == p || strings.HasPrefix(dir, strings.TrimSuffix(p, "/")+"/"))
}

// wholeClass says whether dir holds only the workloads ws[idx] (its
// children, one class, two or more) and no process of its own.
func (a *Agent) wholeClass(dir string, ws []qos.WorkloadSample, idx []int, isWorkload map[string]bool) bool {
	if len(idx) < 2 || dir == "/" || dir == "." || isWorkload[dir] {
		return false
	}
	class := ws[idx[0]].Class
	for _, i := range idx[1:] {
		if ws[i].Class != class {
			return false
		}
	}
	m, err := a.cfg.Usage.Members(dir)
	if err != nil || m.Tasks || len(m.Children) != len(idx) {
		return false
	}
	for _, name := range m.Children {
		if !isWorkload[path.Join(dir, name)] {
			return false
		}
	}
	return true
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
