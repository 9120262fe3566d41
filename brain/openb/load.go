package openb

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/brain/trace"
)

// Node is one row of openb_node_list_*.csv.
type Node struct {
	Name      string
	CPUMilli  int64
	MemoryMiB int64
	GPUs      int
	// Model is the GPU model; empty on CPU-only hosts.
	Model string
}

// Pod is one row of openb_pod_list_*.csv. Times are seconds from the
// trace's start; zero when the trace leaves them empty.
type Pod struct {
	Name      string
	CPUMilli  int64
	MemoryMiB int64
	// NumGPU is 0..8; GPUMilli is the share of each GPU (< 1000 only when
	// NumGPU is 1: a shared fraction of one device).
	NumGPU   int
	GPUMilli int64
	// GPUSpec lists the allowed GPU models; empty means any.
	GPUSpec      []string
	QoS          string
	Phase        string
	CreationTime int64
	DeletionTime int64
	ScheduledAt  int64
	// Line is the pod's line in its file (the header is line 1).
	Line int
}

// GPUMilliTotal is the pod's whole GPU demand in milli-GPUs.
func (p Pod) GPUMilliTotal() int64 { return int64(p.NumGPU) * p.GPUMilli }

// ParseError locates a bad value: file, line (1-based, the header is line
// 1) and column.
type ParseError struct {
	File   string
	Line   int
	Column string
	Err    error
}

func (e *ParseError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Column, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

var nodeColumns = []string{"sn", "cpu_milli", "memory_mib", "gpu", "model"}

// podColumns must be present; the multigpu50 list carries only these.
// gpu_spec, qos, pod_phase and the times are read when present.
var podColumns = []string{"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"}

// MaxListBytes bounds a node or pod list file: the published lists are
// under 1 MB each (8,152 pods at most), so 256 MiB leaves room for traces
// a hundred times larger and stops a wrong path (a device, a disk image)
// with the limit named.
const MaxListBytes = 256 << 20

// LoadNodes reads a node list file.
func LoadNodes(path string) ([]Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	defer f.Close()
	return ParseNodes(path, trace.LimitReader(f, path, MaxListBytes, trace.MaxRowBytes))
}

// LoadPods reads a pod list file.
func LoadPods(path string) ([]Pod, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load pods: %w", err)
	}
	defer f.Close()
	return ParsePods(path, trace.LimitReader(f, path, MaxListBytes, trace.MaxRowBytes))
}

// table reads a CSV with a header naming at least the wanted columns (in
// any order; extra columns are ignored).
type table struct {
	file string
	r    *csv.Reader
	col  map[string]int
	line int
	rec  []string
}

func newTable(file string, r io.Reader, want []string) (*table, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{File: file, Line: 1, Err: errors.New("empty file: no header")}
		}
		return nil, &ParseError{File: file, Line: 1, Err: err}
	}
	t := &table{file: file, r: cr, col: map[string]int{}, line: 1}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := t.col[h]; dup {
			return nil, &ParseError{File: file, Line: 1, Column: h, Err: errors.New("duplicate column")}
		}
		t.col[h] = i
	}
	var missing []string
	for _, w := range want {
		if _, ok := t.col[w]; !ok {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return nil, &ParseError{File: file, Line: 1, Err: fmt.Errorf("missing columns %s", strings.Join(missing, ", "))}
	}
	return t, nil
}

// next reads one record; false at the end of the file.
func (t *table) next() (bool, error) {
	rec, err := t.r.Read()
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	t.line++
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			t.line = pe.Line
			return false, &ParseError{File: t.file, Line: pe.Line, Err: pe.Err}
		}
		return false, &ParseError{File: t.file, Line: t.line, Err: err}
	}
	t.rec = rec
	return true, nil
}

func (t *table) str(col string) (string, error) {
	i, ok := t.col[col]
	if !ok {
		return "", nil // an optional column the file does not have
	}
	if i >= len(t.rec) {
		return "", t.errf(col, "missing value (row has %d fields)", len(t.rec))
	}
	return strings.TrimSpace(t.rec[i]), nil
}

// num parses a non-negative integer; empty is zero when emptyOK.
func (t *table) num(col string, emptyOK bool) (int64, error) {
	s, err := t.str(col)
	if err != nil {
		return 0, err
	}
	if s == "" {
		if emptyOK {
			return 0, nil
		}
		return 0, t.errf(col, "empty")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Some exports write integral floats ("12000.0"); accept those only.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, t.errf(col, "malformed number %q", s)
		}
		v = int64(f)
	}
	if v < 0 {
		return 0, t.errf(col, "negative value %d", v)
	}
	return v, nil
}

func (t *table) errf(col, format string, args ...any) error {
	return &ParseError{File: t.file, Line: t.line, Column: col, Err: fmt.Errorf(format, args...)}
}

