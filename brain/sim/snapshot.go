package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

// SnapshotVersion is the only version of the snapshot file.
const SnapshotVersion = 1

// SnapshotFile is a saved brain state: the placement profile, the hosts
// and live placements, and optionally requests to replay against it. It is
// JSON; the profile, snapshot and requests use brain/place's exported field
// names ("Hosts", "Capacity", "Demand", ...):
//
//	{"version": 1,
//	 "profile":  {"Strategy": "best-fit", "Spreads": [...], ...},
//	 "snapshot": {"Hosts": [{"Name": "h1", "Capacity": {"cpu": 8000}}],
//	              "Placements": [{"ID": "a-0", "App": "a", "Demand": {"cpu": 1000}, "Host": "h1"}]},
//	 "requests": [{"ID": "b-0", "App": "b", "Demand": {"cpu": 2000}}]}
type SnapshotFile struct {
	Version  int             `json:"version"`
	Profile  place.Profile   `json:"profile"`
	Snapshot place.Snapshot  `json:"snapshot"`
	Requests []place.Request `json:"requests,omitempty"`
}

// MaxSnapshotBytes bounds a snapshot or request file read; a snapshot of
// 68,000 placements on 6,000 hosts with day curves is well under it.
const MaxSnapshotBytes = 128 << 20

// readBounded reads all of r, or fails naming the limit once r holds more
// than maxBytes.
func readBounded(r io.Reader, name string, maxBytes int64) ([]byte, error) {
	data, err := trace.ReadAll(r, maxBytes)
	if errors.Is(err, trace.ErrLimit) {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrBadSnapshot, err)
	}
	return data, err
}

// ErrBadSnapshot is wrapped by every error about a snapshot file's content.
var ErrBadSnapshot = errors.New("bad snapshot file")

// ReadSnapshot decodes a snapshot file strictly (unknown fields are
// errors) and checks it builds a cluster. name names the source in errors,
// which carry the line where the decoder could tell.
func ReadSnapshot(r io.Reader, name string) (*SnapshotFile, error) {
	data, err := readBounded(r, name, MaxSnapshotBytes)
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", name, err)
	}
	var wire wireSnapshot
	if err := decodeStrictJSON(data, &wire); err != nil {
		return nil, fmt.Errorf("%s%s: %w: %w", name, jsonLine(data, err), ErrBadSnapshot, err)
	}
	sf := *fromWire(&wire)
	if sf.Version != SnapshotVersion {
		return nil, fmt.Errorf("%s: %w: version %d, want %d", name, ErrBadSnapshot, sf.Version, SnapshotVersion)
	}
	if _, err := place.New(sf.Snapshot, sf.Profile); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrBadSnapshot, err)
	}
	return &sf, nil
}

// ReadRequests decodes a JSON array of place requests strictly.
func ReadRequests(r io.Reader, name string) ([]place.Request, error) {
	data, err := readBounded(r, name, MaxSnapshotBytes)
	if err != nil {
		return nil, fmt.Errorf("read requests %s: %w", name, err)
	}
	var reqs []place.Request
	if err := decodeStrictJSON(data, &reqs); err != nil {
		return nil, fmt.Errorf("%s%s: %w: %w", name, jsonLine(data, err), ErrBadSnapshot, err)
	}
	return reqs, nil
}

// WriteSnapshot writes sf as JSON, zero fields left out and each app's
// shared curves once (see snapwire.go); indented when small, compact when
// large.
func WriteSnapshot(w io.Writer, sf *SnapshotFile) error {
	enc := json.NewEncoder(w)
	if len(sf.Snapshot.Placements)+len(sf.Requests) < 1000 {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(toWire(sf)); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

func decodeStrictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// jsonLine renders ":<line>" for decoder errors that carry an offset.
func jsonLine(data []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return ""
	}
	return fmt.Sprintf(":%d", bytes.Count(data[:off], []byte("\n"))+1)
}

// Reproduce replays reqs (after the file's own requests) against the saved
// state with the profile's strategy. Requests keep their own non-zero
// seeds; the others get seeds derived from seed and their position, so the
// same inputs always give the same decisions.
func Reproduce(ctx context.Context, sf *SnapshotFile, reqs []place.Request, seed uint64, opts Options) (*Report, error) {
	elapsed := opts.stopwatch()
	w := &Workload{Name: "snapshot", Snapshot: sf.Snapshot, Profile: sf.Profile, Requests: append(append([]place.Request(nil), sf.Requests...), reqs...)}
	strategy := sf.Profile.Strategy
	if strategy == "" {
		strategy = place.StrategyDefault
	}
	run, err := Replay(ctx, w, strategy, seed, opts)
	if err != nil {
		return nil, fmt.Errorf("reproduce: %w", err)
	}
	rep := &Report{Mode: "reproduce", Workload: w.Name, Hosts: len(w.Snapshot.Hosts), Requests: len(w.Requests) + w.unplaceable(), PrePlaced: len(w.Snapshot.Placements), Runs: []*Run{run}}
	rep.RunTimeMS = elapsed()
	return rep, nil
}

// WriteDecisions writes one JSON line per decision.
func WriteDecisions(w io.Writer, logs []DecisionLog) error {
	enc := json.NewEncoder(w)
	for _, l := range logs {
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("write decisions: %w", err)
		}
	}
	return nil
}
