package halibut

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// attacker is one slow connection from the test: it connects and then
// trickles bytes, one every gap, and records when the agent closes it.
type attacker struct {
	conn   net.Conn
	closed chan struct{}
}

// isOpen reports whether the agent has not closed the connection.
func (a *attacker) isOpen() bool {
	select {
	case <-a.closed:
		return false
	default:
		return true
	}
}

// dialFrom connects to addr from the loopback address src ("" for any).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if src != "" {
			t.Skipf("cannot connect from %s (only Linux routes all of 127/8 to loopback): %v", src, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startAttacker opens one slow connection. With handshake it completes TLS
// (with cert, if any) and then trickles prefix followed by filler bytes;
// without, it sends nothing at all.
func startAttacker(t *testing.T, src, addr string, handshake bool, cert *tls.Certificate, prefix string, gap time.Duration) *attacker {
	t.Helper()
	raw := dialFrom(t, src, addr)
	a := &attacker{conn: raw, closed: make(chan struct{})}
	if !handshake {
		go func() {
			io.Copy(io.Discard, raw) // returns when the agent closes
			close(a.closed)
		}()
		return a
	}
	cfg := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tc := tls.Client(raw, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("attacker handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	a.conn = tc
	go func() {
		io.Copy(io.Discard, tc)
		close(a.closed)
	}()
	go func() {
		payload := prefix + strings.Repeat("a", 1<<20)
		for i := range len(payload) {
			if _, err := tc.Write([]byte{payload[i]}); err != nil {
				return
			}
			select {
			case <-a.closed:
				return
			case <-time.After(gap):
			}
		}
	}()
	return a
}

// A connection that has not identified itself is closed at one fixed
// deadline from accept, however it trickles bytes: through the handshake,
// the preamble, or the identity line of a trusted peer. Before, every read
// pushed the deadline out by a minute.
func TestIdentificationDeadlineIsFixedFromAccept(t *testing.T) {
	srv, cli, stranger := certs(t)
	lim := testLimits()
	lim.IdentificationTimeout = 500 * time.Millisecond
	const trickleFor = 10 * time.Second // 50 bytes, one every 200 ms
	listener := func(t *testing.T) string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: lim}
		go l.Serve(ln)
		t.Cleanup(func() { l.Shutdown(t.Context()) })
		return ln.Addr().String()
	}
	pollingServer := func(t *testing.T) string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ps := &PollingServer{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Limits: lim}
		go ps.Serve(ln)
		t.Cleanup(func() { ps.Shutdown(t.Context()) })
		return ln.Addr().String()
	}
	cases := []struct {
		name      string
		handshake bool
		cert      *tls.Certificate
		prefix    string
	}{
		{"silent before TLS", false, nil, ""},
		{"trickling the preamble", true, stranger, ""},
		{"trickling the identity line", true, cli, "MX\r\n\r\n"},
	}
	for _, role := range []struct {
		name  string
		start func(*testing.T) string
	}{{"listener", listener}, {"polling server", pollingServer}} {
		for _, tc := range cases {
			t.Run(role.name+"/"+tc.name, func(t *testing.T) {
				addr := role.start(t)
				start := time.Now()
				a := startAttacker(t, "", addr, tc.handshake, tc.cert, tc.prefix, trickleFor/50)
				select {
				case <-a.closed:
					t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
				case <-time.After(trickleFor):
					t.Fatalf("a peer that never identified itself was still connected after %v (identification deadline %v)", trickleFor, lim.IdentificationTimeout)
				}
			})
		}
	}
}