// ParseNodes parses a node list; file names the source in errors.
func ParseNodes(file string, r io.Reader) ([]Node, error) {
	t, err := newTable(file, r, nodeColumns)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	return parseRows(t, func(t *table) (Node, error) {
		var n Node
		var err error
		if n.Name, err = t.uniqueName("sn", "host", seen); err != nil {
			return Node{}, err
		}
		if n.CPUMilli, n.MemoryMiB, n.GPUs, err = t.sizes("gpu"); err != nil {
			return Node{}, err
		}
		if n.Model, err = t.str("model"); err != nil {
			return Node{}, err
		}
		if n.GPUs > 0 && n.Model == "" {
			return Node{}, t.errf("model", "empty for a host with %d GPUs", n.GPUs)
		}
		if n.GPUs == 0 && n.Model != "" {
			return Node{}, t.errf("model", "%q on a host without GPUs", n.Model)
		}
		return n, nil
	})
}

// parseRows reads t's rows through row, stopping at the end of the table
// or at the first error.
func parseRows[T any](t *table, row func(t *table) (T, error)) ([]T, error) {
	var out []T
	for {
		ok, err := t.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		v, err := row(t)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// uniqueName reads a row's name from col: not empty, and not seen before
// (seen maps names to the line they first appeared on).
func (t *table) uniqueName(col, kind string, seen map[string]int) (string, error) {
	name, err := t.str(col)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", t.errf(col, "empty")
	}
	if first, dup := seen[name]; dup {
		return "", t.errf(col, "duplicate %s %q (first on line %d)", kind, name, first)
	}
	seen[name] = t.line
	return name, nil
}

// sizes reads the cpu_milli, memory_mib and GPU count (from gpuCol)
// columns that node and pod lists share, rejecting implausible values.
func (t *table) sizes(gpuCol string) (cpuMilli, memoryMiB int64, gpus int, err error) {
	if cpuMilli, err = t.num("cpu_milli", false); err != nil {
		return 0, 0, 0, err
	}
	if memoryMiB, err = t.num("memory_mib", false); err != nil {
		return 0, 0, 0, err
	}
	if memoryMiB > 1<<40 {
		return 0, 0, 0, t.errf("memory_mib", "implausible size %d", memoryMiB)
	}
	n, err := t.num(gpuCol, false)
	if err != nil {
		return 0, 0, 0, err
	}
	if n > 64 {
		return 0, 0, 0, t.errf(gpuCol, "implausible count %d", n)
	}
	return cpuMilli, memoryMiB, int(n), nil
}

// ParsePods parses a pod list; file names the source in errors.
func ParsePods(file string, r io.Reader) ([]Pod, error) {
	t, err := newTable(file, r, podColumns)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	return parseRows(t, func(t *table) (Pod, error) {
		p := Pod{Line: t.line}
		var err error
		if p.Name, err = t.uniqueName("name", "pod", seen); err != nil {
			return Pod{}, err
		}
		if p.CPUMilli, p.MemoryMiB, p.NumGPU, err = t.sizes("num_gpu"); err != nil {
			return Pod{}, err
		}
		if p.GPUMilli, err = t.num("gpu_milli", false); err != nil {
			return Pod{}, err
		}
		switch {
		case p.GPUMilli > 1000:
			return Pod{}, t.errf("gpu_milli", "%d exceeds one GPU (1000)", p.GPUMilli)
		case p.NumGPU == 0 && p.GPUMilli != 0:
			return Pod{}, t.errf("gpu_milli", "%d with num_gpu 0", p.GPUMilli)
		case p.NumGPU > 0 && p.GPUMilli == 0:
			return Pod{}, t.errf("gpu_milli", "0 with num_gpu %d", p.NumGPU)
		case p.NumGPU > 1 && p.GPUMilli != 1000:
			return Pod{}, t.errf("gpu_milli", "%d: only single-GPU pods may share a GPU (num_gpu %d)", p.GPUMilli, p.NumGPU)
		}
		spec, err := t.str("gpu_spec")
		if err != nil {
			return Pod{}, err
		}
		if spec != "" {
			for _, m := range strings.Split(spec, "|") {
				m = strings.TrimSpace(m)
				if m == "" {
					return Pod{}, t.errf("gpu_spec", "empty model in %q", spec)
				}
				p.GPUSpec = append(p.GPUSpec, m)
			}
		}
		if p.QoS, err = t.str("qos"); err != nil {
			return Pod{}, err
		}
		if p.Phase, err = t.str("pod_phase"); err != nil {
			return Pod{}, err
		}
		if p.CreationTime, err = t.num("creation_time", true); err != nil {
			return Pod{}, err
		}
		if p.DeletionTime, err = t.num("deletion_time", true); err != nil {
			return Pod{}, err
		}
		if p.ScheduledAt, err = t.num("scheduled_time", true); err != nil {
			return Pod{}, err
		}
		return p, nil
	})
}

// CheckModels reports pods whose gpu_spec names a model no node has.
// podFile names the pod list in the errors.
func CheckModels(nodes []Node, pods []Pod, podFile string) error {
	have := map[string]bool{}
	for _, n := range nodes {
		if n.Model != "" {
			have[n.Model] = true
		}
	}
	var errs []error
	for _, p := range pods {
		for _, m := range p.GPUSpec {
			if !have[m] {
				errs = append(errs, &ParseError{File: podFile, Line: p.Line, Column: "gpu_spec",
					Err: fmt.Errorf("pod %s: unknown GPU model %q (the node list has none)", p.Name, m)})
				break
			}
		}
		if len(errs) >= 10 {
			errs = append(errs, errors.New("more unknown models left unreported"))
			break
		}
	}
	return errors.Join(errs...)
}
