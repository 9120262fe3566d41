package cgroupfs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// V1UnlimitedFloor: an unlimited v1 memory limit (memory.limit_in_bytes,
// memory.soft_limit_in_bytes) reads as PAGE_COUNTER_MAX pages,
// 0x7FFFFFFFFFFFF000 with 4 KiB pages and a little less with 64 KiB pages.
// Nothing real is 4 EiB, so anything at or above this means unlimited.
const V1UnlimitedFloor = uint64(1) << 62

// ErrKeyMissing reports a key absent from a flat keyed file.
var ErrKeyMissing = errors.New("key missing")

// ParseUint parses a single-value counter file such as cpuacct.usage or
// memory.current: decimal digits and at most one trailing newline.
func ParseUint(data []byte) (uint64, error) {
	v, err := strconv.ParseUint(string(bytes.TrimSuffix(data, []byte("\n"))), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse value %q: %w", clip(data), err)
	}
	return v, nil
}

// ParseInt parses a single signed integer file such as cpu.cfs_quota_us
// or oom_score_adj.
func ParseInt(data []byte) (int64, error) {
	v, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse integer %q: %w", clip(bytes.TrimSpace(data)), err)
	}
	return v, nil
}

// ParseLimit parses a memory limit file: "max" on v2, a byte count on both
// versions. It returns 0 for no limit, which v1 writes as a number at or
// above V1UnlimitedFloor.
func ParseLimit(data []byte) (uint64, error) {
	s := bytes.TrimSpace(data)
	if string(s) == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse memory limit %q: %w", clip(s), err)
	}
	if v >= V1UnlimitedFloor {
		return 0, nil
	}
	return v, nil
}

// ParseFlatKeyed finds key in a flat keyed file ("key value\n" lines, as
// cpu.stat and memory.stat) and parses its value. It scans the bytes in
// place without allocating: memory.stat is read on every tick for every
// workload. Lines are matched on the whole key, so "inactive_file" does
// not match "total_inactive_file". A missing key wraps ErrKeyMissing.
func ParseFlatKeyed(data []byte, key string) (uint64, error) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		k, v, ok := bytes.Cut(line, []byte(" "))
		if !ok || string(k) != key {
			continue
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s %q: %w", key, clip(v), err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: %w", key, ErrKeyMissing)
}

// maxCPURange bounds one range of a CPU list: a bigger one is a typo or
// an attack, never a machine (NR_CPUS is at most 8192 in distribution
// kernels).
const maxCPURange = 1 << 16

// ParseCPUList parses the kernel's cpulist format (cpuset.cpus,
// cpuset.mems, /sys/devices/system/cpu/online): "0-3,8,10-11", blank for
// none. The result is sorted and without duplicates. qos.FormatCPUList
// prints the same format (the decision core keeps its own printer: it may
// import nothing kernel-facing).
func ParseCPUList(data []byte) ([]int, error) {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("parse cpu list %q: bad cpu %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("parse cpu list %q: bad range %q", s, part)
			}
		}
		if b-a > maxCPURange {
			return nil, fmt.Errorf("parse cpu list %q: range %q too large", s, part)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// clip bounds kernel text quoted in errors.
func clip(b []byte) []byte {
	const maxLen = 64
	if len(b) > maxLen {
		return b[:maxLen]
	}
	return b
}
