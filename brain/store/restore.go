package store

import (
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// embeddedName is the embedded member's name (Start); a restore names the
// member it writes the same.
const embeddedName = "sluice-brain"

// DefaultRevisionBump lifts a restored store's revision above any the lost
// store can have reached after its snapshot (etcd's own advice for
// restores), so the next leader's epoch is above every epoch agents have
// seen and they take its targets.
const DefaultRevisionBump = 1_000_000_000

// Restore writes a new embedded member's data under dataDir (where Start
// looks) from a snapshot file (MaintenanceService.Snapshot, `sluicectl
// brain snapshot`, `etcdctl snapshot save`). The revision is bumped by
// bump and marked compacted, so watchers and agents never see revisions
// or epochs go backwards. dataDir's etcd directory must not exist: a
// restore never overwrites a store.
func Restore(snapshotPath, dataDir string, bump uint64) error {
	out := filepath.Join(dataDir, "etcd")
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("restore into %s: it exists; move it away first (a restore never overwrites a store)", out)
	}
	if _, err := os.Stat(snapshotPath); err != nil {
		return fmt.Errorf("restore from %s: %w", snapshotPath, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	// The peer URL is a placeholder: Start listens on a free loopback port
	// and a single member does not dial its peers.
	const peer = "http://127.0.0.1:2380"
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath: snapshotPath, Name: embeddedName, OutputDataDir: out,
		PeerURLs: []string{peer}, InitialCluster: embeddedName + "=" + peer,
		InitialClusterToken: embed.NewConfig().InitialClusterToken,
		RevisionBump:        bump, MarkCompacted: bump > 0,
	})
	if err != nil {
		return fmt.Errorf("restore %s into %s: %w", snapshotPath, out, err)
	}
	return nil
}
