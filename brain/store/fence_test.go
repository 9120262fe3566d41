package store

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"

	"go.etcd.io/etcd/client/v3/concurrency"
)

func startEtcd(t *testing.T) *Embedded {
	t.Helper()
	e, err := Start(context.Background(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// A fenced store writes while its leader key stands and stamps the writer;
// once the key is gone (resigned, lease expired) its commits are refused
// with ErrFenced and change nothing, while a guard failure under a held
// fence stays ErrConflict.
func TestFencedCommit(t *testing.T) {
	e := startEtcd(t)
	ctx := context.Background()
	sess, err := concurrency.NewSession(e.Client, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, ElectionPrefix(""))
	if err := el.Campaign(ctx, "brain-a"); err != nil {
		t.Fatal(err)
	}
	s := New(e.Client, "", EmbeddedMaxTxnOps).WithFence(Fence{Key: el.Key(), Epoch: el.Rev()})
	if got, want := s.MaxOps(), EmbeddedMaxTxnOps-2; got != want {
		t.Errorf("MaxOps = %d, want %d (fence compare and stamp taken off)", got, want)
	}
	var b Batch
	b.Guard(HostKey("h1"), 0)
	b.Put(HostKey("h1"), Host{Name: "h1"})
	if _, err := s.Commit(ctx, &b); err != nil {
		t.Fatalf("commit while leader: %v", err)
	}
	w, err := e.Client.Get(ctx, WriterKey(""))
	if err != nil || len(w.Kvs) != 1 {
		t.Fatalf("writer stamp: %v %v", w, err)
	}
	if got := string(w.Kvs[0].Value); got != itoa(el.Rev()) {
		t.Errorf("writer stamp = %s, want the epoch %d", got, el.Rev())
	}
	if _, err := s.Load(ctx); err != nil {
		t.Fatalf("load beside election and writer keys: %v", err)
	}
	// A stale guard with the fence held is a conflict.
	if _, err := s.Commit(ctx, &b); !errors.Is(err, ErrConflict) {
		t.Errorf("stale guard: got %v, want ErrConflict", err)
	}
	if err := el.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b2 Batch
	b2.Guard(HostKey("h2"), 0)
	b2.Put(HostKey("h2"), Host{Name: "h2"})
	_, err = s.Commit(ctx, &b2)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("commit after resigning: got %v, want ErrFenced", err)
	}
	after, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.Hosts["h2"]; ok || after.Revision != st.Revision {
		t.Errorf("a fenced-out commit changed the store: revision %d -> %d, hosts %v", st.Revision, after.Revision, after.Hosts)
	}
	// A new leader's fence is a new epoch: the old one stays refused even
	// though the election key exists again.
	if err := el.Campaign(ctx, "brain-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, &b2); !errors.Is(err, ErrFenced) {
		t.Fatalf("old epoch after a new election: got %v, want ErrFenced", err)
	}
	if _, err := s.WithFence(Fence{Key: el.Key(), Epoch: el.Rev()}).Commit(ctx, &b2); err != nil {
		t.Fatalf("new epoch: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
