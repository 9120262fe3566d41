// Package converge is the container-convergence enforcer: it makes the
// containers Sluice runs on a host match the brain's target for that host.
//
// Level-triggered: each pass lists the containers of one containerd
// namespace and their tasks (two calls), then, per targeted Spec, creates
// and starts a missing container under its class parent cgroup
// (<parent>/<id>) with the labels discovery reads (sluice.io/class,
// sluice.io/priority) and its own (sluice.io/managed-by=sluice, job,
// replica, a digest of the spec, a restart count), restarts an exited one
// per its restart policy with an exponential backoff, replaces one whose
// spec changed, and stops and removes managed containers that are no
// longer targeted. Containers without the managed-by label are never
// touched, whatever their id or namespace.
//
// containerd, not the converger's memory, is the state: a new Converger
// adopts the running containers an earlier one launched without
// restarting them, and continues their restart counts from the label.
//
// Image pulls and imports run in the background; a pass reports the
// container pending and never waits for them. Run is the worker: it
// converges to the last SetTarget when woken, on task exit events and on
// an interval, so the agent's loop never blocks on containerd. Dry-run
// reports what would be launched, restarted or stopped and changes
// nothing; on a host whose containers kubelet manages nothing is launched.
package converge
