//go:build !linux && !windows

package halibut

import "net"

// ackAtOnce leaves c as it is: macOS and the BSDs have no per-socket way to
// turn delayed ACKs off (no TCP_QUICKACK, no ACK frequency option); only the
// system-wide sysctl net.inet.tcp.delayed_ack does, which is the
// administrator's choice. A peer with Nagle on may then wait for our delayed
// ACK as tcpack_linux.go describes.
func ackAtOnce(c *net.TCPConn) net.Conn { return c }
