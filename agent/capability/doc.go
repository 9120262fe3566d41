// Package capability probes, once at agent start, what the host offers
// Sluice: the cgroup layout and its controllers, BPF features, PSI,
// resctrl and tc. The result is one Capabilities value the agent logs
// once, shows in /state, and hands to every enforcer (and, later, to the
// brain at registration). A missing feature is a value, never a start
// failure: whoever needs it degrades and reports ErrNotSupported.
package capability
