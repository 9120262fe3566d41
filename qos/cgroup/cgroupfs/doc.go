// Package cgroupfs is where the host's cgroup mount layout is worked out
// (layout.go: v1, hybrid or v2, where each controller's hierarchy and the
// BPF-attachable v2 hierarchy are, and how a container's cgroup path maps
// into each), and the small helpers every reader and writer of cgroup files
// shares: raw file reads, errno classification, the v1 "unlimited"
// sentinel, and parsers for limit, integer, flat-keyed and CPU-list files.
//
// The agent detects the Layout once at start and passes it to discovery,
// sampling, enforcement, the killer and the eBPF loader; nothing else
// looks at mount points.
package cgroupfs
