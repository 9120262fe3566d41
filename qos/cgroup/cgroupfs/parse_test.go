package cgroupfs

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/qos"
)

func TestParseFlatKeyed(t *testing.T) {
	data := []byte("inactive_anon 5\ntotal_inactive_file 9\ninactive_file 3\nx\n\nlast 8")
	for _, tc := range []struct {
		key  string
		want uint64
		err  bool
	}{
		{"inactive_file", 3, false},
		{"total_inactive_file", 9, false},
		{"last", 8, false},
		{"inactive", 0, true},
		{"x", 0, true},
	} {
		got, err := ParseFlatKeyed(data, tc.key)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseFlatKeyed(%q) = %d, %v", tc.key, got, err)
		}
	}
	if _, err := ParseFlatKeyed(data, "nope"); !errors.Is(err, ErrKeyMissing) {
		t.Errorf("missing key: %v, want ErrKeyMissing", err)
	}
}

func TestParseValues(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		limitOK bool // ParseLimit succeeds (with want, 0 for no limit)
		plainOK bool // ParseUint succeeds
	}{
		{"123\n", 123, true, true},
		{"123", 123, true, true},
		{"max\n", 0, true, false},
		{"", 0, false, false},
		{"12 \n", 12, true, false},
		{"-1\n", 0, false, false},
		{"9223372036854771712\n", 0, true, true}, // v1 PAGE_COUNTER_MAX: no limit
		{"18446744073709551615\n", 0, true, true},
	} {
		v, err := ParseUint([]byte(tc.in))
		if (err == nil) != tc.plainOK {
			t.Errorf("ParseUint(%q) = %d, %v", tc.in, v, err)
		}
		v, err = ParseLimit([]byte(tc.in))
		if (err == nil) != tc.limitOK || (err == nil && v != tc.want) {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d", tc.in, v, err, tc.want)
		}
	}
	if v, err := ParseInt([]byte(" -1\n")); err != nil || v != -1 {
		t.Errorf("ParseInt(-1) = %d, %v", v, err)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"0-3,8,10-11\n", []int{0, 1, 2, 3, 8, 10, 11}, true},
		{"\n", nil, true},
		{"3,1,1", []int{1, 3}, true},
		{"3-1", nil, false},
		{"0-", nil, false},
		{"a", nil, false},
		{"0-70000", nil, false},
	} {
		got, err := ParseCPUList([]byte(tc.in))
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// FuzzParseFlatKeyed checks the in-place scanner against a simple oracle
// (split lines, split on the first space, first whole-key match wins).
func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("usage_usec 100\nuser_usec 5\n"), "usage_usec")
	f.Add([]byte("total_inactive_file 1\ninactive_file 2"), "inactive_file")
	f.Add([]byte("inactive_file \n"), "inactive_file")
	f.Add([]byte("a 1 2\n"), "a")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		got, err := ParseFlatKeyed(data, key)
		var want uint64
		found, wantErr := false, false
		for _, line := range bytes.Split(data, []byte("\n")) {
			k, v, ok := bytes.Cut(line, []byte(" "))
			if !ok || string(k) != key {
				continue
			}
			found = true
			n, perr := strconv.ParseUint(string(v), 10, 64)
			want, wantErr = n, perr != nil
			break
		}
		switch {
		case !found:
			if !errors.Is(err, ErrKeyMissing) {
				t.Fatalf("key %q absent: got %d, %v", key, got, err)
			}
		case wantErr:
			if err == nil {
				t.Fatalf("key %q bad value: got %d, nil error", key, got)
			}
		case err != nil || got != want:
			t.Fatalf("key %q: got %d, %v; want %d", key, got, err, want)
		}
	})
}

// FuzzParseValue checks ParseUint against strconv and ParseLimit's
// promise: "max" and v1's huge sentinels read as 0, other numbers as is.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"0\n", "max\n", "9223372036854771712\n", "", "max", "1\n\n", "4096", "-1", "12ab"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseUint(data)
		want, werr := strconv.ParseUint(string(bytes.TrimSuffix(data, []byte("\n"))), 10, 64)
		if (err == nil) != (werr == nil) || (err == nil && v != want) {
			t.Fatalf("ParseUint(%q) = %d, %v; oracle %d, %v", data, v, err, want, werr)
		}
		trimmed := bytes.TrimSpace(data)
		l, err := ParseLimit(data)
		n, nerr := strconv.ParseUint(string(trimmed), 10, 64)
		switch {
		case string(trimmed) == "max":
			if err != nil || l != 0 {
				t.Fatalf("ParseLimit(%q) = %d, %v; want 0", data, l, err)
			}
		case nerr != nil:
			if err == nil {
				t.Fatalf("ParseLimit(%q) = %d, nil error", data, l)
			}
		case n >= V1UnlimitedFloor:
			if err != nil || l != 0 {
				t.Fatalf("ParseLimit(%q) = %d, %v: no-limit values must read as 0", data, l, err)
			}
		case err != nil || l != n:
			t.Fatalf("ParseLimit(%q) = %d, %v; want %d", data, l, err, n)
		}
	})
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3,8,10-11\n", "", "5", "3-1", "0-", ",", "0-70000", "1,1,1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cpus, err := ParseCPUList(data)
		if err != nil {
			return
		}
		if !slices.IsSorted(cpus) || len(slices.Compact(slices.Clone(cpus))) != len(cpus) {
			t.Fatalf("ParseCPUList(%q) = %v: not sorted and unique", data, cpus)
		}
		text := qos.FormatCPUList(cpus)
		again, err := ParseCPUList([]byte(text))
		if err != nil || !slices.Equal(again, cpus) {
			t.Fatalf("round trip %q -> %q -> %v, %v", data, text, again, err)
		}
	})
}
