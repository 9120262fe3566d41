package sample

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
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
		got, err := parseFlatKeyed(data, tc.key)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseFlatKeyed(%q) = %d, %v", tc.key, got, err)
		}
	}
	if _, err := parseFlatKeyed(data, "nope"); !errors.Is(err, errKeyMissing) {
		t.Errorf("missing key: %v, want errKeyMissing", err)
	}
}

func TestParseValues(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     uint64
		maxOK    bool // parseMaxValue succeeds
		plainOK  bool // parseUintValue succeeds
		wantZero bool
	}{
		{"123\n", 123, true, true, false},
		{"123", 123, true, true, false},
		{"max\n", 0, true, false, true},
		{"", 0, false, false, true},
		{"12 \n", 0, false, false, true},
		{"-1\n", 0, false, false, true},
		{"18446744073709551615\n", 18446744073709551615, true, true, false},
	} {
		v, err := parseUintValue([]byte(tc.in))
		if (err == nil) != tc.plainOK || (err == nil && v != tc.want) {
			t.Errorf("parseUintValue(%q) = %d, %v", tc.in, v, err)
		}
		v, err = parseMaxValue([]byte(tc.in))
		if (err == nil) != tc.maxOK || (err == nil && v != tc.want) {
			t.Errorf("parseMaxValue(%q) = %d, %v", tc.in, v, err)
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
		got, err := parseFlatKeyed(data, key)
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
			if !errors.Is(err, errKeyMissing) {
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

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"0\n", "max\n", "9223372036854771712\n", "", "max", "1\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseUintValue(data)
		trimmed := bytes.TrimSuffix(data, []byte("\n"))
		want, werr := strconv.ParseUint(string(trimmed), 10, 64)
		if (err == nil) != (werr == nil) || (err == nil && v != want) {
			t.Fatalf("parseUintValue(%q) = %d, %v; oracle %d, %v", data, v, err, want, werr)
		}
		m, err := parseMaxValue(data)
		if string(trimmed) == "max" {
			if err != nil || m != 0 {
				t.Fatalf("parseMaxValue(%q) = %d, %v; want 0", data, m, err)
			}
		} else if (err == nil) != (werr == nil) || (err == nil && m != want) {
			t.Fatalf("parseMaxValue(%q) = %d, %v; oracle %d, %v", data, m, err, want, werr)
		}
	})
}
