package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
)

// Maintenance sets how the leader keeps etcd healthy.
type Maintenance struct {
	// CompactEvery is how often the leader compacts history older than
	// KeepRevisions; default 5 minutes.
	CompactEvery time.Duration
	// KeepRevisions is how much history compaction keeps (agents and
	// watchers a few revisions behind still read it); default 10,000.
	KeepRevisions int64
	// DefragEvery is how often the leader defragments each member (frees
	// the space compaction released); default 1 hour. Defragmentation
	// blocks a member's reads and writes while it runs, so it goes one
	// member at a time.
	DefragEvery time.Duration
	// StatusEvery is how often every brain reads etcd's size and alarms
	// for metrics; default 10 s.
	StatusEvery time.Duration
}

func (m Maintenance) withDefaults() Maintenance {
	if m.CompactEvery <= 0 {
		m.CompactEvery = 5 * time.Minute
	}
	if m.KeepRevisions <= 0 {
		m.KeepRevisions = 10000
	}
	if m.DefragEvery <= 0 {
		m.DefragEvery = time.Hour
	}
	if m.StatusEvery <= 0 {
		m.StatusEvery = 10 * time.Second
	}
	return m
}

// StoreHealth is etcd's state as the brain last read it: what the web
// view and StoreStatus show.
type StoreHealth struct {
	DBSizeBytes      int64
	DBSizeInUseBytes int64
	// Alarms are active etcd alarms by name (NOSPACE, CORRUPT); with
	// NOSPACE etcd refuses writes until space is freed and it is disarmed.
	Alarms            []string
	Revision          int64
	CompactedRevision int64
	LastCompaction    time.Time
	LastDefrag        time.Time
	// Err is the last failure to read the status, empty when it worked.
	Err string
}

// StoreHealth returns the store's health as last read.
func (h *HA) StoreHealth() StoreHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.health
	s.Alarms = slices.Clone(s.Alarms)
	return s
}

type storeMetrics struct {
	dbSize, dbInUse prometheus.Gauge
	alarm           *prometheus.GaugeVec
	compactions     *prometheus.CounterVec
	defrags         *prometheus.CounterVec
}

func newStoreMetrics() storeMetrics {
	return storeMetrics{
		dbSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brain_etcd_db_size_bytes", Help: "Size of the etcd backend on disk (largest member).",
		}),
		dbInUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brain_etcd_db_size_in_use_bytes", Help: "Space of the etcd backend in use; defragmentation frees the rest.",
		}),
		alarm: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_brain_etcd_alarm", Help: "1 while etcd raises the alarm (NOSPACE: writes refused until space is freed and the alarm disarmed).",
		}, []string{"alarm"}),
		compactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_brain_etcd_compactions_total", Help: "Compactions the leader ran, by result: ok, error.",
		}, []string{"result"}),
		defrags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_brain_etcd_defrags_total", Help: "Member defragmentations the leader ran, by result: ok, error.",
		}, []string{"result"}),
	}
}

func (m storeMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.dbSize, m.dbInUse, m.alarm, m.compactions, m.defrags)
	for _, a := range []string{"NOSPACE", "CORRUPT"} {
		m.alarm.WithLabelValues(a)
	}
}

// maintain compacts and defragments while this brain leads.
func (h *HA) maintain(ctx context.Context, log *slog.Logger) {
	mc := h.cfg.Maintain
	compact := time.NewTicker(mc.CompactEvery)
	defer compact.Stop()
	defrag := time.NewTicker(mc.DefragEvery)
	defer defrag.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-compact.C:
			if err := h.Compact(ctx); err != nil {
				log.Warn("etcd compaction failed", "err", err)
			}
		case <-defrag.C:
			if err := h.Defragment(ctx); err != nil {
				log.Warn("etcd defragmentation failed", "err", err)
			}
		}
	}
}

// Compact drops etcd history older than KeepRevisions behind the current
// revision.
func (h *HA) Compact(ctx context.Context) error {
	resp, err := h.cfg.Client.Get(ctx, "compact", clientv3.WithCountOnly())
	if err != nil {
		h.m.store.compactions.WithLabelValues("error").Inc()
		return fmt.Errorf("compact: read revision: %w", err)
	}
	rev := resp.Header.Revision - h.cfg.Maintain.KeepRevisions
	if rev <= 0 {
		return nil
	}
	if _, err := h.cfg.Client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		// Compacting to a revision already compacted is no failure.
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil
		}
		h.m.store.compactions.WithLabelValues("error").Inc()
		return fmt.Errorf("compact to %d: %w", rev, err)
	}
	h.m.store.compactions.WithLabelValues("ok").Inc()
	h.mu.Lock()
	h.health.LastCompaction = time.Now()
	h.health.CompactedRevision = rev
	h.mu.Unlock()
	return nil
}