// The WebSocket polling endpoint gives an unidentified peer the same one
// deadline, whether it stalls in TLS, the HTTP upgrade or the preamble.
func TestWebSocketIdentificationDeadlineIsFixedFromAccept(t *testing.T) {
	srv, cli, _ := certs(t)
	lim := testLimits()
	lim.IdentificationTimeout = 500 * time.Millisecond
	ps := &PollingServer{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Limits: lim}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := &http.Server{Handler: ps.WebSocketHandler(), TLSConfig: WebSocketTLSConfig(srv), TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go hs.ServeTLS(ps.WebSocketListener(ln), "", "")
	t.Cleanup(func() { hs.Close() })
	const trickleFor = 10 * time.Second
	upgrade := "GET /OctopusComms HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Padding: "
	for _, tc := range []struct {
		name      string
		handshake bool
	}{{"silent before TLS", false}, {"trickling the upgrade request", true}} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			a := startAttacker(t, "", ln.Addr().String(), tc.handshake, cli, upgrade, trickleFor/50)
			select {
			case <-a.closed:
				t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
			case <-time.After(trickleFor):
				t.Fatalf("a websocket peer that never identified itself was still connected after %v", trickleFor)
			}
		})
	}
	// A real polling Tentacle still gets through.
	p := &Poller{Certificate: cli, Service: echoService(), Limits: lim, ServerAddress: "wss://" + ln.Addr().String() + "/OctopusComms",
		ServerThumbprint: Thumbprint(srv.Leaf), SubscriptionID: "poll://ws-deadline/", Connections: 1}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); <-ran })
	waitFor(t, func() bool { return ps.Subscribers("poll://ws-deadline/") == 1 }, "the websocket poller to subscribe")
	if ps.unidentified.count() != 0 {
		t.Errorf("%d connections still counted as unidentified", ps.unidentified.count())
	}
	// It has been connected for longer than the identification deadline:
	// identification lifted it.
	time.Sleep(2 * lim.IdentificationTimeout)
	if _, err := ps.Call(t.Context(), "poll://ws-deadline/", Thumbprint(p.Certificate.Leaf), "IEchoService", "Say", []any{"hi"}, nil); err != nil {
		t.Errorf("an identified websocket poller was cut off: %v", err)
	}
}

// A legitimate client is served at once while the cap on unidentified
// connections is full of slow attackers from several addresses; the
// attackers keep their connections, bar the one closed to make room.
func TestLegitimateClientIsServedWhileUnidentifiedCapIsFull(t *testing.T) {
	srv, cli, stranger := certs(t)
	lim := testLimits()
	lim.MaxUnidentifiedConnections = 16
	lim.MaxUnidentifiedConnectionsPerAddress = 4
	lim.UnidentifiedEvictionAge = 0 // the attackers are new: evict them at any age
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: lim}
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(t.Context()) })
	addr := ln.Addr().String()

	var attackers []*attacker
	for i := range lim.MaxUnidentifiedConnections {
		src := fmt.Sprintf("127.0.0.%d", 2+i/lim.MaxUnidentifiedConnectionsPerAddress)
		attackers = append(attackers, startAttacker(t, src, addr, i%2 == 1, stranger, "", 200*time.Millisecond))
	}
	waitFor(t, func() bool { return l.unidentified.count() == lim.MaxUnidentifiedConnections }, "the attackers to fill the cap")

	c := newClient(t, cli)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	got, err := c.Call(ctx, Endpoint{BaseURI: "https://" + addr + "/", Thumbprint: Thumbprint(srv.Leaf)}, "IEchoService", "Say", []any{"legit"}, nil)
	elapsed := time.Since(start)
	if err != nil || got != "you said: legit" {
		t.Fatalf("the legitimate client was not served while the cap was full: %v, %v", got, err)
	}
	open := 0
	for _, a := range attackers {
		if a.isOpen() {
			open++
		}
	}
	t.Logf("legitimate request served in %v with %d of %d attackers still connected", elapsed.Round(time.Millisecond), open, len(attackers))
	if open < len(attackers)-1 {
		t.Errorf("%d attackers were closed; only one needed to make room", len(attackers)-open)
	}
}

