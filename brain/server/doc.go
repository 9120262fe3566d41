// Package server is sluice-brain's service: the agent protocol and the
// operator API (Connect handlers over brain/api), a cache of the state in
// brain/store, host liveness in memory, and one reconcile loop that places
// jobs with brain/place and commits each batch of placements together with
// the target-version bumps of the hosts they touch in one guarded etcd
// transaction.
//
// The loop is level-triggered: every pass compares the jobs' counts with
// their placements and the hosts' states (down after their TTL, drained)
// and writes the difference. Submissions, deletions, registrations and
// drains queue up and are folded into the next pass, so concurrent callers
// share transactions; each caller returns once its change is committed.
//
// Offline jobs are placed against what hosts report they lend; online and
// system jobs against the hosts' capacity (requests). The two kinds live in
// two place.Cluster views of the same hosts, so placement rules (anti-
// affinity, spread, per-host caps) hold within a kind, not across kinds.
//
// Served with ServeTLS and Config.Authenticate, every RPC is authorised by
// its verified client certificate (access.go, brain/auth): agent
// procedures only for the host the certificate names, operator procedures
// by scope (read, submit, admin), revoked host certificates refused at
// their next request. Serve is plain text, for loopback only.
//
// Under overload (overload.go) agent work is shed in a fixed order,
// heartbeat detail before liveness, and never placement.
package server
