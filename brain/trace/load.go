package trace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// DefaultMemoryBudgetBytes is the memory a v2018 load may use unless the
// caller says otherwise.
const DefaultMemoryBudgetBytes int64 = 4 << 30

// loadBytesPerFileByte is how many bytes of memory one byte of CSV becomes
// in the worst case (every row a distinct container): a ~50-byte row turns
// into a Container of five string headers, three integers and a float
// plus its string data. Measured on the full-scale synthetic trace: 3.56 MB
// of CSV retain 12.3 MB after loading (3.4x); 5 leaves room for the
// dedup maps and append growth during the load. What a replay builds on
// top (placement state per run) is not part of this estimate.
const loadBytesPerFileByte = 5

// ErrTooLarge is wrapped when a trace would not fit in the memory budget.
var ErrTooLarge = errors.New("trace too large for memory budget")

// V2018 is a loaded cluster-trace-v2018: one entry per machine and per
// container (the first event seen for each), containers in arrival order
// (time_stamp, then file order).
type V2018 struct {
	Machines   []Machine
	Containers []Container
}

// LoadOptions bound a load.
type LoadOptions struct {
	// MemoryBudgetBytes refuses traces whose estimated in-memory size is
	// larger, before reading a row. Zero means DefaultMemoryBudgetBytes.
	MemoryBudgetBytes int64
}

// EstimateLoadBytes is the memory a load of CSV files of these sizes may
// need, in the worst case.
func EstimateLoadBytes(fileBytes ...int64) int64 {
	var sum int64
	for _, b := range fileBytes {
		sum += b
	}
	return sum * loadBytesPerFileByte
}

// LoadV2018 reads machine_meta.csv and container_meta.csv from dir. It
// refuses, before reading any row, a trace whose estimated in-memory size
// exceeds the budget.
func LoadV2018(dir string, opts LoadOptions) (*V2018, error) {
	budget := opts.MemoryBudgetBytes
	if budget <= 0 {
		budget = DefaultMemoryBudgetBytes
	}
	mPath := filepath.Join(dir, MachineMetaFile)
	cPath := filepath.Join(dir, ContainerMetaFile)
	var sizes []int64
	for _, p := range []string{mPath, cPath} {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load v2018 trace: %w", err)
		}
		sizes = append(sizes, st.Size())
	}
	if est := EstimateLoadBytes(sizes...); est > budget {
		return nil, fmt.Errorf("load v2018 trace %s: %w: files of %d bytes need about %d bytes of memory, budget is %d bytes (raise the memory budget or cut the trace)",
			dir, ErrTooLarge, sizes[0]+sizes[1], est, budget)
	}
	// Stat sizes bound regular files; a device or pipe says 0, so the
	// reads are bounded by the budget too.
	maxRead := budget / loadBytesPerFileByte
	t := &V2018{}
	seenM := map[string]bool{}
	err := readFile(mPath, func(f *os.File) error {
		return ReadMachines(bufio.NewReaderSize(newLimitedReader(f, mPath, maxRead, 0), 1<<16), mPath, func(m Machine) error {
			if !seenM[m.ID] {
				seenM[m.ID] = true
				t.Machines = append(t.Machines, m)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load v2018 trace: %w", err)
	}
	seenC := map[string]bool{}
	err = readFile(cPath, func(f *os.File) error {
		return ReadContainers(bufio.NewReaderSize(newLimitedReader(f, cPath, maxRead, 0), 1<<16), cPath, func(c Container) error {
			if !seenC[c.ID] {
				seenC[c.ID] = true
				t.Containers = append(t.Containers, c)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load v2018 trace: %w", err)
	}
	sort.SliceStable(t.Containers, func(i, j int) bool {
		return t.Containers[i].TimeStampSec < t.Containers[j].TimeStampSec
	})
	return t, nil
}

func readFile(path string, fn func(*os.File) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(f)
}
