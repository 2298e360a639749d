//go:build !windows

package halibut

import "syscall"

// syscallEMFILE is "too many open files" from accept: worth a pause, not a
// stop.
const syscallEMFILE = syscall.EMFILE
