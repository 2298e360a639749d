//go:build !linux

package agent

// releaseStartupPages is Linux's (see startupcode_linux.go); elsewhere the
// binary's pages are left to the OS.
func releaseStartupPages() (int64, error) { return 0, nil }
