// Package sample reads the host and its cgroups into the numbers the
// decision core consumes (qos.HostSample, qos.WorkloadSample,
// qos.ClassUsage).
//
// It holds three kinds of code, kept apart so each can be tested on its own:
//
//   - readers of kernel state that take their roots as parameters (Host for
//     procfs, CgroupReader for cgroup v1 and v2 trees, PSIWatcher for PSI
//     triggers), so tests point them at frozen fixtures under testdata/;
//   - small parsers of kernel text (flat keyed files, single values,
//     "max"), fuzzed;
//   - pure arithmetic: CPUMeter turns cumulative CPU time into milli-CPUs
//     (per-class sums are qos.AggregateClasses, done once per observation).
//
// Nothing here runs the agent loop, discovers workloads or loads eBPF; the
// loop calls these once per tick and when a PSI trigger fires.
package sample
