package cgroup

import (
	"path"
	"time"
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
		if !p.probed && isGone(err) && exists(fsys, parent) {
			p.probed = true
			cfg.Log.Info("cpu.idle unsupported by this kernel; offline keeps only the minimal weight", "cgroup", parent)
		}
		return false, false
	}
	p.probed, p.supported = true, true
	v, err := parseInt(b)
	return err == nil && v == 1, true
}

func microseconds(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
