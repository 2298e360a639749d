package scripts

import "syscall"

// setParentDeathSignal makes the kernel kill the shell if its supervisor dies (SIGKILL, a
// crash): nobody would be left to record its output or its exit code.
func setParentDeathSignal(a *syscall.SysProcAttr) {
	a.Pdeathsig = syscall.SIGKILL
}
