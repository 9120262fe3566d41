package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/brain/store"
)

// runRestore is `sluice-brain restore --snapshot FILE --data-dir DIR`:
// it writes a new embedded etcd member from a snapshot, for a brain then
// started on the same --data-dir.
func runRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-brain restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	snap := fs.String("snapshot", "", "snapshot file (sluicectl brain snapshot FILE)")
	dir := fs.String("data-dir", "/var/lib/sluice-brain", "the brain's data directory; its etcd directory must not exist")
	bump := fs.Uint64("revision-bump", store.DefaultRevisionBump, "raise the restored revision by this much, so agents see leader epochs grow (0: keep the snapshot's revision)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *snap == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "sluice-brain restore: want --snapshot FILE [--data-dir DIR] and no other arguments")
		return 2
	}
	if err := store.Restore(*snap, *dir, *bump); err != nil {
		fmt.Fprintf(stderr, "sluice-brain restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s; start the brain with --data-dir %s\n", *snap, *dir, *dir)
	return 0
}
