package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// stressRow is one stressor's line of stress-ng --metrics-brief.
type stressRow struct {
	Stressor    string
	BogoOps     uint64
	RealSeconds float64
	UsrSeconds  float64
	SysSeconds  float64
}

// parseStressMetrics reads the "metrc:" lines stress-ng (0.15) writes to
// stderr with --metrics-brief, also when it is stopped by SIGINT:
//
//	stress-ng: metrc: [20253] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s
//	stress-ng: metrc: [20253]                           (secs)    (secs)    (secs)   (real time) (usr+sys time)
//	stress-ng: metrc: [20253] cpu                1287      3.00      0.83      0.00       429.42        1543.21
//
// The stream stressor adds a "miscellaneous metrics:" section after the
// table (memory rates); it ends the table. Other lines (info, warnings)
// are skipped; a metrics line that is neither
// a header nor a well-formed stressor row is an error naming its line, and
// so is output with no stressor row at all. name is used in messages.
func parseStressMetrics(name string, r io.Reader) ([]stressRow, error) {
	sc := bufio.NewScanner(r)
	var rows []stressRow
	for line := 1; sc.Scan(); line++ {
		_, rest, ok := strings.Cut(sc.Text(), " metrc: ")
		if !ok {
			continue
		}
		// Drop the "[pid]" that follows the tag.
		if !strings.HasPrefix(rest, "[") {
			return nil, fmt.Errorf("%s: line %d: metrics line without [pid]", name, line)
		}
		_, rest, ok = strings.Cut(rest, "]")
		if !ok {
			return nil, fmt.Errorf("%s: line %d: metrics line without [pid]", name, line)
		}
		if strings.TrimSpace(rest) == "miscellaneous metrics:" {
			break
		}
		f := strings.Fields(rest)
		if len(f) == 0 || f[0] == "stressor" || strings.HasPrefix(f[0], "(") {
			continue // the two header lines
		}
		if len(f) != 7 {
			return nil, fmt.Errorf("%s: line %d: stressor %q: %d fields, want 7 (name, bogo ops, real, usr, sys, two rates)", name, line, f[0], len(f))
		}
		row := stressRow{Stressor: f[0]}
		var err error
		if row.BogoOps, err = strconv.ParseUint(f[1], 10, 64); err != nil {
			return nil, fmt.Errorf("%s: line %d: stressor %s: bogo ops %q: not a count", name, line, f[0], f[1])
		}
		for i, dst := range []*float64{&row.RealSeconds, &row.UsrSeconds, &row.SysSeconds} {
			v, err := strconv.ParseFloat(f[2+i], 64)
			if err != nil || v < 0 || v != v {
				return nil, fmt.Errorf("%s: line %d: stressor %s: %s %q: not a non-negative number",
					name, line, f[0], [...]string{"real time", "usr time", "sys time"}[i], f[2+i])
			}
			*dst = v
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no stressor metrics (was stress-ng run with --metrics-brief?)", name)
	}
	return rows, nil
}
