package halibut

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// deadLinkNoticeBound is issue 20's bound: a link dropped silently (no FIN, no RST) is
// noticed within 30 s on both sides, whether the connection was idle (keep-alive) or had
// data in flight (TCP_USER_TIMEOUT).
const deadLinkNoticeBound = 30 * time.Second

// The default limits meet that bound, read back from sockets the dialing and the accepting
// side configured (configureTCP), not only from the Limits value. The fault tests
// (agent/faults) show it on a real dropped link with tuned-down values, and in `make soak`
// with these defaults.
func TestDefaultLimitsNoticeADeadLinkWithin30Seconds(t *testing.T) {
	lim := DefaultLimits()
	ka := lim.TCPKeepAlive
	if idle := ka.Idle + time.Duration(ka.Count)*ka.Interval; !ka.Enable || idle > deadLinkNoticeBound {
		t.Errorf("keep-alive closes an idle dead connection after %v (enabled %v); want <= %v", idle, ka.Enable, deadLinkNoticeBound)
	}
	if lim.TCPUserTimeout <= 0 || lim.TCPUserTimeout > deadLinkNoticeBound {
		t.Errorf("TCPUserTimeout %v; want in (0, %v]", lim.TCPUserTimeout, deadLinkNoticeBound)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	a := <-accepted
	defer a.Close()
	for side, c := range map[string]net.Conn{"dialing": dialed, "accepting": a} {
		configureTCP(c, lim)
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		_ = raw.Control(func(fd uintptr) {
			for name, opt := range map[string]int{"TCP_KEEPIDLE": syscall.TCP_KEEPIDLE, "TCP_KEEPINTVL": syscall.TCP_KEEPINTVL, "TCP_KEEPCNT": syscall.TCP_KEEPCNT, "TCP_USER_TIMEOUT": tcpUserTimeout} {
				v, err := syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt)
				if err != nil {
					t.Errorf("%s: getsockopt %s: %v", side, name, err)
				}
				got[name] = v
			}
			on, _ := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			got["SO_KEEPALIVE"] = on
		})
		idle := time.Duration(got["TCP_KEEPIDLE"]+got["TCP_KEEPCNT"]*got["TCP_KEEPINTVL"]) * time.Second
		user := time.Duration(got["TCP_USER_TIMEOUT"]) * time.Millisecond
		t.Logf("%s side: %v (idle dead link closed after %v, unacknowledged data after %v)", side, got, idle, user)
		if got["SO_KEEPALIVE"] == 0 || idle > deadLinkNoticeBound || user <= 0 || user > deadLinkNoticeBound {
			t.Errorf("%s side: socket options %v do not close a dead link within %v", side, got, deadLinkNoticeBound)
		}
	}
}
