//go:build !windows

package service

import "os"

// Privileged reports whether this process may manage services and install
// software machine-wide: elsewhere than Windows, it runs as root.
func Privileged() bool { return os.Geteuid() == 0 }
