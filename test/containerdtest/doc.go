// Package containerdtest starts a private containerd for one test: root,
// state, sockets and logs under a temporary directory, the CRI plugin off,
// runc state under the same directory (so parallel instances never share
// runc's container ids), and every container's cgroup under a parent unique
// to the test. It builds a busybox image at test time (no registry is
// reachable from CI) and cleans up tasks, containers, snapshots, shims,
// mounts and cgroups (every v1 hierarchy and the unified one) even when the
// test fails.
//
// StartRegistry runs a private image registry (Debian's docker-registry)
// on loopback, for tests of image pulls.
//
// It needs root, containerd (1.6 or later) and runc; tests call
// kerneltest.RequireContainerd through Start.
package containerdtest
