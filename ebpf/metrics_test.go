package ebpf

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/qos"
)

func TestRunqLatencyCollector(t *testing.T) {
	online := CgroupStats{RunqDelayTotal: 7 * time.Microsecond}
	online.RunqHist[10] = 3 // [1024, 2048) ns
	online.RunqHist[12] = 1 // [4096, 8192) ns
	offline := CgroupStats{RunqDelayTotal: 3 * time.Second}
	offline.RunqHist[HistSlots-1] = 1 // beyond the last finite bound
	byClass := map[qos.Class]CgroupStats{qos.ClassOnline: online, qos.ClassOffline: offline}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewRunqLatencyCollector(func() map[qos.Class]CgroupStats { return byClass }))
	if n, err := testutil.GatherAndCount(reg, "sluice_runq_latency_seconds"); err != nil || n != 2 {
		t.Fatalf("GatherAndCount = %d, %v; want 2 series", n, err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byLabel := map[string]struct {
		count   uint64
		sum     float64
		buckets map[float64]uint64
	}{}
	for _, m := range families[0].GetMetric() {
		h := m.GetHistogram()
		bs := map[float64]uint64{}
		for _, b := range h.GetBucket() {
			bs[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		if len(bs) != HistSlots-1 {
			t.Errorf("%d finite buckets, want %d", len(bs), HistSlots-1)
		}
		byLabel[m.GetLabel()[0].GetValue()] = struct {
			count   uint64
			sum     float64
			buckets map[float64]uint64
		}{h.GetSampleCount(), h.GetSampleSum(), bs}
	}
	on := byLabel["online"]
	if on.count != 4 || on.sum != 7e-6 {
		t.Errorf("online count %d sum %v, want 4 and 7e-6", on.count, on.sum)
	}
	for le, want := range map[float64]uint64{1024e-9: 0, 2048e-9: 3, 4096e-9: 3, 8192e-9: 4, 1 << 31 * 1e-9: 4} {
		if got := on.buckets[le]; got != want {
			t.Errorf("online bucket le=%v: %d, want %d", le, got, want)
		}
	}
	off := byLabel["offline"]
	if off.count != 1 || off.sum != 3 || off.buckets[1<<31*1e-9] != 0 {
		t.Errorf("offline: count %d sum %v last finite bucket %d; want 1, 3, 0", off.count, off.sum, off.buckets[1<<31*1e-9])
	}
	if _, ok := byLabel["system"]; ok {
		t.Errorf("system exported without data")
	}

	// The exposition text parses back.
	if err := testutil.CollectAndCompare(NewRunqLatencyCollector(func() map[qos.Class]CgroupStats { return nil }),
		strings.NewReader("")); err != nil {
		t.Errorf("empty collector: %v", err)
	}
}

func TestCgroupStatsSince(t *testing.T) {
	var prev, cur CgroupStats
	prev.RunqHist[3] = 2
	prev.RunqDelayTotal = 20
	prev.OnCPU = 100
	prev.Preemptions = 1
	cur = prev
	cur.RunqHist[3] = 5
	cur.RunqHist[4] = 1
	cur.RunqDelayTotal = 70
	cur.OnCPU = 150
	cur.Preemptions = 4
	d := since(cur, prev)
	if d.RunqHist[3] != 3 || d.RunqHist[4] != 1 || d.RunqDelayTotal != 50 || d.OnCPU != 50 || d.Preemptions != 3 {
		t.Errorf("since = %+v", d)
	}
	var sum CgroupStats
	sum.Add(prev)
	sum.Add(d)
	if sum != cur {
		t.Errorf("prev + since(cur, prev) = %+v, want %+v", sum, cur)
	}
	// An entry recreated after a Forget: counters below the previous read
	// are a restart, not a negative window.
	reset := CgroupStats{OnCPU: 10}
	reset.RunqHist[3] = 1
	if got := since(reset, cur); got != reset {
		t.Errorf("since after reset = %+v, want %+v", got, reset)
	}
	if n := cur.RunqCount(); n != 6 {
		t.Errorf("RunqCount = %d, want 6", n)
	}
}
