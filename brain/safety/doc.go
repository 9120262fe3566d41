// Package safety judges whether a host is safe to colocate offline work on,
// from the interference signals its agent's heartbeats carry: online
// run-queue latency, CPU and memory pressure (PSI), the offline kills of
// the last hour and the share of the host the agent still lends.
//
// It is a pure function of those signals and written thresholds: no clock
// (the kill count comes in already windowed), no I/O. The thresholds and
// their reasons are in Thresholds and DefaultThresholds.
//
// The three states, most severe first:
//
//   - unsafe: online work is being harmed now, or the agent keeps killing
//     offline work. Placing more offline work here would add to the harm.
//   - squeezing: a signal is past its warning line, or the agent has taken
//     back nearly all it lends while offline work still runs: the agent is
//     protecting online work by squeezing offline. Colocation works, with
//     little headroom.
//   - safe: every signal below its warning line.
//
// A host that has not reported signals yet is unknown.
package safety