// At an address's cap, a new connection from it closes that address's
// oldest, and leaves other addresses alone.
func TestPerAddressCapClosesThatAddressesOldest(t *testing.T) {
	srv, cli, _ := certs(t)
	lim := testLimits()
	lim.MaxUnidentifiedConnections = 16
	lim.MaxUnidentifiedConnectionsPerAddress = 3
	lim.UnidentifiedEvictionAge = 0
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: lim}
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(t.Context()) })
	addr := ln.Addr().String()

	other := startAttacker(t, "127.0.0.9", addr, false, nil, "", 0)
	var same []*attacker
	for i := range 3 {
		same = append(same, startAttacker(t, "127.0.0.8", addr, false, nil, "", 0))
		waitFor(t, func() bool { return l.unidentified.count() == 2+i }, "the connection to be admitted")
	}
	fourth := startAttacker(t, "127.0.0.8", addr, false, nil, "", 0)
	select {
	case <-same[0].closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the oldest connection of an address over its cap was not closed")
	}
	waitFor(t, func() bool { return l.unidentified.count() == 4 }, "the count to settle")
	for _, a := range []*attacker{other, same[1], same[2], fourth} {
		if !a.isOpen() {
			t.Error("a connection other than the address's oldest was closed")
		}
	}
}

// A connection younger than UnidentifiedEvictionAge is not closed to make
// room (a burst of real handshakes would close each other before any
// finished): the newcomer is closed instead. Older ones are evicted as ever.
func TestYoungUnidentifiedConnectionsAreNotEvicted(t *testing.T) {
	lim := testLimits()
	lim.MaxUnidentifiedConnections = 2
	lim.MaxUnidentifiedConnectionsPerAddress = 2
	lim.UnidentifiedEvictionAge = 3 * time.Second
	pipe := func() net.Conn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return a
	}
	var g unidentifiedGate
	t0 := time.Now()
	first, _, _ := g.admit(pipe(), lim, t0)
	g.admit(pipe(), lim, t0.Add(time.Second))

	newcomer := pipe()
	if _, evicted, refused := g.admit(newcomer, lim, t0.Add(2*time.Second)); !refused || evicted != nil {
		t.Fatalf("a newcomer while both are younger than %v: refused %v, evicted %v", lim.UnidentifiedEvictionAge, refused, evicted)
	}
	if _, err := newcomer.Write([]byte("x")); err == nil {
		t.Error("the refused newcomer was left open")
	}
	if n := g.count(); n != 2 {
		t.Errorf("%d unidentified connections after a refusal, want 2", n)
	}
	g.mu.Lock()
	kept := first.pending
	g.mu.Unlock()
	if !kept {
		t.Error("the oldest was closed for a refused newcomer")
	}

	if _, evicted, refused := g.admit(pipe(), lim, t0.Add(4*time.Second)); refused || evicted != first {
		t.Fatalf("a newcomer once the oldest is %v old: refused %v, evicted the oldest %v", 4*time.Second, refused, evicted == first)
	}
}

// sourceKey counts an IPv6 host by its /64 and an IPv4-mapped address as IPv4.
func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:1234":                 "192.0.2.7",
		"[::ffff:192.0.2.7]:1234":        "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:4:5:6]:1000": "2001:db8:1:2::/64",
	} {
		ap, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sourceKey(ap); got != want {
			t.Errorf("sourceKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// Shutdown does not wait for connections that never identified themselves:
// they have nothing in flight. Before, one trickling peer held Shutdown
// for as long as it kept trickling.
func TestShutdownClosesUnidentifiedConnections(t *testing.T) {
	srv, cli, stranger := certs(t)
	lim := testLimits()
	lim.IdentificationTimeout = time.Hour
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: lim}
	go l.Serve(ln)
	silent := startAttacker(t, "", ln.Addr().String(), false, nil, "", 0)
	trickler := startAttacker(t, "", ln.Addr().String(), true, stranger, "", 100*time.Millisecond)
	waitFor(t, func() bool { return l.unidentified.count() == 2 }, "both connections to be admitted")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown waited for connections that never identified themselves: %v", err)
	}
	for _, a := range []*attacker{silent, trickler} {
		select {
		case <-a.closed:
		case <-time.After(10 * time.Second):
			t.Error("an unidentified connection outlived Shutdown")
		}
	}
}
