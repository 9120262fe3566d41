package resctrl

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/rdt"
)

// Probe reads the hardware model from a resctrl mount: info/<resource>/
// for each allocation resource, info/L3_MON for monitoring, and the
// default group's schemata for the domain ids (the kernel lists them
// there, and they need not be 0..n-1) and for what an unthrottled MB
// value is (100 on percent hosts; 2048 on AMD, whose MB values are
// absolute). An MB maximum above 100 is taken to mean absolute units.
func Probe(fsys FS) (rdt.Hardware, error) {
	var hw rdt.Hardware
	dirs, err := fsys.ReadDir("info")
	if err != nil {
		return hw, fmt.Errorf("probe resctrl: list info: %w", err)
	}
	rootText, err := fsys.ReadFile("schemata")
	if err != nil {
		return hw, fmt.Errorf("probe resctrl: %w", err)
	}
	root, err := rdt.ParseSchemata(string(rootText))
	if err != nil {
		return hw, fmt.Errorf("probe resctrl: default group: %w", err)
	}
	domains := func(res string) []int {
		for _, l := range root.Lines {
			if l.Resource == res {
				ids := make([]int, len(l.Values))
				for i, v := range l.Values {
					ids[i] = v.Domain
				}
				return ids
			}
		}
		return nil
	}
	var errs []error
	for _, res := range []string{rdt.ResourceL3, rdt.ResourceL3Code, rdt.ResourceL3Data, rdt.ResourceL2, "L2CODE", "L2DATA"} {
		if !slices.Contains(dirs, res) {
			continue
		}
		r := infoReader{fsys: fsys, dir: "info/" + res}
		c := rdt.CacheResource{
			Name:          res,
			CBMMask:       r.hex("cbm_mask"),
			MinCBMBits:    r.int("min_cbm_bits"),
			ShareableBits: r.hex("shareable_bits"),
			NumCLOSIDs:    r.int("num_closids"),
			SparseMasks:   r.optionalInt("sparse_masks") == 1,
			Domains:       domains(res),
		}
		errs = append(errs, r.err)
		hw.Caches = append(hw.Caches, c)
	}
	if slices.Contains(dirs, rdt.ResourceMB) {
		r := infoReader{fsys: fsys, dir: "info/MB"}
		mb := &rdt.MemBandwidth{
			Granularity: r.int("bandwidth_gran"),
			Min:         r.int("min_bandwidth"),
			DelayLinear: r.optionalInt("delay_linear") == 1,
			NumCLOSIDs:  r.int("num_closids"),
			Domains:     domains(rdt.ResourceMB),
			Unit:        rdt.MBPercent,
		}
		for _, l := range root.Lines {
			if l.Resource == rdt.ResourceMB {
				for _, v := range l.Values {
					mb.MaxValue = max(mb.MaxValue, int(v.Value))
				}
			}
		}
		if mb.MaxValue > 100 {
			mb.Unit = rdt.MBAbsolute
		} else {
			mb.MaxValue = 100
		}
		errs = append(errs, r.err)
		hw.MB = mb
	}
	if slices.Contains(dirs, "L3_MON") {
		r := infoReader{fsys: fsys, dir: "info/L3_MON"}
		hw.NumRMIDs = r.int("num_rmids")
		if b, err := fsys.ReadFile("info/L3_MON/mon_features"); err == nil {
			hw.Monitoring = strings.Fields(string(b))
		} else {
			r.err = fmt.Errorf("info/L3_MON/mon_features: %w", err)
		}
		errs = append(errs, r.err)
	}
	if err := errors.Join(errs...); err != nil {
		return rdt.Hardware{}, fmt.Errorf("probe resctrl: %w", err)
	}
	return hw, nil
}

// infoReader reads one info/ directory's numbers, keeping the first error.
type infoReader struct {
	fsys FS
	dir  string
	err  error
}

func (r *infoReader) read(name string, base int, optional bool) uint64 {
	b, err := r.fsys.ReadFile(r.dir + "/" + name)
	if err != nil {
		if !(optional && errors.Is(err, fs.ErrNotExist)) && r.err == nil {
			r.err = fmt.Errorf("%s/%s: %w", r.dir, name, err)
		}
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), base, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s/%s: %w", r.dir, name, err)
	}
	return v
}

func (r *infoReader) hex(name string) uint64      { return r.read(name, 16, false) }
func (r *infoReader) int(name string) int         { return int(r.read(name, 10, false)) }
func (r *infoReader) optionalInt(name string) int { return int(r.read(name, 10, true)) }
