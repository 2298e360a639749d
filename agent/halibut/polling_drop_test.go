package halibut

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingHandler keeps every log record, for tests that check what a
// component reported.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// withMessage returns the attributes of every record whose message is msg.
func (h *recordingHandler) withMessage(msg string) []map[string]slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		out = append(out, attrs)
	}
	return out
}

// droppedConnection is what the dropping server saw of one polling
// connection it dropped.
type droppedConnection struct {
	droppedAt time.Time
	reconnect time.Duration // from the drop to the agent's next connection
}

// runDroppingServer plays an Octopus Server whose user cancels a deployment
// step, drops times over: it leaves Nagle on, identifies each polling
// connection, sends the StartScript request upstream's server sent in the
// polling-cancel capture, and when the agent is executing it (executing
// receives) drops the connection as upstream's server does, alternately with
// a bare TCP close and with a TLS close_notify. The connection after the
// last drop is kept open until ctx ends.
func runDroppingServer(ctx context.Context, tb testing.TB, ln net.Listener, drops int, executing <-chan struct{}) <-chan []droppedConnection {
	tentacle, server, _ := certs(tb)
	request := readGolden(tb, "upstream-polling-cancel-start-script.bin")
	lim := nagleLimits()
	cfg := serverTLSConfig(server)
	trust := NewTrustStore(Thumbprint(tentacle.Leaf))
	result := make(chan []droppedConnection, 1)
	go func() {
		var seen []droppedConnection
		defer func() { result <- seen }()
		for i := 0; ; i++ {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			if i > 0 {
				seen[i-1].reconnect = time.Since(seen[i-1].droppedAt)
			}
			raw = configureTCP(raw, lim)
			c, id, _, err := acceptHalibut(raw, cfg, trust, lim, nil)
			if err != nil || id.kind != identitySubscr {
				tb.Errorf("connection %d: identification failed: %v %v", i, err, id.kind)
				raw.Close()
				return
			}
			if err := c.sendText(identityLine(identityServer), lim.SendTimeout); err != nil {
				tb.Errorf("connection %d: %v", i, err)
				return
			}
			if i == drops {
				<-ctx.Done()
				raw.Close()
				return
			}
			if _, err := c.Conn.Write(request); err != nil {
				tb.Errorf("connection %d: sending StartScript: %v", i, err)
				return
			}
			select {
			case <-executing:
			case <-ctx.Done():
				raw.Close()
				return
			}
			if i%2 == 0 {
				raw.Close() // as a .NET socket disposed without a TLS shutdown
			} else {
				c.Close() // TLS close_notify, then FIN
			}
			seen = append(seen, droppedConnection{droppedAt: time.Now()})
		}
	}()
	return result
}

