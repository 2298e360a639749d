package service

import "golang.org/x/sys/windows"

// Privileged reports whether this process may manage services and install
// software machine-wide: on Windows, its token is elevated (an
// Administrator's, from an elevated prompt, or LocalSystem's).
func Privileged() bool {
	return windows.GetCurrentProcessToken().IsElevated()
}
