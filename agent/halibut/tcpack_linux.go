package halibut

import (
	"net"
	"syscall"
)

// ackAtOnce makes c acknowledge what it receives at once.
//
// Linux delays an ACK (up to 40 ms) when it expects to piggyback it on an answer, and it
// expects one as soon as a connection has carried a request and a response. A peer that
// leaves Nagle on then holds its next small write until that ACK arrives: after PROCEED an
// Octopus Server's next request waited 40 ms on every polling RPC. TCP_QUICKACK sends a
// pending ACK at once and leaves "interactive" mode, but the kernel re-enters that mode by
// itself, so the option is not sticky: it is re-armed after every read that returned data,
// which is the moment an ACK may be pending. One setsockopt costs well under a microsecond
// (BenchmarkQuickAckRearm), against several microseconds to decrypt the TLS record read.
func ackAtOnce(c *net.TCPConn) net.Conn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{Conn: c, raw: raw}
}

// quickAckConn re-arms TCP_QUICKACK after each read. It embeds net.Conn, not
// *net.TCPConn, so that io.Copy cannot bypass Read through TCPConn.WriteTo.
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		_ = c.raw.Control(setQuickAck)
	}
	return n, err
}

func setQuickAck(fd uintptr) {
	_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}
