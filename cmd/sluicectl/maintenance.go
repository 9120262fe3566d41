package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
)

// runMaintenance runs `brain status` and `brain snapshot FILE`.
func runMaintenance(ctx context.Context, url string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "sluicectl brain: want status or snapshot FILE\n")
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("brain "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "table", "output: table or json (status)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	hc, urls, err := brainHTTPClient(url, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "sluicectl brain %s: %v\n", sub, err)
		return 2
	}
	hc.Timeout = 30 * time.Minute // a snapshot of a large store
	switch {
	case sub != "status" && sub != "snapshot":
		fmt.Fprintf(stderr, "sluicectl brain: unknown command %q: want status or snapshot FILE\n", sub)
		return 2
	case sub == "snapshot" && fs.NArg() != 1:
		fmt.Fprintf(stderr, "sluicectl brain snapshot: want one FILE, got %d arguments\n", fs.NArg())
		return 2
	}
	err = eachBrain(urls, func(u string) error {
		mc := brainv1connect.NewMaintenanceServiceClient(hc, u)
		if sub == "status" {
			return brainStatus(ctx, mc, *out == "json", stdout)
		}
		return saveSnapshot(ctx, mc, fs.Arg(0), stdout)
	})
	if err != nil {
		fmt.Fprintf(stderr, "sluicectl brain %s: %v\n", sub, err)
		return 1
	}
	return 0
}

func brainStatus(ctx context.Context, mc brainv1connect.MaintenanceServiceClient, asJSON bool, stdout io.Writer) error {
	r, err := mc.StoreStatus(ctx, connect.NewRequest(&brainv1.StoreStatusRequest{}))
	if err != nil {
		return err
	}
	c := brainClient{json: asJSON, stdout: stdout}
	return c.print(r.Msg, func(w io.Writer) {
		m := r.Msg
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		alarms := strings.Join(m.GetAlarms(), ",")
		if alarms == "" {
			alarms = "none"
		}
		fmt.Fprintf(tw, "leader\t%s\nepoch\t%d\nrevision\t%d\ndb size\t%d bytes (%d in use)\nalarms\t%s\n",
			m.GetLeader(), m.GetEpoch(), m.GetRevision(), m.GetDbSizeBytes(), m.GetDbSizeInUseBytes(), alarms)
		fmt.Fprintf(tw, "last compaction\t%s\nlast defrag\t%s\n", unixMs(m.GetLastCompactionUnixMs()), unixMs(m.GetLastDefragUnixMs()))
		tw.Flush()
	})
}

func unixMs(ms int64) string {
	if ms == 0 {
		return "never (by this brain)"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// saveSnapshot writes the snapshot to a temp file beside path and renames
// it into place once complete, so a broken transfer never leaves a file
// that looks like a snapshot.
func saveSnapshot(ctx context.Context, mc brainv1connect.MaintenanceServiceClient, path string, stdout io.Writer) error {
	s, err := mc.Snapshot(ctx, connect.NewRequest(&brainv1.SnapshotRequest{}))
	if err != nil {
		return err
	}
	defer s.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	var n int64
	for s.Receive() {
		k, err := tmp.Write(s.Msg().GetData())
		n += int64(k)
		if err != nil {
			tmp.Close()
			return fmt.Errorf("snapshot %s: %w", path, err)
		}
	}
	if err := s.Err(); err != nil {
		tmp.Close()
		return err
	}
	if n == 0 {
		tmp.Close()
		return fmt.Errorf("snapshot %s: the brain sent nothing", path)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "saved %s (%d bytes); restore with: sluice-brain restore --snapshot %s --data-dir DIR\n", path, n, path)
	return nil
}
