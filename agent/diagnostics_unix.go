//go:build unix

package agent

import (
	"strings"

	"golang.org/x/sys/unix"
)

// osDescription is what .NET's RuntimeInformation.OSDescription gives on
// Unix: the kernel's name, release and version, as `uname -srv`.
func osDescription() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "Unable to retrieve environment information."
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
}

func osIs64Bit() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return strings.Contains(unix.ByteSliceToString(u.Machine[:]), "64")
}
