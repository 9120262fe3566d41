// Package sample reads the host and its cgroups into the numbers the
// decision core consumes (qos.HostSample, qos.WorkloadSample,
// qos.ClassUsage).
//
// It holds three kinds of code, kept apart so each can be tested on its own:
//
//   - readers of kernel state that take their roots as parameters (Host for
//     procfs, CgroupReader for the cgroupfs.Layout detected at start,
//     PSIWatcher for PSI triggers), so tests point them at frozen fixtures
//     under testdata/ (cgroupfs.Detect on a fixture gives its Layout);
//   - small parsers of procfs text, fuzzed (cgroup files are parsed by
//     cgroupfs, shared with the enforcer);
//   - pure arithmetic: CPUMeter turns cumulative CPU time into milli-CPUs,
//     ClassCPUMeter measures every class at the fast tick from exact
//     counters (per-class sums of the slower samples are
//     qos.AggregateClasses, done once per observation).
//
// Nothing here runs the agent loop, discovers workloads or loads eBPF; the
// loop calls these once per tick and when a PSI trigger fires.
package sample
