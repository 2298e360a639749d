//go:build !linux

package upgrade

import "errors"

// pollingConnection is read from /proc on Linux only; elsewhere the
// heartbeat stands for the polling connection.
func pollingConnection(pid int, servers []string) (string, error) {
	return "", errors.ErrUnsupported
}
