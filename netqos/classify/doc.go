// Package classify loads and attaches the eBPF programs that put traffic
// into its network tier by cgroup (bpf/netclass.c), with no net_cls: on
// cgroup v1 hosts they attach to the v2 hierarchy (/sys/fs/cgroup/unified),
// on v2 hosts to the unified root. See package netqos's doc for what
// survives a network namespace crossing and why the work is split across
// a socket program, a veth program and an uplink program.
package classify

//go:generate ../../ebpf/generate.sh netclass
