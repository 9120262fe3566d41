package cgrouptest

// files is a fake hierarchy's storage: one host directory per cgroup and
// one host file per cgroup file, so a failing test can be inspected.
type files struct {
	dir string
}
