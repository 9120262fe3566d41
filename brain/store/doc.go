// Package store keeps the brain's durable state in etcd: hosts, jobs,
// placements and per-host target documents with their versions. The
// brain's memory is a cache rebuilt from Load; every change goes through
// Commit, one transaction guarded by the mod revisions the cache last saw,
// so two writers can never both place the same replica or bump the same
// target version.
//
// Keys, under a prefix (default "/sluice/"):
//
//	hosts/<name>              Host
//	jobs/<name>               Job (brain/trace's vocabulary)
//	placements/<job>/<index>  Placement
//	targets/<host>            Target
//	revoked/<host>            Revocation
//
// Values are JSON. Start runs an embedded single-member etcd in a data
// directory on loopback; Dial connects to an external cluster.
package store
