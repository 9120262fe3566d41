package resctrl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/rdt"
)

// Monitor reads every Sluice group's monitoring counters (and the default
// group's, under rdt.GroupDefault) for the agent's tick.
type Monitor struct {
	fsys FS
	hw   rdt.Hardware
}

// NewMonitor returns a reader over fsys; it reads only the events hw lists.
func NewMonitor(fsys FS, hw rdt.Hardware) *Monitor { return &Monitor{fsys: fsys, hw: hw} }

// Read takes one sample at the given time. A group removed while it is
// read is skipped; other errors are joined and returned with what was read.
func (m *Monitor) Read(at time.Time) (rdt.MonSample, error) {
	s := rdt.MonSample{At: at, Domains: map[int]map[string]rdt.RawCounters{}}
	if len(m.hw.Monitoring) == 0 {
		return s, nil
	}
	names, err := m.fsys.ReadDir("")
	if err != nil {
		return s, fmt.Errorf("resctrl monitor: %w", err)
	}
	groups := []string{rdt.GroupDefault}
	for _, n := range names {
		if strings.HasPrefix(n, rdt.GroupPrefix) {
			groups = append(groups, n)
		}
	}
	var errs []error
	for _, g := range groups {
		dir := join(g, "mon_data")
		doms, err := m.fsys.ReadDir(dir)
		if err != nil {
			if !isNotExist(err) {
				errs = append(errs, fmt.Errorf("resctrl monitor %s: %w", dir, err))
			}
			continue
		}
		for _, dn := range doms {
			d, ok := monDomain(dn)
			if !ok {
				continue
			}
			var c rdt.RawCounters
			for _, ev := range []struct {
				name string
				v    *uint64
				has  *bool
			}{
				{rdt.EventOccupancy, &c.OccupancyBytes, &c.HasOccupancy},
				{rdt.EventMBMTotal, &c.TotalBytes, &c.HasTotal},
				{rdt.EventMBMLocal, &c.LocalBytes, &c.HasLocal},
			} {
				if !m.hw.Monitors(ev.name) {
					continue
				}
				file := dir + "/" + dn + "/" + ev.name
				b, err := m.fsys.ReadFile(file)
				if err != nil {
					if !isNotExist(err) {
						errs = append(errs, fmt.Errorf("resctrl monitor %s: %w", file, err))
					}
					continue
				}
				txt := strings.TrimSpace(string(b))
				if txt == "Unavailable" || txt == "Error" {
					continue
				}
				v, err := strconv.ParseUint(txt, 10, 64)
				if err != nil {
					errs = append(errs, fmt.Errorf("resctrl monitor %s: %w", file, err))
					continue
				}
				*ev.v, *ev.has = v, true
			}
			if s.Domains[d] == nil {
				s.Domains[d] = map[string]rdt.RawCounters{}
			}
			s.Domains[d][g] = c
		}
	}
	return s, errors.Join(errs...)
}

// monDomain reads the domain id from "mon_L3_08".
func monDomain(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "mon_L3_")
	if !ok {
		return 0, false
	}
	d, err := strconv.Atoi(rest)
	return d, err == nil
}

// join names a file of a group ("" is the default group at the root).
func join(group, file string) string {
	if group == rdt.GroupDefault {
		return file
	}
	return group + "/" + file
}
