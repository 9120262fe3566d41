// Command colo is the colocation benchmark (make bench-colo): does offline
// work get the CPU online work leaves idle, and what does that cost online
// latency, with Sluice and with the alternatives a performance engineer
// would hold it against.
//
//	make bench-colo                       # full run: about 80 minutes, not part of CI
//	ROUNDS=1 DURATION=10s make bench-colo # quick look, under 5 minutes, same table
//	test/colo/bench.sh -rounds 5 -keep    # driver flags pass through (-h lists them)
//	go run ./test/colo stalls             # does a busy CPU cost the others time? (stalls.go)
//
// It needs root, the v1 cpu, cpuacct and memory hierarchies, redis-server
// and stress-ng (Debian packages), and bin/sluice-agent (make build).
//
// # Online services and load
//
// Two online services run in the online cgroup: Debian's redis-server and
// a Go HTTP service (this binary's serve-cpu subcommand) whose every
// request builds, encodes, decodes and hashes a JSON document: real CPU
// work. Load is open loop: request i of a window is due at start + i/rate,
// whatever happened to the ones before, and its latency is measured from
// that scheduled time to its answer, so a stall of the service is charged
// to every request that waited behind it (no coordinated omission). The
// load generator is this binary's loadgen subcommand, one worker per
// connection, in its own loadgen cgroup (weight 10240, classed system for
// the agent): its CPU is reported and counted neither as online nor as
// idle. Its dispatcher records how late it handed each request out; a
// window whose lag p99 exceeds -max-lag (driver starved: the offered load
// was not the schedule) is reported and discarded.
//
// Load levels are percentages of each service's capacity measured here at
// the start (closed loop, all connections, nothing else running): redis at
// 20/40/60%, the HTTP service at 20/60%. That measurement moves between
// runs on a noisy host (redis 40-74k req/s on the same VM in one day), so
// runs to be compared pin it with -redis-capacity and -http-capacity; the
// calibration still runs (it fills redis' keyspace) and is reported beside
// the pinned value.
//
// # Conditions
//
// Every condition runs at every level in every round; rounds follow a
// balanced Latin square (each condition once in each position, after
// each other condition once) and alternate level order:
//
//   - alone: the service and its load only;
//   - alone+idle-spinner: plus a busy loop per CPU in a cpu.idle cgroup.
//     Idle vCPUs pay a wake-up cost that can make alone slower than busy;
//     the latency goal compares against the better of the two;
//   - no-isolation: plus burners (stress-ng --cpu <CPUs> --stream 1: CPU
//     and memory bandwidth) at default weight;
//   - cpu-idle-only: burners in a cpu.idle offline parent, no agent;
//   - koordinator-like: burners at cpu.shares 2 under a baseline controller
//     written from Koordinator's CPU Suppress documentation (cfsQuota
//     policy, every second: quota = capacity x 65% - online - system, floor
//     2 ms per 100 ms, growth at most 10% of the node per step; koord.go);
//   - sluice: burners under sluice-agent with its default policy (rules
//     class the benchmark's cgroups; -policy-extra adds policy lines).
//
// Each service's first window in a condition is preceded by -warmup
// (15 s: longer than the default policy's whole ramp, 2 s hold + 10 s),
// each later level by -level-warmup (5 s: a 20% step of one service's
// load moves host use by well under the ramp's span); windows last
// -duration (30 s). Load runs through the warm-up too.
//
// # What is measured
//
// Per window: p50, p99, p99.9 latency; throughput achieved vs offered;
// CPU from cpuacct.usage (exact, nanoseconds) of the root (host busy),
// online, loadgen, offline and spinner cgroups, read at the window's start
// and end and every second between; offline share = offline / (capacity
// - online - system - load generator), system being host busy outside
// our cgroups; the offline parent's CFS quota each second (the cap the
// agent or the baseline set); the agent's CPU, from the cgroup it runs in
// alone (counted in system, like any host daemon). Per condition and
// round: stress-ng bogo-ops per second of its run (cpu and stream).
//
// The report is one table per service (condition x level, median and
// interquartile range over kept rounds), the goal checks of issue 13 per
// level, and SVG plots in -out: latency percentiles per condition, and
// offline share per second with the cap overlaid.
//
// # Cgroups and cleanup
//
// A unique parent /sluice-colo-<rand> is made in the cpu, cpuacct and
// memory hierarchies with online/, loadgen/, spinner/ and
// offline/stress-ng/. Every process joins its cgroups before it execs and
// leads its own process group. On every exit (Ctrl-C included) the
// controllers stop, the offline parent is reset, every task left in the
// subtree is SIGKILLed and the subtree is removed, children first.
package main
