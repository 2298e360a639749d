package halibut

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A relay listener forwards requests, with their data streams both ways, to
// a polling Tentacle connected to the relay's polling server.
func TestRelayToAPollingTentacle(t *testing.T) {
	ps, p, _, _ := startPolling(t, echoService(), testLimits(), 1)
	c, ep := startRelay(t, ps, p)

	if got, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"relayed"}, nil); err != nil || got != "you said: relayed" {
		t.Fatalf("%v %v", got, err)
	}
	payload := make([]byte, 2<<20)
	sum := sha256.Sum256(payload)
	if got, err := c.Call(t.Context(), ep, "IEchoService", "Hash", []any{DataStreamFromBytes(payload)}, nil); err != nil || got != fmt.Sprintf("%d %x", len(payload), sum) {
		t.Fatalf("upload through the relay: %v %v", got, err)
	}
	var n int64
	_, err := c.Call(t.Context(), ep, "IEchoService", "Download", []any{int64(1 << 20)}, func(ds DataStream, r io.Reader) error {
		m, err := io.Copy(io.Discard, r)
		n = m
		return err
	})
	if err != nil || n != 1<<20 {
		t.Fatalf("download through the relay: %d %v", n, err)
	}
	if _, err := c.Call(t.Context(), ep, "IEchoService", "Fail", []any{"x"}, nil); err == nil || err.Error() != "the disk is full" {
		t.Errorf("errors must pass through the relay unchanged: %v", err)
	}
}

// startRelay serves ps's relay handler on a loopback listener and returns a
// client and the endpoint that reaches p through it.
func startRelay(t *testing.T, ps *PollingServer, p *Poller) (*Client, Endpoint) {
	t.Helper()
	srv, cli, _ := certs(t)
	relay := &Service{}
	relay.Fallback = ps.RelayHandler(t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: relay, Limits: testLimits()}
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(t.Context()) })
	c := newClient(t, cli)
	ep := Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf), RelayTo: p.SubscriptionID, RelayThumbprint: Thumbprint(p.Certificate.Leaf)}
	return c, ep
}

// The relay hands a request only to the Tentacle with the thumbprint the
// operator expects, and wants one.
func TestRelayOnlyToTheExpectedThumbprint(t *testing.T) {
	lim := testLimits()
	lim.PollingRequestQueueTimeout = 300 * time.Millisecond
	ps, p, _, _ := startPolling(t, echoService(), lim, 1)
	_, _, stranger := certs(t)
	c, ep := startRelay(t, ps, p)

	wrong := ep
	wrong.RelayThumbprint = Thumbprint(stranger.Leaf)
	if _, err := c.Call(t.Context(), wrong, "IEchoService", "Say", []any{"x"}, nil); err == nil || !strings.Contains(err.Error(), "not the expected "+Thumbprint(stranger.Leaf)) {
		t.Errorf("a request for another thumbprint: %v", err)
	}
	none := ep
	none.RelayThumbprint = ""
	if _, err := c.Call(t.Context(), none, "IEchoService", "Say", []any{"x"}, nil); err == nil || !strings.Contains(err.Error(), "names no thumbprint") {
		t.Errorf("a request with no thumbprint: %v", err)
	}
}
