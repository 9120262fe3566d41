// Package test holds Sluice's end-to-end and kernel test harnesses and the
// drivers of its benchmarks. Subpackages: kerneltest (feature gates),
// containerdtest (a private containerd per test), vm (a cgroup v2 kernel under QEMU),
// purity (the rules the pure cores qos and brain/place are held to), openbdata
// (where the openb cluster trace is, for the replay tests).
package test
