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
// which is the moment an ACK may be pending. Only a read that emptied the socket re-arms it
// (one that returned less than it asked for): after a full read more data is queued and is read
// next, and the kernel acknowledges every second full segment anyway, so a bulk transfer does
// not pay a system call per read (BenchmarkQuickAckRearm: 0.5-2.5 µs on this project's VMs).
func ackAtOnce(c *net.TCPConn) net.Conn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{Conn: c, raw: raw}
}

// quickAckConn re-arms TCP_QUICKACK after each read that emptied the socket. It embeds net.Conn, not
// *net.TCPConn, so that io.Copy cannot bypass Read through TCPConn.WriteTo.
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && n < len(p) {
		_ = c.raw.Control(setQuickAck)
	}
	return n, err
}

// CloseWrite half-closes the connection underneath (drainBeforeClose).
func (c *quickAckConn) CloseWrite() error { return closeWrite(c.Conn) }

var _ halfCloser = (*quickAckConn)(nil)

func setQuickAck(fd uintptr) {
	_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}
