package halibut

import (
	"net"
	"syscall"
	"time"
)

// tcpUserTimeout is TCP_USER_TIMEOUT (linux/tcp.h, the same on every architecture); the
// syscall package names it on some architectures only.
const tcpUserTimeout = 0x12

// setUserTimeout sets TCP_USER_TIMEOUT (Limits.TCPUserTimeout): the kernel closes the
// connection when sent data stays unacknowledged that long, and, with keep-alive on, when
// probes go unanswered that long. 0 leaves the system default.
func setUserTimeout(c *net.TCPConn, d time.Duration) {
	if d <= 0 {
		return
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d/time.Millisecond))
	})
}