// Defragment defragments every member, one at a time.
func (h *HA) Defragment(ctx context.Context) error {
	var errs []error
	for _, ep := range h.cfg.Client.Endpoints() {
		if _, err := h.cfg.Client.Defragment(ctx, ep); err != nil {
			h.m.store.defrags.WithLabelValues("error").Inc()
			errs = append(errs, fmt.Errorf("defragment %s: %w", ep, err))
			continue
		}
		h.m.store.defrags.WithLabelValues("ok").Inc()
	}
	if len(errs) == 0 {
		h.mu.Lock()
		h.health.LastDefrag = time.Now()
		h.mu.Unlock()
	}
	return errors.Join(errs...)
}

// watchHealth reads etcd's size and alarms on every brain.
func (h *HA) watchHealth(ctx context.Context) {
	t := time.NewTicker(h.cfg.Maintain.StatusEvery)
	defer t.Stop()
	for {
		h.readHealth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *HA) readHealth(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var size, inUse, rev int64
	var errs []error
	for _, ep := range h.cfg.Client.Endpoints() {
		st, err := h.cfg.Client.Status(ctx, ep)
		if err != nil {
			errs = append(errs, fmt.Errorf("status %s: %w", ep, err))
			continue
		}
		size, inUse = max(size, st.DbSize), max(inUse, st.DbSizeInUse)
		rev = max(rev, st.Header.GetRevision())
	}
	var alarms []string
	ar, err := h.cfg.Client.AlarmList(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("alarm list: %w", err))
	} else {
		for _, a := range ar.Alarms {
			if a.Alarm != etcdserverpb.AlarmType_NONE {
				alarms = append(alarms, a.Alarm.String())
			}
		}
		slices.Sort(alarms)
		alarms = slices.Compact(alarms)
		for _, name := range []string{"NOSPACE", "CORRUPT"} {
			v := 0.0
			if slices.Contains(alarms, name) {
				v = 1
			}
			h.m.store.alarm.WithLabelValues(name).Set(v)
		}
	}
	h.m.store.dbSize.Set(float64(size))
	h.m.store.dbInUse.Set(float64(inUse))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.health.DBSizeBytes, h.health.DBSizeInUseBytes, h.health.Revision = size, inUse, rev
	if err == nil {
		h.health.Alarms = alarms
	}
	h.health.Err = ""
	if e := errors.Join(errs...); e != nil {
		h.health.Err = e.Error()
	}
}

// Snapshot streams a consistent snapshot of etcd (any brain serves it:
// they share the store).
func (h *HA) Snapshot(ctx context.Context, _ *connect.Request[brainv1.SnapshotRequest], stream *connect.ServerStream[brainv1.SnapshotResponse]) error {
	rc, err := h.cfg.Client.Snapshot(ctx)
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("snapshot: %w", err))
	}
	defer rc.Close()
	buf := make([]byte, 256<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if serr := stream.Send(&brainv1.SnapshotResponse{Data: buf[:n]}); serr != nil {
				return fmt.Errorf("snapshot: send: %w", serr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("snapshot: read: %w", err))
		}
	}
}

// StoreStatus reports the leader, its epoch and the store's health.
func (h *HA) StoreStatus(ctx context.Context, _ *connect.Request[brainv1.StoreStatusRequest]) (*connect.Response[brainv1.StoreStatusResponse], error) {
	leader, epoch := h.Leader()
	s := h.StoreHealth()
	out := &brainv1.StoreStatusResponse{
		Leader: leader, Epoch: uint64(max(epoch, 0)), DbSizeBytes: s.DBSizeBytes, DbSizeInUseBytes: s.DBSizeInUseBytes,
		Alarms: s.Alarms, Revision: s.Revision, CompactedRevision: s.CompactedRevision,
	}
	if !s.LastCompaction.IsZero() {
		out.LastCompactionUnixMs = s.LastCompaction.UnixMilli()
	}
	if !s.LastDefrag.IsZero() {
		out.LastDefragUnixMs = s.LastDefrag.UnixMilli()
	}
	return connect.NewResponse(out), nil
}
