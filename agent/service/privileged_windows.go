package service

import (
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/mgr"
)

// Privileged reports whether this process may manage services and install
// software machine-wide: its token is elevated (an Administrator's, from an
// elevated prompt, or LocalSystem's), or the Service Control Manager grants
// it full access, which is what the service commands need (Wine gives
// processes a filtered token but an SCM that refuses nothing).
func Privileged() bool {
	if windows.GetCurrentProcessToken().IsElevated() {
		return true
	}
	m, err := mgr.Connect()
	if err != nil {
		return false
	}
	m.Disconnect()
	return true
}
