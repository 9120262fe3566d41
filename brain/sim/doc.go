// Package sim is the cluster simulator: it drives the brain's placement
// core (brain/place) with recorded or synthetic cluster data and scores the
// result, in the spirit of Sigma-cerebro.
//
// A Workload (hosts, placement profile, requests in arrival order) comes
// from a v2018 trace, a generic file or an openb trace (FromV2018,
// FromGeneric, FromOpenb). Three modes use it:
//
//   - Evaluate replays the requests against one or more strategies and
//     seeds and scores each run: allocation per dimension (with curves,
//     "requested" = sum of peaks, "used" = per host the peak of the summed
//     curve, and the mean over the day; see account.go),
//     fragmentation, failed placements and why, hosts used, constraint
//     violations found by an independent validator (Validate), and the
//     allocation-against-arrived-load curve.
//   - PreAllocate places a batch onto an inventory and finds, by binary
//     search, how many more hosts of a given type the rest needs.
//   - Reproduce loads a saved brain snapshot (SnapshotFile, JSON) and
//     replays requests against it, deterministically.
//
// A generic file's existing placements (requests' on:) start every run
// from the cluster as it runs; instances beyond what the cluster could
// hold even empty are counted as failed without being expanded
// (Workload.Unplaceable), and an identical request after a failure is
// counted without being tried. GenerateCluster writes a seeded large
// online cluster (hosts of two priced shapes, apps with daily curves,
// anti-affinity rules, existing placements) for planning at scale.
//
// Reports render as text and JSON; WriteCurvesSVG, WriteHeatmapSVG,
// WriteBandSVG (host utilisation over the day, before and after) and
// WriteShapesSVG (hosts used by shape) draw the pictures without
// dependencies. Snapshot files store each app's shared curves once. The package reads no clock: callers
// that want run times pass Options.Now.
package sim
