//go:build !windows

package service

import "context"

// RunAsWindowsServiceIfNeeded runs the agent under the Windows Service
// Control Manager when the process was started by it. Elsewhere it does
// nothing and reports handled=false: the caller runs the agent itself.
func RunAsWindowsServiceIfNeeded(name string, startedBySCM bool, run func(ctx context.Context) error) (handled bool, err error) {
	return false, nil
}
