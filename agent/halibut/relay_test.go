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
	relay.FallbackStreams = true
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

// The relay passes a request's streams on in the order the Tentacle must
// receive them, even when the caller sent them in another order (the
// early one waits in a spooled file), and removes that file afterwards.
func TestRelayPassesStreamsSentOutOfOrder(t *testing.T) {
	svc := echoService()
	svc.Handle("IEchoService", "Concat", func(ctx context.Context, call *Call) (any, error) {
		var out []byte
		for _, p := range call.Params {
			var ds DataStream
			if err := UnmarshalValue(p, &ds); err != nil {
				return nil, err
			}
			f, err := call.StreamBody(ds)
			if err != nil {
				return nil, err
			}
			b, err := io.ReadAll(f)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
		}
		return string(out), nil
	})
	ps, p, _, _ := startPolling(t, svc, testLimits(), 1)
	_, ep, spool := startRelay(t, ps, p)
	_, cli, _ := certs(t)
	tc, r := rawDial(t, ep, cli)
	io.WriteString(tc, "MX\r\n\r\nMX-CLIENT 1.0\r\n\r\n")
	got := make([]byte, len("MX-SERVER 1.0\r\n\r\n"))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	first, second := DataStreamFromBytes([]byte("first,")), DataStreamFromBytes([]byte("second"))
	req := &RequestMessage{ID: "IEchoService::ConcatAsync[1] / x", ActivityID: NewGuid(),
		Endpoint: NewServiceEndPoint(ep.RelayTo, ep.RelayThumbprint, DefaultLimits()), Service: "IEchoService", Method: "Concat",
		Params: []any{first, second}}
	body, streams, err := encodeEnvelope(req, DefaultLimits())
	if err != nil || len(streams) != 2 {
		t.Fatal(streams, err)
	}
	// The records in reverse order: a conforming reader accepts any order.
	if err := writeEncodedMessage(tc, body, []*DataStream{streams[1], streams[0]}, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	msg, err := ReadMessage(r, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := msg.Response()
	if err != nil || resp.Error != nil || resp.Result != "first,second" {
		t.Fatalf("%+v %v", resp, err)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("the relay left %d spooled files", len(left))
	}
}

// A request for a Tentacle that is not polling yet has its streams spooled,
// so the caller's upload does not stall (its send timeout) while the request
// waits in the queue, and it is delivered once the Tentacle connects.
func TestRelaySpoolsUntilTheTentacleConnects(t *testing.T) {
	lim := testLimits()
	lim.PollingQueueWaitTimeout = 100 * time.Millisecond // notices the stopped poller's connection soon
	ps, p, _, stop := startPolling(t, echoService(), lim, 1)
	c, ep, _ := startRelay(t, ps, p)
	stop()
	waitFor(t, func() bool { return ps.Subscribers(p.SubscriptionID) == 0 }, "the poller to stop")
	c.Limits.SendTimeout = time.Second
	back := &Poller{Certificate: p.Certificate, Service: p.Service, Limits: p.Limits, ServerAddress: p.ServerAddress,
		ServerThumbprint: p.ServerThumbprint, SubscriptionID: p.SubscriptionID, Connections: 1}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	t.Cleanup(func() { cancel(); <-ran })
	go func() {
		time.Sleep(3 * time.Second) // well past the caller's send timeout
		back.Run(ctx)
		close(ran)
	}()
	// More than loopback socket buffers hold, so an unspooled upload would
	// stall until the Tentacle reads it.
	payload := make([]byte, 64<<20)
	sum := sha256.Sum256(payload)
	got, err := c.Call(t.Context(), ep, "IEchoService", "Hash", []any{DataStreamFromBytes(payload)}, nil)
	if err != nil || got != fmt.Sprintf("%d %x", len(payload), sum) {
		t.Fatalf("an upload queued before the Tentacle connected: %v %v", got, err)
	}
}