// TestPollerComesBackAtOnceAfterTheServerDropsAConnection is issue 12 item 3:
// a server that cancels a request in flight drops that polling connection.
// The agent must notice at once (the handler's context is cancelled; it is
// not left executing until its response write fails) and, the connection
// having been identified, reconnect after the short pause rather than the
// failure back-off.
func TestPollerComesBackAtOnceAfterTheServerDropsAConnection(t *testing.T) {
	const drops = 5
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, stop := context.WithCancel(t.Context())
	executing := make(chan struct{})
	cancelled := make(chan error, drops)
	svc := &Service{}
	svc.Handle("IScriptServiceV2", "StartScript", func(reqCtx context.Context, call *Call) (any, error) {
		select {
		case executing <- struct{}{}:
		case <-ctx.Done():
		}
		// Like StartScript waiting DurationToWaitForScriptToFinish for the
		// script, here until its context is cancelled or the test ends.
		select {
		case <-reqCtx.Done():
			cancelled <- context.Cause(reqCtx)
		case <-ctx.Done():
		}
		return nil, reqCtx.Err()
	})
	seen := runDroppingServer(ctx, t, ln, drops, executing)

	tentacle, server, _ := certs(t)
	logs := &recordingHandler{}
	lim := DefaultLimits()
	p := &Poller{
		Certificate: tentacle, Service: svc, Limits: lim, Logger: slog.New(logs),
		ServerAddress: "https://" + ln.Addr().String() + "/", ServerThumbprint: Thumbprint(server.Leaf),
		SubscriptionID: "poll://abcdefghjkmnpqrstuvw/", Connections: 1,
	}
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	defer func() { stop(); <-ran }()

	for i := range drops {
		select {
		case cause := <-cancelled:
			if !errors.Is(cause, ErrPeerHungUp) {
				t.Fatalf("drop %d: the handler's context ended with %v, want ErrPeerHungUp", i+1, cause)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("drop %d: the handler's context was not cancelled when the server dropped the connection", i+1)
		}
	}
	waitFor(t, func() bool {
		return p.Connected() == 1 && len(logs.withMessage("polling connection ended; reconnecting")) == drops
	}, "the poller to come back after the last drop")
	stop()
	ln.Close()
	var reconnects []time.Duration
	for _, d := range <-seen {
		reconnects = append(reconnects, d.reconnect)
	}
	if len(reconnects) != drops {
		t.Fatalf("the server saw %d drops followed by a reconnect, want %d", len(reconnects), drops)
	}
	// The figure the issue asks for (every reconnect < 2 s) is measured, not
	// asserted: the machine may be slow. The policy's choice is asserted.
	t.Logf("reconnect after each drop: %v (max %v)", reconnects, slices.Max(reconnects))
	for i, attrs := range logs.withMessage("polling connection ended; reconnecting") {
		retryIn := attrs["retry_in"].Duration()
		if retryIn < lim.PollingReconnectAfterDisconnectDelay/2 || retryIn > lim.PollingReconnectAfterDisconnectDelay {
			t.Errorf("drop %d: the poller chose to wait %v, want the short pause after an identified connection (%v to %v)", i+1, retryIn, lim.PollingReconnectAfterDisconnectDelay/2, lim.PollingReconnectAfterDisconnectDelay)
		}
		if err, _ := attrs["err"].Any().(error); !errors.Is(err, ErrPeerHungUp) {
			t.Errorf("drop %d: logged %v, want the hang-up noticed while executing", i+1, attrs["err"])
		}
	}
}

// The listening side notices a client that hangs up mid-request the same
// way: upstream's client drops its connection when the caller cancels.
func TestListenerCancelsTheRequestOfAClientThatHangsUp(t *testing.T) {
	executing := make(chan struct{})
	cancelled := make(chan error, 1)
	svc := &Service{}
	svc.Handle("IScriptServiceV2", "StartScript", func(ctx context.Context, call *Call) (any, error) {
		close(executing)
		select {
		case <-ctx.Done():
			cancelled <- context.Cause(ctx)
		case <-t.Context().Done():
		}
		return nil, ctx.Err()
	})
	_, ep := startListener(t, svc)
	_, client, _ := certs(t)
	lim := nagleLimits()
	addr := strings.TrimSuffix(strings.TrimPrefix(ep.BaseURI, "https://"), "/")
	c, err := dialHalibut(t.Context(), addr, "127.0.0.1", []string{ep.Thumbprint}, client, nil, nil, lim)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.sendText(identityLine(identityClient), lim.SendTimeout); err != nil {
		t.Fatal(err)
	}
	if id, err := readIdentity(c.r, lim.MaxControlLineBytes); err != nil || id.kind != identityServer {
		t.Fatalf("identification: %v %v", id.kind, err)
	}
	if _, err := c.Conn.Write(readGolden(t, "upstream-polling-cancel-start-script.bin")); err != nil {
		t.Fatal(err)
	}
	<-executing
	c.Close()
	select {
	case cause := <-cancelled:
		if !errors.Is(cause, ErrPeerHungUp) {
			t.Errorf("the handler's context ended with %v, want ErrPeerHungUp", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled when the client hung up")
	}
}
