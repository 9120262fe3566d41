package cgroup

import (
	"context"
	"path"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// idleProbe remembers whether the kernel has cpu.idle (v1 and v2 since
// Linux 5.15). It is probed once, on the first read of an existing offline
// parent; a kernel without it is "unsupported", not a failure, and offline
// work then relies on the minimal weight alone.
type idleProbe struct {
	probed    bool
	supported bool
}

// read returns the parent's idle flag and whether the kernel has one.
func (p *idleProbe) read(fsys FS, parent string, cfg Config) (idle, supported bool) {
	if p.probed && !p.supported {
		return false, false
	}
	b, err := fsys.ReadFile(path.Join(parent, "cpu.idle"))
	if err != nil {
		if !p.probed && cgroupfs.IsGone(err) && cgroupfs.CgroupExists(fsys, parent) {
			p.probed = true
			cfg.Log.Info("cpu.idle unsupported by this kernel; offline keeps only the minimal weight", "cgroup", parent)
		}
		return false, false
	}
	p.probed, p.supported = true, true
	v, err := cgroupfs.ParseInt(b)
	return err == nil && v == 1, true
}

// weightAndIdle holds the offline parent at the plan's weight (v1
// cpu.shares, v2 cpu.weight, already converted by the caller) and idle
// flag where the kernel has cpu.idle. Order matters: once a group is idle
// the kernel rejects weight writes with EINVAL (and reports its own
// weight), so the weight is only held while the group is not idle: an
// idle group wanted idle is left alone, a group to become idle gets its
// weight first, and a group to stop being idle is cleared before its
// weight is written.
func (p *idleProbe) weightAndIdle(ctx context.Context, o *outcome, fsys FS, parent string, cfg Config, weightFile string, weight uint64, wantIdle bool) {
	idle, supported := p.read(fsys, parent, cfg)
	if supported && idle && wantIdle {
		return
	}
	if supported && idle {
		o.run(ctx, step{fs: fsys, cgroup: parent, file: "cpu.idle", want: "0", same: sameInt(0)})
	}
	w := strconv.FormatUint(weight, 10)
	o.run(ctx, step{fs: fsys, cgroup: parent, file: weightFile, want: w, same: sameInt(int64(weight))})
	if supported && wantIdle {
		o.run(ctx, step{fs: fsys, cgroup: parent, file: "cpu.idle", want: "1", same: sameInt(1)})
	}
}

func microseconds(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
