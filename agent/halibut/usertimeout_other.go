//go:build !linux

package halibut

import (
	"net"
	"time"
)

// setUserTimeout does nothing outside Linux: there keep-alive (Limits.TCPKeepAlive) is what
// notices a dropped link, on idle connections only.
func setUserTimeout(*net.TCPConn, time.Duration) {}
