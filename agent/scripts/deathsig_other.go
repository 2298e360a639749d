//go:build !linux && !windows

package scripts

import "syscall"

// setParentDeathSignal: only Linux has a parent-death signal; elsewhere a shell whose
// supervisor died ends when it next writes to its closed output pipe.
func setParentDeathSignal(*syscall.SysProcAttr) {}
