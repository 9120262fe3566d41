package sample

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The fast host tick reads /proc/stat ten times a second. These parsers
// read only what the tick needs (the cpu lines; four meminfo fields) in
// place, without allocating, where prometheus/procfs parses every line of
// /proc/stat (the intr line alone holds hundreds of numbers) with fmt and
// allocates per field.

// parseProcStat reads the aggregate "cpu" line and the per-CPU "cpuN"
// lines of /proc/stat. cpus is reused for the online CPU numbers, which
// are returned sorted (the kernel prints them in ascending order; an
// unsorted or repeated number is an error). Values are USER_HZ ticks.
//
// Busy is summed from fields that never decrease (user, nice, system, irq,
// softirq, steal) rather than total - idle - iowait, because iowait may go
// backwards (Documentation/filesystems/proc.rst); guest and guest_nice are
// already inside user and nice and are not added again.
func parseProcStat(data []byte, cpus []int) (cpuTicks, []int, error) {
	var t cpuTicks
	seenTotal := false
	cpus = cpus[:0]
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		name, rest, _ := bytes.Cut(line, []byte(" "))
		if !bytes.HasPrefix(name, []byte("cpu")) {
			if seenTotal {
				break // the cpu lines come first and together
			}
			continue
		}
		var f [8]uint64 // user nice system idle iowait irq softirq steal
		if err := parseTickFields(rest, f[:]); err != nil {
			return t, cpus, fmt.Errorf("line %d (%s): %w", lineNo, clip(name), err)
		}
		if len(name) == 3 {
			if seenTotal {
				return t, cpus, fmt.Errorf("line %d: a second aggregate cpu line", lineNo)
			}
			seenTotal = true
			busy := f[0] + f[1] + f[2] + f[5] + f[6] + f[7]
			t = cpuTicks{busy: int64(busy), total: int64(busy + f[3] + f[4])}
			continue
		}
		id, err := strconv.Atoi(string(name[3:]))
		if err != nil || id < 0 {
			return t, cpus, fmt.Errorf("line %d: %q is not cpuN", lineNo, clip(name))
		}
		if n := len(cpus); n > 0 && id <= cpus[n-1] {
			return t, cpus, fmt.Errorf("line %d: cpu%d after cpu%d", lineNo, id, cpus[n-1])
		}
		cpus = append(cpus, id)
	}
	switch {
	case !seenTotal:
		return t, cpus, errors.New("no aggregate cpu line")
	case len(cpus) == 0:
		return t, cpus, errors.New("no per-cpu lines")
	case t.total < 0 || t.busy < 0:
		return t, cpus, errors.New("cpu time beyond 2^63 ticks")
	}
	return t, cpus, nil
}

// parseTickFields fills f from the first len(f) space-separated numbers of
// a cpu line (the kernel pads the aggregate line's name with two spaces).
// Kernels before 2.6.33 printed fewer than eight fields; they are refused
// rather than read as zero.
func parseTickFields(rest []byte, f []uint64) error {
	for i := range f {
		rest = bytes.TrimLeft(rest, " ")
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte(" "))
		if len(field) == 0 {
			return fmt.Errorf("%d fields, want at least %d", i, len(f))
		}
		v, err := strconv.ParseUint(string(field), 10, 64)
		if err != nil {
			return fmt.Errorf("field %d: %w", i+1, err)
		}
		if v > 1<<59 { // so that eight of them sum without overflow
			return fmt.Errorf("field %d: %d ticks is beyond any uptime", i+1, v)
		}
		f[i] = v
	}
	return nil
}

// meminfoFields are the /proc/meminfo lines the host sample uses.
type meminfoFields struct {
	totalBytes, availableBytes, cachedBytes, buffersBytes uint64
}

// parseMeminfo reads MemTotal, MemAvailable, Cached and Buffers ("Name:
// <n> kB") from /proc/meminfo; a missing one is an error naming it.
func parseMeminfo(data []byte) (meminfoFields, error) {
	var m meminfoFields
	want := []struct {
		name string
		into *uint64
		seen bool
	}{{"MemTotal", &m.totalBytes, false}, {"MemAvailable", &m.availableBytes, false}, {"Cached", &m.cachedBytes, false}, {"Buffers", &m.buffersBytes, false}}
	left := len(want)
	for lineNo := 1; len(data) > 0 && left > 0; lineNo++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		for i := range want {
			w := &want[i]
			if w.seen || string(name) != w.name {
				continue
			}
			num, unit, _ := bytes.Cut(bytes.TrimSpace(rest), []byte(" "))
			v, err := strconv.ParseUint(string(num), 10, 64)
			if err != nil {
				return m, fmt.Errorf("line %d: %s: %w", lineNo, w.name, err)
			}
			if string(unit) != "kB" {
				return m, fmt.Errorf("line %d: %s: unit %q, want kB", lineNo, w.name, clip(unit))
			}
			if v > 1<<53 {
				return m, fmt.Errorf("line %d: %s: %d kB is beyond any memory", lineNo, w.name, v)
			}
			*w.into, w.seen = v*1024, true
			left--
		}
	}
	for _, w := range want {
		if !w.seen {
			return m, fmt.Errorf("field %s missing", w.name)
		}
	}
	return m, nil
}

// psiAvg10 is the avg10 of the "some" and "full" lines of a
// /proc/pressure file, in percent; hasSome and hasFull say which lines
// were there (the system-wide cpu file has "full" only since Linux 5.13).
type psiAvg10 struct {
	some, full       float64
	hasSome, hasFull bool
}

// parsePSI reads the avg10 figures of a pressure file:
//
//	some avg10=0.12 avg60=0.05 avg300=0.01 total=12345
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
func parsePSI(data []byte) (psiAvg10, error) {
	var p psiAvg10
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		kind, rest, _ := bytes.Cut(line, []byte(" "))
		var into *float64
		var seen *bool
		switch string(kind) {
		case "some":
			into, seen = &p.some, &p.hasSome
		case "full":
			into, seen = &p.full, &p.hasFull
		default:
			continue
		}
		field, _, _ := bytes.Cut(rest, []byte(" "))
		v, ok := bytes.CutPrefix(field, []byte("avg10="))
		if !ok {
			return p, fmt.Errorf("line %d: %s: first field %q, want avg10=", lineNo, kind, clip(field))
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || f < 0 || f > 100 {
			return p, fmt.Errorf("line %d: %s avg10 %q: want a percentage", lineNo, kind, clip(v))
		}
		if *seen {
			return p, fmt.Errorf("line %d: a second %q line", lineNo, kind)
		}
		*into, *seen = f, true
	}
	return p, nil
}

// clip bounds kernel text quoted in errors.
func clip(b []byte) []byte {
	const maxLen = 64
	if len(b) > maxLen {
		return b[:maxLen]
	}
	return b
}
