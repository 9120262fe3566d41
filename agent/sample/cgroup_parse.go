package sample

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// errKeyMissing reports a key absent from a flat keyed file.
var errKeyMissing = errors.New("key missing")

// parseUintValue parses a single-value cgroup file such as cpuacct.usage or
// memory.current: decimal digits and one trailing newline.
func parseUintValue(data []byte) (uint64, error) {
	v, err := strconv.ParseUint(string(bytes.TrimSuffix(data, []byte("\n"))), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse value %q: %w", clip(data), err)
	}
	return v, nil
}

// parseMaxValue parses a v2 limit file (memory.max): "max" means unlimited
// and is returned as 0, like qos.WorkloadSample.MemoryLimitBytes wants.
func parseMaxValue(data []byte) (uint64, error) {
	if string(bytes.TrimSuffix(data, []byte("\n"))) == "max" {
		return 0, nil
	}
	return parseUintValue(data)
}

// parseFlatKeyed finds key in a flat keyed file ("key value\n" lines, as
// cpu.stat and memory.stat) and parses its value. It scans the bytes in place
// without allocating: memory.stat is read on every tick for every workload.
// Lines are matched on the whole key, so "inactive_file" does not match
// "total_inactive_file".
func parseFlatKeyed(data []byte, key string) (uint64, error) {
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
	return 0, fmt.Errorf("%s: %w", key, errKeyMissing)
}

// clip bounds kernel text quoted in errors.
func clip(b []byte) []byte {
	const maxLen = 64
	if len(b) > maxLen {
		return b[:maxLen]
	}
	return b
}
