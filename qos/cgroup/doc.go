// Package cgroup enforces the decision core's Plan on cgroups, v1 or v2,
// behind one Enforcer interface chosen once at start: New takes the
// cgroupfs.Layout the agent detected and drives the hierarchies it names.
// It translates the plan's offline CPU (quota, period, weight, idle),
// memory, OOM score and cpuset intents into files and decides no value
// itself; v1 receives the plan's weight converted to cpu.shares. Where
// cgroups are mounted, and the helpers every reader and writer of cgroup
// files shares, live in the cgroupfs subpackage.
//
// Enforcement is level-triggered and idempotent: every Apply reads the
// kernel's current values, compares them with what the Plan asks for and
// writes only the differences, so applying the same plan twice writes
// nothing the second time and a restarted agent adopts what the kernel has
// (Current). Each intent is reported as an IntentResult (applied, unchanged,
// failed, unsupported, dry-run); a failure on one file does not stop the
// others and is named with its cgroup, file and kernel error.
//
// Hierarchy rules the kernel enforces shape the write order: on cgroup v1 a
// child's CFS quota may not exceed its parent's, so when the offline parent
// is tightened its children are clamped first and when it is loosened the
// parent goes first, then the children get their own quota back. What a
// child's own quota was is also noted on the child itself (an extended
// attribute, trusted.sluice.clamped_cfs, see NoteFS), so a restarted agent
// gives it back too, and the note vanishes with the cgroup. Cpuset parents must contain their children's CPUs, so
// ancestors are widened before a child is given new CPUs.
//
// Everything goes through the FS interface (one per hierarchy plus one for
// /proc), so tests point the enforcer at fake trees (package cgrouptest)
// that model and reject what the kernel would, and at real hierarchies.
//
// Tests: the fake-tree tests run anywhere (go test ./qos/cgroup/...);
// TestRealV1* need root and the v1 cpu, cpuacct, memory and cpuset
// hierarchies (kerneltest gates); TestRealV2* need a cgroup v2 host with
// controllers and run in the VM lane: test/vm/test.sh ./qos/cgroup/.
package cgroup
