package trace

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadMachines(t *testing.T) {
	in := "m_1,0,65,h,96,100,USING\nm_2,86400,3,,64,50,soft_error\n"
	var got []Machine
	if err := ReadMachines(strings.NewReader(in), "machine_meta.csv", func(m Machine) error {
		got = append(got, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []Machine{
		{ID: "m_1", FailureDomain1: 65, FailureDomain2: "h", CPUCores: 96, MemNormalized: 100, Status: "USING"},
		{ID: "m_2", TimeStampSec: 86400, FailureDomain1: 3, CPUCores: 64, MemNormalized: 50, Status: "soft_error"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d machines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReadContainers(t *testing.T) {
	in := "c_1,m_2556,0,app_5052,started,400,400,1.56\nc_2,,12,app_1,allocated,50,100,0\n"
	var got []Container
	if err := ReadContainers(strings.NewReader(in), "container_meta.csv", func(c Container) error {
		got = append(got, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []Container{
		{ID: "c_1", MachineID: "m_2556", AppDU: "app_5052", Status: "started", CPURequestCentiCores: 400, CPULimitCentiCores: 400, MemNormalized: 1.56},
		{ID: "c_2", TimeStampSec: 12, AppDU: "app_1", Status: "allocated", CPURequestCentiCores: 50, CPULimitCentiCores: 100},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d containers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// The bad-input corpus: each case is a file body and the exact message.
func TestReadBadInput(t *testing.T) {
	machines := []struct{ in, want string }{
		{"m_1,0,65,h,96,100\n", "machine_meta.csv:1: malformed trace row: has 6 columns, want 7: missing status"},
		{"m_1,0,65\n", "machine_meta.csv:1: malformed trace row: has 3 columns, want 7: missing failure_domain_2, cpu_num, mem_size, status"},
		{"m_1,0,65,h,96,100,USING,x\n", "machine_meta.csv:1: malformed trace row: has 8 columns, want 7 (machine_id, time_stamp, failure_domain_1, failure_domain_2, cpu_num, mem_size, status)"},
		{"m_1,0,65,h,96,100,USING\nm_2,0,1,h,-4,100,USING\n", "machine_meta.csv:2: field cpu_num: malformed trace row: negative value -4"},
		{"m_1,0,65,h,ninety,100,USING\n", `machine_meta.csv:1: field cpu_num: malformed trace row: "ninety" is not an integer`},
		{"m_1,0,65,h,96,abc,USING\n", `machine_meta.csv:1: field mem_size: malformed trace row: "abc" is not a number`},
		{"m_1,0,65,h,96,NaN,USING\n", `machine_meta.csv:1: field mem_size: malformed trace row: "NaN" is not a number`},
		{"m_1,0,65,h,96,101,USING\n", "machine_meta.csv:1: field mem_size: malformed trace row: 101 is above the normalised maximum 100"},
		{",0,65,h,96,100,USING\n", "machine_meta.csv:1: field machine_id: malformed trace row: empty"},
		{"m_1,,65,h,96,100,USING\n", "machine_meta.csv:1: field time_stamp: malformed trace row: empty, want a number"},
		{"m_1,0,65,\"h,96,100,USING\n", "machine_meta.csv:1: malformed trace row: extraneous or missing \" in quoted-field"},
	}
	for _, c := range machines {
		err := ReadMachines(strings.NewReader(c.in), "machine_meta.csv", func(Machine) error { return nil })
		if err == nil || err.Error() != c.want {
			t.Errorf("ReadMachines(%q):\n got %v\nwant %s", c.in, err, c.want)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("ReadMachines(%q): %v does not wrap ErrMalformed", c.in, err)
		}
	}
	containers := []struct{ in, want string }{
		{"c_1,m_1,0,app_1,started,400,400\n", "container_meta.csv:1: malformed trace row: has 7 columns, want 8: missing mem_size"},
		{"c_1,m_1,0,app_1,started,400,400,1\nc_2,m_1,0,app_1,started,-400,400,1\n", "container_meta.csv:2: field cpu_request: malformed trace row: negative value -400"},
		{"c_1,m_1,0,app_1,started,400,400,-1.5\n", "container_meta.csv:1: field mem_size: malformed trace row: negative value -1.5"},
		{"c_1,m_1,0,,started,400,400,1\n", "container_meta.csv:1: field app_du: malformed trace row: empty"},
		{"c_1,m_1,0,app_1,started,4.5,400,1\n", `container_meta.csv:1: field cpu_request: malformed trace row: "4.5" is not an integer`},
		{"c_1,m_1,0,app_1,started,400,x,1\n", `container_meta.csv:1: field cpu_limit: malformed trace row: "x" is not an integer`},
	}
	for _, c := range containers {
		err := ReadContainers(strings.NewReader(c.in), "container_meta.csv", func(Container) error { return nil })
		if err == nil || err.Error() != c.want {
			t.Errorf("ReadContainers(%q):\n got %v\nwant %s", c.in, err, c.want)
		}
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := ReadContainers(strings.NewReader("c_1,m_1,0,a,s,1,1,1\nc_2,m_1,0,a,s,1,1,1\n"), "f", func(Container) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("got err %v after %d rows, want stop after 1", err, n)
	}
}

func writeTrace(t *testing.T, machines, containers string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, MachineMetaFile), []byte(machines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ContainerMetaFile), []byte(containers), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadV2018KeepsFirstEventAndOrdersByArrival(t *testing.T) {
	dir := writeTrace(t,
		"m_1,0,1,A,96,100,USING\nm_1,500,1,A,96,100,soft_error\nm_2,0,2,B,96,100,USING\n",
		"c_2,m_1,50,app_1,started,400,400,3\nc_1,m_2,10,app_1,started,800,800,6\nc_2,m_1,90,app_1,stopped,400,400,3\n")
	tr, err := LoadV2018(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Machines) != 2 || tr.Machines[0].Status != "USING" {
		t.Fatalf("machines = %+v, want m_1 (first event) and m_2", tr.Machines)
	}
	if len(tr.Containers) != 2 || tr.Containers[0].ID != "c_1" || tr.Containers[1].ID != "c_2" || tr.Containers[1].Status != "started" {
		t.Fatalf("containers = %+v, want c_1 then c_2 (first event)", tr.Containers)
	}
}

func TestLoadV2018RefusesOverBudget(t *testing.T) {
	m := strings.Repeat("m_1,0,1,A,96,100,USING\n", 100)
	dir := writeTrace(t, m, "")
	_, err := LoadV2018(dir, LoadOptions{MemoryBudgetBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	want := "files of 2300 bytes need about 11500 bytes of memory, budget is 1000 bytes"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not say %q", err, want)
	}
	if _, err := LoadV2018(dir, LoadOptions{MemoryBudgetBytes: 11500}); err != nil {
		t.Fatalf("at the estimate: %v", err)
	}
}

func TestLoadV2018NamesFileOfBadRow(t *testing.T) {
	dir := writeTrace(t, "m_1,0,1,A,96,100,USING\n", "c_1,m_1,0,app_1,started,400,400\n")
	_, err := LoadV2018(dir, LoadOptions{})
	want := filepath.Join(dir, ContainerMetaFile) + ":1: malformed trace row: has 7 columns, want 8: missing mem_size"
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("got %v, want suffix %s", err, want)
	}
}

func FuzzReadMachines(f *testing.F) {
	f.Add("m_1,0,65,h,96,100,USING\n")
	f.Add("m_1,0,65,h,-1,100,USING\n")
	f.Add("\"m,1\",0,65,h,96,100,USING\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		err := ReadMachines(strings.NewReader(in), "f", func(m Machine) error {
			if m.ID == "" || m.CPUCores < 0 || m.MemNormalized < 0 || m.MemNormalized > 100 || m.FailureDomain1 < 0 || m.TimeStampSec < 0 {
				t.Fatalf("accepted invalid row %+v", m)
			}
			return nil
		})
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a ParseError", err)
		}
	})
}

func FuzzReadContainers(f *testing.F) {
	f.Add("c_1,m_2556,0,app_5052,started,400,400,1.56\n")
	f.Add("c_1,,0,app_1,started,400,400,1e2\n")
	f.Add("c_1,m,0,a,s,1,1\n")
	f.Fuzz(func(t *testing.T, in string) {
		err := ReadContainers(strings.NewReader(in), "f", func(c Container) error {
			if c.ID == "" || c.AppDU == "" || c.CPURequestCentiCores < 0 || c.CPULimitCentiCores < 0 || c.MemNormalized < 0 || c.MemNormalized > 100 {
				t.Fatalf("accepted invalid row %+v", c)
			}
			return nil
		})
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a ParseError", err)
		}
	})
}

// A row that never ends (a device, a file without newlines) stops at
// MaxRowBytes with the limit named; so does a file larger than the budget
// allows even when its size cannot be known before reading.
func TestReadBoundsRowsAndFiles(t *testing.T) {
	err := ReadMachines(io.LimitReader(zeros{}, 1<<30), "m.csv", func(Machine) error { return nil })
	if err == nil || !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "a line longer than 65536 bytes") {
		t.Fatalf("endless row: %v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, MachineMetaFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ContainerMetaFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadV2018(dir, LoadOptions{MemoryBudgetBytes: 100 << 10})
	if err == nil || !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "larger than 20480 bytes") {
		t.Fatalf("endless file: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
