package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseBenchCSVRedis7(t *testing.T) {
	f, err := os.Open("testdata/redis-benchmark-7.0.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := parseBenchCSV("fixture", f)
	if err != nil {
		t.Fatal(err)
	}
	want := []benchRow{
		{Test: "SET", OpsPerSec: 27987.69, P50Millis: 0.399, P99Millis: 10.247, MaxMillis: 39.359, hasMaxMillis: true},
		{Test: "GET", OpsPerSec: 31397.18, P50Millis: 0.431, P99Millis: 7.967, MaxMillis: 172.671, hasMaxMillis: true},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestParseBenchCSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty output"},
		{"redis6", "\"test\",\"rps\"\n\"SET\",\"1000\"\n", `lacks column "p50_latency_ms"`},
		{"no rows", "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n", "no test rows"},
		{"short row", "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"SET\",\"1\"\n", "line 2: 2 fields, header has 4"},
		{"bad number", "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"SET\",\"1\",\"x\",\"2\"\n", `line 2: field p50_latency_ms: "x"`},
		{"negative", "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"SET\",\"-1\",\"1\",\"2\"\n", "field rps"},
		{"nan", "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"SET\",\"NaN\",\"1\",\"2\"\n", "field rps"},
		{"p99 below p50", "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"SET\",\"1\",\"3\",\"2\"\n", "line 2: p99_latency_ms 2 below p50_latency_ms 3"},
		{"empty test", "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"\",\"1\",\"1\",\"2\"\n", "line 2: field test: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBenchCSV("out.csv", strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "out.csv: ") {
				t.Fatalf("err = %v, want one starting with out.csv: and containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseBenchCSV(f *testing.F) {
	b, err := os.ReadFile("testdata/redis-benchmark-7.0.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"SET\",\"1e308\",\"0\",\"Inf\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := parseBenchCSV("fuzz", strings.NewReader(in))
		if err != nil {
			if len(rows) != 0 {
				t.Fatalf("rows %+v returned with error %v", rows, err)
			}
			return
		}
		if len(rows) == 0 {
			t.Fatal("no rows and no error")
		}
		for _, r := range rows {
			if r.Test == "" || r.OpsPerSec < 0 || r.P50Millis < 0 || r.P99Millis < r.P50Millis {
				t.Fatalf("accepted an invalid row %+v", r)
			}
		}
	})
}
