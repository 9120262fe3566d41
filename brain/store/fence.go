package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrFenced is returned by Commit when the store's fence no longer holds:
// the leader key it names was deleted or re-created, so this writer is no
// longer the leader and nothing was written. Unlike ErrConflict, reloading
// does not help; the writer must stop.
var ErrFenced = errors.New("store: leadership lost (fenced out)")

// Fence names the leader key a writer holds (concurrency.Election's Key)
// and the revision that key was created at (its Rev, the leader's epoch).
// A fenced Commit compares the key's create revision, so a deposed or
// paused leader whose key expired cannot write.
type Fence struct {
	Key   string
	Epoch int64
}

// ElectionPrefix is where brains sharing prefix campaign. It lies beside
// the state's prefix, not under it, so Load never sees election keys.
func ElectionPrefix(prefix string) string {
	return strings.TrimSuffix(orDefault(prefix), "/") + "-election/"
}

// WriterKey holds the epoch of the leader that made the latest committed
// change: every fenced Commit writes it in the same transaction, so etcd's
// history says which leader made each revision.
func WriterKey(prefix string) string {
	return strings.TrimSuffix(orDefault(prefix), "/") + "-writer"
}

func orDefault(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

// WithFence returns a store whose every Commit holds only while f's
// leader key exists at f.Epoch.
func (s *Store) WithFence(f Fence) *Store {
	c := *s
	c.fence = &f
	return &c
}

// fenceOps are the compare and the writer stamp a fenced Commit adds.
func (s *Store) fenceOps() ([]clientv3.Cmp, []clientv3.Op) {
	if s.fence == nil {
		return nil, nil
	}
	return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.fence.Key), "=", s.fence.Epoch)},
		[]clientv3.Op{clientv3.OpPut(WriterKey(s.prefix), strconv.FormatInt(s.fence.Epoch, 10))}
}

// fenceHeld checks, after a failed transaction, whether the fence still
// holds (a guard failed) or not (ErrFenced).
func (s *Store) fenceHeld(ctx context.Context) error {
	if s.fence == nil {
		return nil
	}
	resp, err := s.kv.Get(ctx, s.fence.Key)
	if err != nil {
		return fmt.Errorf("store: check leader key %s: %w", s.fence.Key, err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != s.fence.Epoch {
		return fmt.Errorf("%w: leader key %s of epoch %d is gone", ErrFenced, s.fence.Key, s.fence.Epoch)
	}
	return nil
}
