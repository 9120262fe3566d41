package resctrl_test

import (
	"io/fs"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
)

// mapFS is a read-only FS of file contents; directories are implied by
// the paths.
type mapFS map[string]string

func (m mapFS) ReadFile(name string) ([]byte, error) {
	if v, ok := m[name]; ok {
		return []byte(v), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (m mapFS) WriteFile(name string, _ []byte) error {
	return &fs.PathError{Op: "write", Path: name, Err: syscall.EACCES}
}
func (m mapFS) Mkdir(name string) error {
	return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.EACCES}
}
func (m mapFS) Remove(name string) error {
	return &fs.PathError{Op: "rmdir", Path: name, Err: syscall.EACCES}
}

func (m mapFS) ReadDir(name string) ([]string, error) {
	prefix := name + "/"
	if name == "" {
		prefix = ""
	}
	var out []string
	for k := range m {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			if dir, _, ok := strings.Cut(rest, "/"); ok && !slices.Contains(out, dir) {
				out = append(out, dir)
			}
		}
	}
	if len(out) == 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	slices.Sort(out)
	return out, nil
}

// FuzzProbeAndMonitor feeds arbitrary kernel text to Probe and the
// monitoring reader: they may refuse it, never panic, and what Probe
// accepts is a model Decide can run on.
func FuzzProbeAndMonitor(f *testing.F) {
	f.Add("7ff", "1", "16", "L3:0=7ff;1=7ff\nMB:0=100;1=100\n", "10", "12345")
	f.Add("ffff", "0", "16", "L3:0=ffff;3=ffff\nMB:0=2048;3=2048\n", "1", "Unavailable")
	f.Add("", "x", "-1", "L3:", "", "")
	f.Fuzz(func(t *testing.T, cbm, minBits, closids, schemata, gran, counter string) {
		m := mapFS{
			"schemata":                                          schemata,
			"info/L3/cbm_mask":                                  cbm,
			"info/L3/min_cbm_bits":                              minBits,
			"info/L3/shareable_bits":                            "0",
			"info/L3/num_closids":                               closids,
			"info/MB/bandwidth_gran":                            gran,
			"info/MB/min_bandwidth":                             "10",
			"info/MB/num_closids":                               closids,
			"info/L3_MON/mon_features":                          "llc_occupancy\nmbm_total_bytes\n",
			"info/L3_MON/num_rmids":                             "8",
			"mon_data/mon_L3_00/llc_occupancy":                  counter,
			"mon_data/mon_L3_00/mbm_total_bytes":                counter,
			"sluice-offline/mon_data/mon_L3_01/mbm_total_bytes": counter,
		}
		hw, err := resctrl.Probe(m)
		if err != nil {
			return
		}
		_, _ = resctrl.NewMonitor(m, hw).Read(time.Unix(1, 0))
		pol := rdt.DefaultPolicy()
		if pol.Validate(hw) == nil {
			rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), OnlineLatencyP99: time.Millisecond}, pol, hw, rdt.State{})
		}
	})
}
