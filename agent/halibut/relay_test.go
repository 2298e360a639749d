package halibut

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A relay listener forwards requests, with their data streams both ways, to
// a polling Tentacle connected to the relay's polling server.
func TestRelayToAPollingTentacle(t *testing.T) {
	ps, p, _, _ := startPolling(t, echoService(), testLimits(), 1)
	c, ep, _ := startRelay(t, ps, p)

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
// client, the endpoint that reaches p through it, and the folder the relay
// spools data streams to.
func startRelay(t *testing.T, ps *PollingServer, p *Poller) (*Client, Endpoint, string) {
	t.Helper()
	srv, cli, _ := certs(t)
	relay := &Service{}
	spool := t.TempDir()
	relay.Fallback = ps.RelayHandler(spool)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: relay, Limits: testLimits()}
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(t.Context()) })
	c := newClient(t, cli)
	ep := Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf), RelayTo: p.SubscriptionID, RelayThumbprint: Thumbprint(p.Certificate.Leaf)}
	return c, ep, spool
}

// The relay hands a request only to the Tentacle with the thumbprint the
// operator expects, and wants one.
func TestRelayOnlyToTheExpectedThumbprint(t *testing.T) {
	lim := testLimits()
	lim.PollingRequestQueueTimeout = 300 * time.Millisecond
	ps, p, _, _ := startPolling(t, echoService(), lim, 1)
	_, _, stranger := certs(t)
	c, ep, _ := startRelay(t, ps, p)

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

// The relay's spooled files are gone once a response is sent: a stream at
// the top of the result, streams nested in it, and a response that fails.
func TestRelayLeavesNoSpooledFiles(t *testing.T) {
	svc := echoService()
	svc.Handle("IEchoService", "Pair", func(ctx context.Context, call *Call) (any, error) {
		return Doc{
			{Key: "First", Value: NewDataStream(3, strings.NewReader("abc"))},
			{Key: "Second", Value: []any{NewDataStream(2, strings.NewReader("de"))}},
		}, nil
	})
	ps, p, _, _ := startPolling(t, svc, testLimits(), 1)
	c, ep, spool := startRelay(t, ps, p)
	empty := func(what string) {
		t.Helper()
		// The relay removes a file once its response is written, which
		// can be just after the caller has read it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			left, _ := os.ReadDir(spool)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s, the relay left %d spooled files: %v", what, len(left), left[0].Name())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var got []string
	sink := func(ds DataStream, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, string(b))
		return err
	}
	if _, err := c.Call(t.Context(), ep, "IEchoService", "Download", []any{int64(1 << 16)}, sink); err != nil {
		t.Fatal(err)
	}
	empty("a download")
	got = nil
	if _, err := c.Call(t.Context(), ep, "IEchoService", "Pair", nil, sink); err != nil || len(got) != 2 {
		t.Fatalf("nested streams through the relay: %v %q", err, got)
	}
	empty("a result with nested streams")
	if _, err := c.Call(t.Context(), ep, "IEchoService", "Fail", nil, nil); err == nil {
		t.Fatal("Fail succeeded")
	}
	empty("a failed call")
}
