package halibut

import (
	"net"
	"syscall"
	"testing"
)

// loopbackTCPPair returns both ends of a loopback TCP connection.
func loopbackTCPPair(tb testing.TB) (dialed, accepted *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close(); a.Close() })
	return d.(*net.TCPConn), a.(*net.TCPConn)
}

// TestQuickAckIsRearmedAfterReads checks the mechanism itself: the kernel
// drops TCP_QUICKACK by itself once the connection looks interactive (a read
// followed by a write), and the wrapped connection sets it again after each
// read that empties the socket (every read of a small message, as PROCEED).
// TCP_QUICKACK reads back as 1 only while quick-ACK mode is on.
func TestQuickAckIsRearmedAfterReads(t *testing.T) {
	for _, quickAck := range []bool{true, false} {
		dialed, accepted := loopbackTCPPair(t)
		lim := DefaultLimits()
		lim.TCPQuickAck = quickAck
		c := configureTCP(dialed, lim)
		if _, wrapped := c.(*quickAckConn); wrapped != quickAck {
			t.Fatalf("TCPQuickAck=%v: connection wrapped = %v", quickAck, wrapped)
		}
		raw, _ := dialed.SyscallConn()
		quickAckOn := func() bool {
			var v int
			var gerr error
			raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK) })
			if gerr != nil {
				t.Fatal(gerr)
			}
			return v != 0
		}
		buf := make([]byte, 64)
		rearmed := 0
		for range 5 {
			// request, response: what makes the kernel delay ACKs ("ping-pong" mode)
			if _, err := accepted.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
			if quickAckOn() {
				rearmed++
			}
			if _, err := c.Write([]byte("response")); err != nil {
				t.Fatal(err)
			}
			if _, err := accepted.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		if quickAck && rearmed != 5 {
			t.Errorf("quick-ACK mode was on after %d of 5 reads", rearmed)
		}
		if !quickAck && rearmed == 5 {
			t.Errorf("quick-ACK mode stayed on without re-arming: this check cannot tell the difference")
		}
		t.Logf("TCPQuickAck=%v: quick-ACK mode on after %d of 5 reads", quickAck, rearmed)
	}
}

// BenchmarkQuickAckRearm is the cost added to a read that empties the socket.
func BenchmarkQuickAckRearm(b *testing.B) {
	dialed, _ := loopbackTCPPair(b)
	raw, err := dialed.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := raw.Control(setQuickAck); err != nil {
			b.Fatal(err)
		}
	}
}

// The WebSocket polling endpoint's listener gives its connections the same
// immediate ACKs as the TCP accept loop: it once applied configureTCP and
// dropped the wrapped connection it returned.
func TestWebSocketListenerAcknowledgesAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &PollingServer{Limits: DefaultLimits()}
	wl := ps.WebSocketListener(ln)
	defer wl.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gc, ok := c.(*gatedConn)
	if !ok {
		t.Fatalf("accepted %T, want a *gatedConn", c)
	}
	if _, ok := gc.Conn.(*quickAckConn); !ok {
		t.Errorf("the accepted connection under the gate is %T, want *quickAckConn (TCPQuickAck is on)", gc.Conn)
	}
}
