package store

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// EmbeddedMaxTxnOps is the embedded member's transaction limit: large
// enough to batch a few hundred placements with their target bumps.
const EmbeddedMaxTxnOps = 4096

// DefaultMaxTxnOps is etcd's default limit, assumed for external clusters.
const DefaultMaxTxnOps = 128

// Embedded is a single-member etcd running in this process.
type Embedded struct {
	etcd   *embed.Etcd
	Client *clientv3.Client
	// ClientURL is where the member serves clients on loopback.
	ClientURL string
	once      sync.Once
}

// Start runs a single-member etcd with its data in dir, listening on
// loopback only (peer and client ports picked free), and returns it once
// it serves. The member's client is in-process (no network hop).
func Start(ctx context.Context, dir string, log *slog.Logger) (*Embedded, error) {
	peer, err := freeLoopbackURL()
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	client, err := freeLoopbackURL()
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return StartMember(ctx, Member{Dir: dir, Name: embeddedName, PeerURL: peer.String(), ClientURL: client.String()}, log)
}

// Member is one embedded member of a cluster that brains run among
// themselves (no separate etcd to operate): each brain's member lists
// every member in InitialCluster.
type Member struct {
	// Dir is the brain's data dir; the member's data goes in Dir/etcd.
	Dir string
	// Name is unique in the cluster.
	Name string
	// PeerURL and ClientURL are where the member listens for its peers and
	// for clients (http://host:port).
	PeerURL, ClientURL string
	// InitialCluster is "name=peerURL,..." for every member; empty is a
	// single member. It is read only when Dir/etcd is new: a restarted
	// member rejoins from its data.
	InitialCluster string
	// QuotaBytes is the backend's size limit (etcd's --quota-backend-bytes);
	// past it etcd raises the NOSPACE alarm and refuses writes. 0: etcd's
	// default (2 GiB).
	QuotaBytes int64
}

// StartMember runs one embedded member and returns it once the cluster
// serves (a quorum of the initial cluster has started).
func StartMember(ctx context.Context, m Member, log *slog.Logger) (*Embedded, error) {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = filepath.Join(m.Dir, "etcd")
	// etcd logs through zap; the brain reports etcd failures through the
	// client's errors instead, so the member's own log stays quiet.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.MaxTxnOps = EmbeddedMaxTxnOps
	cfg.MaxRequestBytes = 16 << 20
	cfg.QuotaBackendBytes = m.QuotaBytes
	peer, err := url.Parse(m.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL %q: %w", m.PeerURL, err)
	}
	client, err := url.Parse(m.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL %q: %w", m.ClientURL, err)
	}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.InitialCluster = m.InitialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: %w", cfg.Dir, err)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd %s: not ready after 60s (is a quorum of %s up?)", m.Name, cfg.InitialCluster)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", ctx.Err())
	}
	log.Info("embedded etcd ready", "dir", cfg.Dir, "name", m.Name, "client", client.String(), "cluster", cfg.InitialCluster)
	return &Embedded{etcd: e, Client: v3client.New(e.Server), ClientURL: client.String()}, nil
}

// Close stops the member; later calls do nothing.
func (e *Embedded) Close() {
	e.once.Do(func() {
		e.Client.Close()
		e.etcd.Close()
	})
}

// Dial connects to an external etcd cluster.
func Dial(endpoints []string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", endpoints, err)
	}
	return c, nil
}

func freeLoopbackURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, fmt.Errorf("pick a loopback port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return url.URL{Scheme: "http", Host: addr}, nil
}
