package killer

import "syscall"

func signal(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
