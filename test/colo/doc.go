// Command colo is the colocation interference benchmark (issue "Water-level
// CPU and memory lending with priority kills", benchmarks 2 and 3): an
// online service Sluice did not write — Debian's redis-server — under
// redis-benchmark load, measured alone, then next to offline CPU and memory
// burners (stress-ng) without Sluice, then with the real sluice-agent
// enforcing. It prints p50/p99 latency and throughput per phase, the offline
// work done (stress-ng bogo-ops and the offline cgroup's CPU seconds), host
// CPU use, the goal checks, and the agent's own CPU and RSS while enforcing.
//
//	make bench-colo                 # = test/colo/bench.sh: builds bin/, runs this as root
//	test/colo/bench.sh -rounds 5    # driver flags pass through (-h lists them)
//
// It needs root, the v1 cpu, cpuacct and memory hierarchies (this project's
// hosts run cgroups in hybrid mode), and the Debian packages redis-server,
// redis-tools and stress-ng. It is not part of make test.
//
// # Cgroups and processes
//
// A unique parent /sluice-colo-<rand> is made in the cpu, cpuacct and memory
// hierarchies, holding:
//
//   - online/: redis-server, on loopback at a free port, with an empty --save and --appendonly no;
//   - loadgen/: redis-benchmark. It is not offline work, and it is not the
//     service either: on a real host its requests would come from other
//     machines. Sharing this host, it must not be squeezed (a throttled
//     client would add its own stalls to the latencies it reports), so the
//     policy classes it system, which Sluice protects like host daemons;
//   - offline/: the offline parent the agent caps (policy offlineParent),
//     with stress-ng in offline/stress-ng, classed offline by a rule.
//
// Every process joins its cgroups before it execs (a shell writes its pid to
// each cgroup.procs, then execs the command): stress-ng forks its workers at
// once, so moving a pid after the start would race with the fork. Each
// process leads its own process group. On every exit — success, error, or
// Ctrl-C / SIGTERM (which cancel the run) — the phase stops its stress-ng
// and agent, redis-server is killed, every task left in the subtree is
// SIGKILLed until none remains, and the subtree is removed from every
// hierarchy, children first (the agent may have made the offline parent in
// others too).
//
// # Phases
//
// Each round runs three phases; odd rounds run them in reverse order so a
// drift in the host's other load does not favour one phase. Figures are the
// median over rounds, with min-max spread.
//
//   - alone: redis-benchmark -t get,set -n N -c 50 -d 64 -r 100000 --csv
//     against redis-server (the keyspace is filled once before the first
//     phase so every phase's GETs hit alike);
//   - burners: stress-ng --cpu <CPUs> --vm 1 --vm-bytes 1g --metrics-brief
//     in offline/ at default shares and no quota (the offline parent is
//     reset to neutral first: quota -1, idle 0, shares 1024, no memory
//     limits), warm-up, then the same benchmark;
//   - sluice: the real sluice-agent (-containerd "", -listen a free loopback
//     port) with a policy written to a temp dir: dryRun false, the
//     offline parent above, onStop release, rules for the three cgroups, and
//     cpu.highWater / rampPerSecond / growHold from flags (defaults 95%, 20%,
//     2s: a high water level because the goal asks offline to take most of
//     what online leaves, which a 70% level cannot give on 2 CPUs;
//     -runq-p99 sets cpu.onlineRunqLatencyP99 for agents that measure
//     run-queue latency with eBPF). The
//     agent must list the online and system cgroups before stress-ng starts;
//     then warm-up, then the benchmark while /state is polled every 500 ms;
//     after it, /state and /metrics are read and the agent is stopped
//     (SIGTERM; it lifts its caps).
//
// The measured window is the redis-benchmark run. Over it: the online,
// loadgen and offline cgroups' cpuacct.usage, host busy time from /proc/stat
// (user+nice+system+irq+softirq+steal over all CPUs, iowait counted idle),
// and in the sluice phase the agent's utime+stime and VmRSS from
// /proc/<pid>/stat and status (benchmark 3). stress-ng is stopped with
// SIGINT and its --metrics-brief lines parsed; its bogo-ops span warm-up and
// window, so rates (bogo-ops per second of its run) are what compare phases.
//
// # Goals, defined
//
//   - Latency: for each redis test, the median p99 with Sluice is at most
//     105% of the median p99 alone.
//   - Offline share: in the sluice phases, idle-left = CPUs x window -
//     (online + loadgen) CPU seconds, and share = offline CPU seconds /
//     idle-left, summed over rounds; goal at least 70%. Other users of the
//     host (anything outside our cgroups) count as idle-left by this
//     definition although Sluice rightly protects them (unclassed use counts
//     as system), so on a shared, busy machine the share is low by
//     construction; the report also prints offline / (offline + host idle)
//     and the other users' CPU per phase so a reader can tell the two apart.
package main
