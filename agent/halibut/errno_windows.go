//go:build windows

package halibut

import "syscall"

// syscallEMFILE is "too many open files" from accept: worth a pause, not a
// stop. (WSAEMFILE on Windows.)
const syscallEMFILE = syscall.Errno(10024)
