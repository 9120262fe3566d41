// Package killer carries out the decision core's priority kills of offline
// work: through containerd when the victim is a container, else through its
// cgroup (cgroup.kill on v2, SIGKILL to every pid of cgroup.procs on v1).
//
// It refuses any victim whose class is not offline, whatever the plan says:
// the decision core never plans one, and a bug there must not take an
// online service down.
package killer
