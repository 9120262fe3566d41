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
// Reports render as text and JSON; WriteCurvesSVG and WriteHeatmapSVG draw
// the pictures without dependencies. The package reads no clock: callers
// that want run times pass Options.Now.
package sim
