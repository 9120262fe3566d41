package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultPrefix roots every key.
const DefaultPrefix = "/sluice/"

// ErrConflict is returned by Commit when a guarded key changed since the
// caller's Load: another writer got there first. Reload and retry.
var ErrConflict = errors.New("store: guarded key changed")

// Store reads and writes the brain's state in etcd.
type Store struct {
	kv     clientv3.KV
	prefix string
	// MaxOps is the most operations (guards count too) one transaction may
	// hold; the server's --max-txn-ops.
	maxOps int
	// fence, when set, guards every Commit (WithFence).
	fence *Fence
}

// New wraps an etcd client. maxOps is the etcd server's transaction limit.
func New(kv clientv3.KV, prefix string, maxOps int) *Store {
	return &Store{kv: kv, prefix: orDefault(prefix), maxOps: maxOps}
}

// MaxOps is the most operations one Commit may carry (a fence's compare
// and stamp already taken off).
func (s *Store) MaxOps() int {
	if s.fence != nil && s.maxOps > 0 {
		return s.maxOps - 2
	}
	return s.maxOps
}

// Key kinds.
const (
	kindHosts      = "hosts/"
	kindJobs       = "jobs/"
	kindPlacements = "placements/"
	kindTargets    = "targets/"
	kindRevoked    = "revoked/"
	kindRollouts   = "rollouts/"
)

// HostKey, JobKey, PlacementKey and TargetKey name records (without the
// prefix); they are what Revs and Batch use.
func HostKey(name string) string    { return kindHosts + name }
func JobKey(name string) string     { return kindJobs + name }
func TargetKey(host string) string  { return kindTargets + host }
func RevokedKey(host string) string { return kindRevoked + host }
func RolloutKey(job string) string  { return kindRollouts + job }
func PlacementKey(job string, index int) string {
	return kindPlacements + job + "/" + strconv.Itoa(index)
}

// State is everything in the store, with each key's mod revision.
type State struct {
	Hosts      map[string]Host
	Jobs       map[string]Job
	Placements map[string]Placement  // by PlacementKey
	Targets    map[string]Target     // by host
	Revoked    map[string]Revocation // by host
	Rollouts   map[string]Rollout    // by job
	// Revs maps every key (without prefix) to its mod revision.
	Revs map[string]int64
	// Revision is the store's revision at the read.
	Revision int64
}

// Load reads the whole state at one revision.
func (s *Store) Load(ctx context.Context) (*State, error) {
	resp, err := s.kv.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	st := &State{
		Hosts: map[string]Host{}, Jobs: map[string]Job{}, Placements: map[string]Placement{},
		Targets: map[string]Target{}, Revoked: map[string]Revocation{}, Rollouts: map[string]Rollout{},
		Revs: map[string]int64{}, Revision: resp.Header.Revision,
	}
	for _, kv := range resp.Kvs {
		key := strings.TrimPrefix(string(kv.Key), s.prefix)
		st.Revs[key] = kv.ModRevision
		var err error
		switch {
		case strings.HasPrefix(key, kindHosts):
			var h Host
			err = json.Unmarshal(kv.Value, &h)
			st.Hosts[h.Name] = h
		case strings.HasPrefix(key, kindJobs):
			var j Job
			err = json.Unmarshal(kv.Value, &j)
			st.Jobs[j.Name] = j
		case strings.HasPrefix(key, kindPlacements):
			var p Placement
			err = json.Unmarshal(kv.Value, &p)
			st.Placements[key] = p
		case strings.HasPrefix(key, kindTargets):
			var t Target
			err = json.Unmarshal(kv.Value, &t)
			st.Targets[t.Host] = t
		case strings.HasPrefix(key, kindRevoked):
			var r Revocation
			err = json.Unmarshal(kv.Value, &r)
			st.Revoked[r.Host] = r
		case strings.HasPrefix(key, kindRollouts):
			var r Rollout
			err = json.Unmarshal(kv.Value, &r)
			st.Rollouts[r.Job] = r
		default:
			err = errors.New("unknown kind of key")
		}
		if err != nil {
			return nil, fmt.Errorf("store: load %s: %w", key, err)
		}
	}
	return st, nil
}

// Batch is one transaction: every guard must hold (a key's mod revision
// as the caller last saw it, 0 = absent) for its puts and deletes to apply.
type Batch struct {
	Guards  map[string]int64
	Puts    map[string]any
	Deletes []string
}

// Ops counts the batch's operations against the transaction limit.
func (b *Batch) Ops() int { return len(b.Guards) + len(b.Puts) + len(b.Deletes) }

// Guard records the revision the caller expects key to have.
func (b *Batch) Guard(key string, rev int64) {
	if b.Guards == nil {
		b.Guards = map[string]int64{}
	}
	b.Guards[key] = rev
}

// Put stages a record for key.
func (b *Batch) Put(key string, v any) {
	if b.Puts == nil {
		b.Puts = map[string]any{}
	}
	b.Puts[key] = v
}

// Commit applies b atomically. It returns the revision the batch created
// (every put key's new mod revision), or ErrConflict when a guard failed
// and nothing changed. A fenced store (WithFence) also requires its leader
// key, returns ErrFenced when that failed, and stamps WriterKey.
func (s *Store) Commit(ctx context.Context, b *Batch) (int64, error) {
	fcmps, fops := s.fenceOps()
	if n := b.Ops() + len(fcmps) + len(fops); s.maxOps > 0 && n > s.maxOps {
		return 0, fmt.Errorf("store: commit: %d operations, the limit is %d", n, s.maxOps)
	}
	cmps := make([]clientv3.Cmp, 0, len(b.Guards)+len(fcmps))
	cmps = append(cmps, fcmps...)
	for k, rev := range b.Guards {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.prefix+k), "=", rev))
	}
	ops := make([]clientv3.Op, 0, len(b.Puts)+len(b.Deletes)+len(fops))
	ops = append(ops, fops...)
	for k, v := range b.Puts {
		data, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("store: commit: encode %s: %w", k, err)
		}
		ops = append(ops, clientv3.OpPut(s.prefix+k, string(data)))
	}
	for _, k := range b.Deletes {
		ops = append(ops, clientv3.OpDelete(s.prefix+k))
	}
	resp, err := s.kv.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("store: commit: %w", err)
	}
	if !resp.Succeeded {
		if err := s.fenceHeld(ctx); err != nil {
			return 0, err
		}
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// Ping checks etcd answers within the timeout.
func (s *Store) Ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := s.kv.Get(ctx, s.prefix+"ping", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}
