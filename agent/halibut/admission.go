package halibut

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Connections that have not identified themselves yet cost a file
// descriptor, a goroutine and TLS buffers each, and anyone who can reach the
// port can open them. Two bounds keep them cheap:
//
//   - one fixed deadline (Limits.IdentificationTimeout) from accept to
//     identification, which no read, write or deadline change can extend;
//   - a cap on how many may exist, overall and per source address.
//
// When a cap is reached, the new connection is admitted and an old one is
// closed: the oldest of its own address when that address is at its cap,
// else the oldest of the address holding the most. Refusing the newcomer
// instead would let anyone who fills the cap with idle connections lock
// every legitimate client out for as long as they keep it full; with
// eviction, holding connections achieves nothing, and a source can only
// push out connections of sources holding as many as it does.

// unidentifiedGate is the set of connections accepted but not yet
// identified. The zero value is ready to use.
type unidentifiedGate struct {
	mu       sync.Mutex
	bySource map[string][]*gatedConn // each oldest first
	total    int
}

// gatedConn is an accepted connection under its identification deadline:
// every deadline set on it is clamped to notAfter until it is identified.
type gatedConn struct {
	net.Conn
	gate     *unidentifiedGate
	source   string
	accepted time.Time

	deadlineMu sync.Mutex
	notAfter   time.Time // zero once identified

	pending bool // in gate.bySource; guarded by gate.mu
}

// CloseWrite half-closes the connection underneath (drainBeforeClose).
func (c *gatedConn) CloseWrite() error { return closeWrite(c.Conn) }

var _ halfCloser = (*gatedConn)(nil)

// admit registers c as unidentified and sets its identification deadline.
// It returns the connection closed to make room, if any; or, when the one
// that would be closed is younger than lim.UnidentifiedEvictionAge, refused
// true: c itself is closed and not registered.
func (g *unidentifiedGate) admit(c net.Conn, lim Limits, now time.Time) (admitted, evicted *gatedConn, refused bool) {
	gc := &gatedConn{Conn: c, gate: g, source: sourceKey(c.RemoteAddr()), accepted: now, notAfter: now.Add(lim.IdentificationTimeout)}
	_ = c.SetDeadline(gc.notAfter)
	g.mu.Lock()
	if g.bySource == nil {
		g.bySource = map[string][]*gatedConn{}
	}
	if same := g.bySource[gc.source]; len(same) >= lim.MaxUnidentifiedConnectionsPerAddress {
		evicted = same[0]
	} else if g.total >= lim.MaxUnidentifiedConnections {
		evicted = g.busiestOldestLocked()
	}
	if evicted != nil && now.Sub(evicted.accepted) < lim.UnidentifiedEvictionAge {
		g.mu.Unlock()
		c.Close()
		return gc, nil, true
	}
	if evicted != nil {
		g.removeLocked(evicted)
	}
	gc.pending = true
	g.bySource[gc.source] = append(g.bySource[gc.source], gc)
	g.total++
	g.mu.Unlock()
	if evicted != nil {
		evicted.Conn.Close()
	}
	return gc, evicted, false
}

// busiestOldestLocked is the oldest connection of the source holding the
// most unidentified connections (the older one on a tie).
func (g *unidentifiedGate) busiestOldestLocked() *gatedConn {
	var victim *gatedConn
	most := 0
	for _, conns := range g.bySource {
		if len(conns) > most || len(conns) == most && conns[0].accepted.Before(victim.accepted) {
			most, victim = len(conns), conns[0]
		}
	}
	return victim
}

func (g *unidentifiedGate) removeLocked(gc *gatedConn) {
	if !gc.pending {
		return
	}
	gc.pending = false
	conns := g.bySource[gc.source]
	for i, c := range conns {
		if c == gc {
			conns = append(conns[:i], conns[i+1:]...)
			break
		}
	}
	if len(conns) == 0 {
		delete(g.bySource, gc.source)
	} else {
		g.bySource[gc.source] = conns
	}
	g.total--
}

func (g *unidentifiedGate) release(gc *gatedConn) {
	g.mu.Lock()
	g.removeLocked(gc)
	g.mu.Unlock()
}

// closeAll closes every unidentified connection (at shutdown: none has a
// request in flight).
func (g *unidentifiedGate) closeAll() {
	g.mu.Lock()
	var all []*gatedConn
	for _, conns := range g.bySource {
		all = append(all, conns...)
	}
	for _, gc := range all {
		g.removeLocked(gc)
	}
	g.mu.Unlock()
	for _, gc := range all {
		gc.Conn.Close()
	}
}

// count is the number of unidentified connections.
func (g *unidentifiedGate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// identified lifts the deadline clamp and leaves the gate. The deadline in
// force stays until the next operation sets its own.
func (gc *gatedConn) identified() {
	gc.deadlineMu.Lock()
	gc.notAfter = time.Time{}
	gc.deadlineMu.Unlock()
	gc.gate.release(gc)
}

func (gc *gatedConn) Close() error {
	gc.gate.release(gc)
	return gc.Conn.Close()
}

// clamp keeps t (zero meaning none) within the identification deadline.
func (gc *gatedConn) clamp(t time.Time) time.Time {
	gc.deadlineMu.Lock()
	limit := gc.notAfter
	gc.deadlineMu.Unlock()
	if !limit.IsZero() && (t.IsZero() || t.After(limit)) {
		return limit
	}
	return t
}

func (gc *gatedConn) SetDeadline(t time.Time) error     { return gc.Conn.SetDeadline(gc.clamp(t)) }
func (gc *gatedConn) SetReadDeadline(t time.Time) error { return gc.Conn.SetReadDeadline(gc.clamp(t)) }
func (gc *gatedConn) SetWriteDeadline(t time.Time) error {
	return gc.Conn.SetWriteDeadline(gc.clamp(t))
}

// markIdentified tells the gate that the peer on c (a gated connection, or
// TLS over one) has identified itself.
func markIdentified(c net.Conn) {
	for {
		switch v := c.(type) {
		case *gatedConn:
			v.identified()
			return
		case *tls.Conn:
			c = v.NetConn()
		default:
			return
		}
	}
}

// sourceKey is what the per-address cap counts by: the IP address, or for
// IPv6 its /64, which one host or customer typically holds whole.
func sourceKey(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// remoteHost is the address without its port, for the refusal log.
func remoteHost(a net.Addr) string {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// gatedListener puts every connection it accepts under the gate of an
// acceptor, for servers that run their own accept loop (http.Server).
type gatedListener struct {
	net.Listener
	a   *acceptor
	lim Limits
	log *slog.Logger
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// configureTCP may wrap c (quickAckConn): keep what it returns.
	return l.a.admit(configureTCP(c, l.lim), l.lim, l.log), nil
}
