//go:build !windows

package service

// NewSCM returns the Windows service manager; there is none elsewhere.
func NewSCM(infof, warnf func(format string, args ...any)) (Manager, error) {
	return nil, userf("Windows services can only be managed on Windows.")
}
