// Package resctrl is the kernel side of cache and memory-bandwidth
// isolation: it mounts resctrl when the kernel has it (Mount, else
// ErrNotSupported), reads the hardware model from info/ (Probe), applies
// rdt plans (Enforcer), reads the monitoring counters (Monitor, exported
// to Prometheus by Collector) and names the group a new container should
// start in (Enforcer.GroupFor, for OCI's linux.intelRdt.closID).
//
// The Enforcer keeps one resctrl group per class (rdt.GroupOnline,
// rdt.GroupOffline, optionally rdt.GroupSystem and one group per offline
// priority). It writes only the schemata values that differ from what the
// kernel holds, in one write per group, so the kernel applies them whole
// or not at all; a rejected write leaves the last good value and is
// reported with info/last_cmd_status. Groups without the "sluice-" prefix
// belong to other tools and are never touched; Sluice's own groups found
// at start are adopted as they are. Out of CLOSIDs (ENOSPC on mkdir),
// offline priorities share one group from then on (Merged).
//
// Tasks: children inherit their parent's group at fork, so a cgroup's
// threads are moved when the cgroup is first seen in a plan or changes
// group, and again only on a slow reconcile (Config.Reconcile) as a
// safety net; a thread that exits between listing and writing (ESRCH) is
// not an error.
//
// Everything goes through FS, so tests run on resctrltest's fake mount;
// Dir is the real one (normally /sys/fs/resctrl).
package resctrl
