package trace

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The column orders of Alibaba cluster-trace-v2018 (schema.md in
// alibaba/clusterdata). The files have no header row.
var (
	machineMetaColumns   = []string{"machine_id", "time_stamp", "failure_domain_1", "failure_domain_2", "cpu_num", "mem_size", "status"}
	containerMetaColumns = []string{"container_id", "machine_id", "time_stamp", "app_du", "status", "cpu_request", "cpu_limit", "mem_size"}
)

// File names inside a v2018 trace directory.
const (
	MachineMetaFile   = "machine_meta.csv"
	ContainerMetaFile = "container_meta.csv"
)

// Machine is one row of machine_meta.csv: an event about a machine.
type Machine struct {
	ID             string
	TimeStampSec   int64
	FailureDomain1 int64
	FailureDomain2 string
	CPUCores       int64
	// MemNormalized is memory on the trace's normalised scale, [0,100].
	MemNormalized float64
	Status        string
}

// Container is one row of container_meta.csv: an event about a container.
// The real trace holds several rows per container (status changes); the
// loader keeps the first (arrival) and drops the rest.
type Container struct {
	ID           string
	MachineID    string
	TimeStampSec int64
	// AppDU is the deploy unit; its containers should be spread across
	// failure domains.
	AppDU                string
	Status               string
	CPURequestCentiCores int64
	CPULimitCentiCores   int64
	// MemNormalized is memory on the trace's normalised scale, [0,100].
	MemNormalized float64
}

// ParseError is a problem in one field of one line of a trace file.
type ParseError struct {
	File  string
	Line  int
	Field string // column name; empty when the whole line is wrong
	Err   error
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: field %s: %v", e.File, e.Line, e.Field, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrMalformed is wrapped by every ParseError about the content of a row.
var ErrMalformed = errors.New("malformed trace row")

// rowReader reads headerless CSV rows with a fixed column list and turns
// field problems into ParseErrors naming file, line and column.
type rowReader struct {
	file    string
	columns []string
	r       *csv.Reader
	line    int
	rec     []string
}

func newRowReader(r io.Reader, file string, columns []string) *rowReader {
	cr := csv.NewReader(newLimitedReader(r, file, math.MaxInt64-1, MaxRowBytes))
	// Count columns ourselves so the message can say which are missing.
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return &rowReader{file: file, columns: columns, r: cr}
}

// next reads a row; it returns io.EOF at the end.
func (rr *rowReader) next() error {
	rec, err := rr.r.Read()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		line := rr.line + 1
		if errors.As(err, &pe) {
			line = pe.StartLine
			err = pe.Err
		}
		return &ParseError{File: rr.file, Line: line, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	rr.line, _ = rr.r.FieldPos(0)
	rr.rec = rec
	if len(rec) < len(rr.columns) {
		return rr.errf("", "has %d columns, want %d: missing %s", len(rec), len(rr.columns), strings.Join(rr.columns[len(rec):], ", "))
	}
	if len(rec) > len(rr.columns) {
		return rr.errf("", "has %d columns, want %d (%s)", len(rec), len(rr.columns), strings.Join(rr.columns, ", "))
	}
	return nil
}

func (rr *rowReader) errf(field, format string, args ...any) error {
	return &ParseError{File: rr.file, Line: rr.line, Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)}
}

func (rr *rowReader) str(i int, required bool) (string, error) {
	s := strings.TrimSpace(rr.rec[i])
	if required && s == "" {
		return "", rr.errf(rr.columns[i], "empty")
	}
	return s, nil
}

// int parses a non-negative integer column.
func (rr *rowReader) int(i int) (int64, error) {
	s := strings.TrimSpace(rr.rec[i])
	if s == "" {
		return 0, rr.errf(rr.columns[i], "empty, want a number")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, rr.errf(rr.columns[i], "%q is not an integer", s)
	}
	if v < 0 {
		return 0, rr.errf(rr.columns[i], "negative value %d", v)
	}
	return v, nil
}

// norm parses a normalised [0,100] column.
func (rr *rowReader) norm(i int) (float64, error) {
	s := strings.TrimSpace(rr.rec[i])
	if s == "" {
		return 0, rr.errf(rr.columns[i], "empty, want a number")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, rr.errf(rr.columns[i], "%q is not a number", s)
	}
	if v < 0 {
		return 0, rr.errf(rr.columns[i], "negative value %s", s)
	}
	if v > 100 {
		return 0, rr.errf(rr.columns[i], "%s is above the normalised maximum 100", s)
	}
	return v, nil
}

// ReadMachines streams machine_meta rows from r to fn in file order. file
// names the source in errors. It stops at the first bad row or the first
// error fn returns (returned as is).
func ReadMachines(r io.Reader, file string, fn func(Machine) error) error {
	rr := newRowReader(r, file, machineMetaColumns)
	for {
		if err := rr.next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		m, err := rr.machine()
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}

func (rr *rowReader) machine() (Machine, error) {
	var m Machine
	var err error
	if m.ID, err = rr.str(0, true); err != nil {
		return m, err
	}
	if m.TimeStampSec, err = rr.int(1); err != nil {
		return m, err
	}
	if m.FailureDomain1, err = rr.int(2); err != nil {
		return m, err
	}
	if m.FailureDomain2, err = rr.str(3, false); err != nil {
		return m, err
	}
	if m.CPUCores, err = rr.int(4); err != nil {
		return m, err
	}
	if m.MemNormalized, err = rr.norm(5); err != nil {
		return m, err
	}
	m.Status, err = rr.str(6, false)
	return m, err
}

// ReadContainers streams container_meta rows from r to fn in file order,
// like ReadMachines.
func ReadContainers(r io.Reader, file string, fn func(Container) error) error {
	rr := newRowReader(r, file, containerMetaColumns)
	for {
		if err := rr.next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		c, err := rr.container()
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
}

func (rr *rowReader) container() (Container, error) {
	var c Container
	var err error
	if c.ID, err = rr.str(0, true); err != nil {
		return c, err
	}
	// machine_id is where the container ran in the recorded cluster; the
	// simulator places containers itself, so it may be empty.
	if c.MachineID, err = rr.str(1, false); err != nil {
		return c, err
	}
	if c.TimeStampSec, err = rr.int(2); err != nil {
		return c, err
	}
	if c.AppDU, err = rr.str(3, true); err != nil {
		return c, err
	}
	if c.Status, err = rr.str(4, false); err != nil {
		return c, err
	}
	if c.CPURequestCentiCores, err = rr.int(5); err != nil {
		return c, err
	}
	if c.CPULimitCentiCores, err = rr.int(6); err != nil {
		return c, err
	}
	c.MemNormalized, err = rr.norm(7)
	return c, err
}
