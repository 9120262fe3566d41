package main

import (
	"testing"
	"time"
)

func TestParseP99(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"GET","99009.90","0.270","0.080","0.263","0.383","0.519","1.255"
`
	got, err := parseP99([]byte(out))
	if err != nil || got != 519*time.Microsecond {
		t.Errorf("parseP99 = %v, %v; want 519µs", got, err)
	}
	for _, bad := range []string{"", `"test","rps"` + "\n" + `"GET","1"` + "\n", `"p99_latency_ms"` + "\n" + `"x"` + "\n"} {
		if _, err := parseP99([]byte(bad)); err == nil {
			t.Errorf("parseP99(%q) accepted", bad)
		}
	}
}

func FuzzParseP99(f *testing.F) {
	f.Add([]byte(`"test","p99_latency_ms"` + "\n" + `"GET","0.5"` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseP99(b); err == nil && d < 0 {
			t.Fatalf("negative p99 %v accepted", d)
		}
	})
}
