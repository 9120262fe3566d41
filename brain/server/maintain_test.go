package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluicehq/sluice/brain/store"
)

// Compaction drops history older than the revisions kept, defragmentation
// runs on the member, and a store filled past its quota raises NOSPACE,
// which the brain's health and metrics show.
func TestStoreUpkeepAndSpaceAlarm(t *testing.T) {
	ctx := context.Background()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}
	e, err := store.StartMember(ctx, store.Member{Dir: t.TempDir(), Name: "quota", PeerURL: free(), ClientURL: free(), QuotaBytes: 1 << 20}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cli, err := store.Dial([]string{e.ClientURL})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	reg := prometheus.NewRegistry()
	h, err := NewHA(HAConfig{Client: cli, AdvertiseURL: "http://brain", Registry: reg, Maintain: Maintenance{KeepRevisions: 5}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := cli.Put(ctx, "/upkeep/k", "0")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := cli.Put(ctx, "/upkeep/k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "/upkeep/k", clientv3.WithRev(first.Header.Revision)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("history before the kept revisions: %v, want it compacted", err)
	}
	if err := h.Defragment(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(h.m.store.compactions.WithLabelValues("ok")) + testutil.ToFloat64(h.m.store.defrags.WithLabelValues("ok")); got != 2 {
		t.Fatalf("compactions + defrags ok = %v, want 2", got)
	}
	h.readHealth(ctx)
	if s := h.StoreHealth(); s.DBSizeBytes <= 0 || len(s.Alarms) != 0 || s.Err != "" || s.LastCompaction.IsZero() || s.LastDefrag.IsZero() {
		t.Fatalf("health of a healthy store: %+v", s)
	}
	// Fill past the 1 MiB quota: etcd refuses writes and raises NOSPACE.
	big := strings.Repeat("x", 64<<10)
	var full error
	for i := 0; i < 200 && full == nil; i++ {
		_, full = cli.Put(ctx, fmt.Sprintf("/upkeep/big/%d", i), big)
	}
	if !errors.Is(full, rpctypes.ErrNoSpace) {
		t.Fatalf("filling the store: %v, want it to run out of space", full)
	}
	h.readHealth(ctx)
	if s := h.StoreHealth(); !slices.Contains(s.Alarms, "NOSPACE") {
		t.Fatalf("health of a full store: %+v", s)
	}
	if got := testutil.ToFloat64(h.m.store.alarm.WithLabelValues("NOSPACE")); got != 1 {
		t.Fatalf("sluice_brain_etcd_alarm{alarm=NOSPACE} = %v, want 1", got)
	}
}
