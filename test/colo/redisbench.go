package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// benchRow is one test of a redis-benchmark --csv run (Redis 7 format).
type benchRow struct {
	Test         string
	OpsPerSec    float64
	P50Millis    float64
	P99Millis    float64
	MaxMillis    float64
	hasMaxMillis bool
}

// parseBenchCSV reads redis-benchmark's --csv output: a header line naming
// the columns, then one row per test. Columns are found by name, so an
// older or newer redis-benchmark that reorders or adds columns still
// parses; one that lacks p50 or p99 (Redis 6 and older print only rps) is
// an error naming the missing column. name is used in messages.
func parseBenchCSV(name string, r io.Reader) ([]benchRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked below, with a message that names the line
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty output: no csv header", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, want := range []string{"test", "rps", "p50_latency_ms", "p99_latency_ms"} {
		if _, ok := col[want]; !ok {
			return nil, fmt.Errorf("%s: line 1: header lacks column %q (redis-benchmark 7 or newer prints it with --csv)", name, want)
		}
	}
	var rows []benchRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s: line %d: %d fields, header has %d", name, line, len(rec), len(header))
		}
		num := func(field string) (float64, error) {
			s := rec[col[field]]
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 || v != v {
				return 0, fmt.Errorf("%s: line %d: field %s: %q is not a non-negative number", name, line, field, s)
			}
			return v, nil
		}
		row := benchRow{Test: rec[col["test"]]}
		if row.Test == "" {
			return nil, fmt.Errorf("%s: line %d: field test: empty", name, line)
		}
		if row.OpsPerSec, err = num("rps"); err != nil {
			return nil, err
		}
		if row.P50Millis, err = num("p50_latency_ms"); err != nil {
			return nil, err
		}
		if row.P99Millis, err = num("p99_latency_ms"); err != nil {
			return nil, err
		}
		if row.P99Millis < row.P50Millis {
			return nil, fmt.Errorf("%s: line %d: p99_latency_ms %g below p50_latency_ms %g", name, line, row.P99Millis, row.P50Millis)
		}
		if _, ok := col["max_latency_ms"]; ok {
			if row.MaxMillis, err = num("max_latency_ms"); err != nil {
				return nil, err
			}
			row.hasMaxMillis = true
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no test rows after the header", name)
	}
	return rows, nil
}
