package halibut

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// startPolling runs a polling server (the Octopus side) and a Poller (the
// Tentacle side) serving svc, on loopback.
func startPolling(t *testing.T, svc *Service, lim Limits, connections int) (*PollingServer, *Poller, *countingListener, context.CancelFunc) {
	t.Helper()
	tentacle, server, _ := certs(t) // reuse: "server" cert acts as the Octopus Server here
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	ps := &PollingServer{Certificate: server, Trust: NewTrustStore(Thumbprint(tentacle.Leaf)), Limits: lim}
	served := make(chan struct{})
	go func() { ps.Serve(cl); close(served) }()
	p := &Poller{
		Certificate: tentacle, Service: svc, Limits: lim,
		ServerAddress: "https://" + ln.Addr().String() + "/", ServerThumbprint: Thumbprint(server.Leaf),
		SubscriptionID: "poll://abcdefghjkmnpqrstuvw/", Connections: connections,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		ps.Shutdown(context.Background())
		<-served
	})
	waitFor(t, func() bool { return ps.Subscribers(p.SubscriptionID) == connections }, "pollers to connect")
	return ps, p, cl, cancel
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPollingRoundTripAndConcurrency(t *testing.T) {
	svc := echoService()
	var inFlight, peak atomic.Int32
	svc.Handle("IEchoService", "Slow", func(ctx context.Context, call *Call) (any, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
		inFlight.Add(-1)
		return "slow done", nil
	})
	ps, p, _, _ := startPolling(t, svc, testLimits(), 3)
	got, err := ps.Call(t.Context(), p.SubscriptionID, Thumbprint(p.Certificate.Leaf), "IEchoService", "Say", []any{"polling"}, nil)
	if err != nil || got != "you said: polling" {
		t.Fatalf("%v %v", got, err)
	}
	// Subscription ids match case-insensitively, as upstream normalises them.
	if _, err := ps.Call(t.Context(), "POLL://ABCDEFGHJKMNPQRSTUVW/", strings.ToLower(Thumbprint(p.Certificate.Leaf)), "IEchoService", "Say", []any{"x"}, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := ps.Call(t.Context(), p.SubscriptionID, Thumbprint(p.Certificate.Leaf), "IEchoService", "Slow", nil, nil); err != nil || got != "slow done" {
				t.Errorf("%v %v", got, err)
			}
		}()
	}
	wg.Wait()
	if peak.Load() < 2 {
		t.Errorf("three polling connections served at most %d requests at once", peak.Load())
	}
	if p.Connected() != 3 {
		t.Errorf("Connected() = %d", p.Connected())
	}
}

func TestNullRequestsKeepIdleConnectionsAlive(t *testing.T) {
	lim := testLimits()
	lim.PollingQueueWaitTimeout = 20 * time.Millisecond
	lim.PollingReceiveRequestTimeout = 200 * time.Millisecond
	ps, p, cl, _ := startPolling(t, echoService(), lim, 1)
	time.Sleep(600 * time.Millisecond) // many keep-alive rounds, three poller timeouts
	if n := cl.accepted.Load(); n != 1 {
		t.Errorf("%d connections accepted: the idle connection was not kept alive", n)
	}
	if got, err := ps.Call(t.Context(), p.SubscriptionID, Thumbprint(p.Certificate.Leaf), "IEchoService", "Say", []any{"still"}, nil); err != nil || got != "you said: still" {
		t.Errorf("%v %v", got, err)
	}
}

func TestPollerReconnectsWhenTheServerGoesQuiet(t *testing.T) {
	lim := testLimits()
	lim.PollingQueueWaitTimeout = 5 * time.Second             // server stays silent...
	lim.PollingReceiveRequestTimeout = 100 * time.Millisecond // ...longer than the poller waits
	lim.PollingReconnectAfterDisconnectDelay = 20 * time.Millisecond
	lim.PollingReconnectMinDelay = 20 * time.Millisecond
	lim.PollingReconnectMaxDelay = 50 * time.Millisecond
	_, _, cl, _ := startPolling(t, echoService(), lim, 1)
	waitFor(t, func() bool { return cl.accepted.Load() >= 3 }, "the poller to give up on silent connections and reconnect")
}

func TestUncollectedRequestFails(t *testing.T) {
	lim := testLimits()
	lim.PollingRequestQueueTimeout = 100 * time.Millisecond
	_, server, _ := certs(t)
	ps := &PollingServer{Certificate: server, Trust: NewTrustStore(), Limits: lim}
	_, err := ps.Call(t.Context(), "poll://nobodyhome/", strings.Repeat("AB", 20), "IEchoService", "Say", []any{"x"}, nil)
	if !errors.Is(err, ErrRequestNotCollected) {
		t.Errorf("err = %v", err)
	}
}

func TestPollerFinishesTheRequestInFlightOnShutdown(t *testing.T) {
	svc := echoService()
	started := make(chan struct{})
	svc.Handle("IEchoService", "Slow", func(ctx context.Context, call *Call) (any, error) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		return "finished", nil
	})
	ps, p, _, cancel := startPolling(t, svc, testLimits(), 1)
	result := make(chan error, 1)
	go func() {
		got, err := ps.Call(context.Background(), p.SubscriptionID, Thumbprint(p.Certificate.Leaf), "IEchoService", "Slow", nil, nil)
		if err == nil && got != "finished" {
			err = fmt.Errorf("got %v", got)
		}
		result <- err
	}()
	<-started
	cancel() // the agent is asked to stop mid-request
	if err := <-result; err != nil {
		t.Errorf("request in flight lost on shutdown: %v", err)
	}
	waitFor(t, func() bool { return p.Connected() == 0 }, "the poller to disconnect")
}

func TestReconnectDelayIsJitteredAndBounded(t *testing.T) {
	lim := DefaultLimits()
	seen := map[time.Duration]bool{}
	for attempt := range 30 {
		d := reconnectDelay(attempt, lim)
		if d < lim.PollingReconnectMinDelay/10 || d > lim.PollingReconnectMaxDelay {
			t.Fatalf("attempt %d: delay %v out of bounds", attempt, d)
		}
		seen[d] = true
	}
	if len(seen) < 20 {
		t.Error("delays are not jittered")
	}
	for range 100 {
		if d := reconnectDelay(0, lim); d > lim.PollingReconnectMinDelay {
			t.Fatalf("first retry waited %v, more than the minimum ceiling", d)
		}
	}
}

// The reconnect policy (issue 12 item 3): a connection that identified itself
// resets the back-off and is followed by the short pause; only failed
// connects back off, jittered and capped.
func TestReconnectPolicyBacksOffOnlyWhileConnectsFail(t *testing.T) {
	lim := DefaultLimits()
	short := lim.PollingReconnectAfterDisconnectDelay
	inShortRange := func(d time.Duration) bool { return d >= short/2 && d <= short }
	r := reconnectPolicy{lim: lim}
	for round := range 3 {
		// a server that keeps dropping identified connections
		for range 10 {
			if d := r.next(true, nil); !inShortRange(d) {
				t.Fatalf("round %d: after an identified connection the pause is %v, want %v to %v", round, d, short/2, short)
			}
		}
		// then the server goes away: connects fail and the pause grows
		var ceilings []time.Duration
		for failure := range 12 {
			ceiling := min(lim.PollingReconnectMinDelay<<failure, lim.PollingReconnectMaxDelay)
			d := r.next(false, errors.New("connection refused"))
			if d < lim.PollingReconnectMinDelay/10 || d > ceiling {
				t.Fatalf("round %d, failure %d: pause %v, want %v to %v", round, failure, d, lim.PollingReconnectMinDelay/10, ceiling)
			}
			ceilings = append(ceilings, ceiling)
		}
		if ceilings[len(ceilings)-1] != lim.PollingReconnectMaxDelay {
			t.Fatalf("the back-off never reached its cap: %v", ceilings)
		}
		// and comes back: one identified connection starts over
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[r.next(true, nil)] = true
	}
	if len(seen) < 40 {
		t.Errorf("the pause after an identified connection is not jittered: %d distinct values of 50", len(seen))
	}
}

// A subscription belongs to the certificate expected for it: a second
// Tentacle the server also trusts, polling the same subscription id, is
// handed none of its requests, and a request for it says who is polling.
func TestPollingSubscriptionIsBoundToItsThumbprint(t *testing.T) {
	lim := testLimits()
	lim.PollingRequestQueueTimeout = 300 * time.Millisecond
	tentacle, server, impostor := certs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &PollingServer{Certificate: server, Trust: NewTrustStore(Thumbprint(tentacle.Leaf), Thumbprint(impostor.Leaf)), Limits: lim}
	go ps.Serve(ln)
	defer ps.Shutdown(context.Background())
	const sub = "poll://boundabcdefghjkmnpq/"
	run := func(cert *tls.Certificate, svc *Service) {
		p := &Poller{Certificate: cert, Service: svc, Limits: lim, ServerAddress: "https://" + ln.Addr().String() + "/",
			ServerThumbprint: Thumbprint(server.Leaf), SubscriptionID: sub, Connections: 1}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	var stolen atomic.Int32
	thief := &Service{}
	thief.Fallback = func(ctx context.Context, call *Call) (any, error) { stolen.Add(1); return "stolen", nil }
	run(impostor, thief)
	waitFor(t, func() bool { return ps.Subscribers(sub) == 1 }, "the impostor to poll")

	_, err = ps.Call(t.Context(), sub, Thumbprint(tentacle.Leaf), "IEchoService", "Say", []any{"secret"}, nil)
	if !errors.Is(err, ErrRequestNotCollected) || !strings.Contains(err.Error(), Thumbprint(impostor.Leaf)) {
		t.Errorf("with only the impostor polling: %v", err)
	}
	run(tentacle, echoService())
	waitFor(t, func() bool { return ps.Subscribers(sub) == 2 }, "the owner to poll")
	for i := range 5 {
		got, err := ps.Call(t.Context(), sub, strings.ToLower(Thumbprint(tentacle.Leaf)), "IEchoService", "Say", []any{fmt.Sprint(i)}, nil)
		if err != nil || got != "you said: "+fmt.Sprint(i) {
			t.Fatalf("%v %v", got, err)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the impostor was handed %d requests", n)
	}
	if _, err := ps.Call(t.Context(), sub, "", "IEchoService", "Say", nil, nil); err == nil {
		t.Error("a request with no thumbprint to bind to was queued")
	}
}

// A server that accepts and closes the connection during the TLS handshake
// (a polling endpoint shedding load) is told apart from one that cannot be
// reached or that speaks something else, and only the first keeps the pause
// short: a fleet reconnecting to a restarted, busy server is not pushed into
// minutes of back-off by it.
func TestReconnectPolicyKeepsThePauseShortForAServerSheddingLoad(t *testing.T) {
	lim := testLimits()
	lim.SendTimeout = 5 * time.Second
	serve := func(t *testing.T, handle func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				handle(c)
			}
		}()
		return ln.Addr().String()
	}
	dial := func(addr string) error {
		_, err := dialTLS(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, nil, nil, lim)
		return err
	}
	closing := serve(t, func(c net.Conn) { c.Close() })
	resetting := serve(t, func(c net.Conn) {
		// Reading nothing of the ClientHello and closing with a linger of 0 resets.
		c.(*net.TCPConn).SetLinger(0)
		time.Sleep(50 * time.Millisecond)
		c.Close()
	})
	notTLS := serve(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
		c.Close()
	})
	refusedLn, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := refusedLn.Addr().String()
	refusedLn.Close()

	for name, addr := range map[string]string{"closing": closing, "resetting": resetting} {
		if err := dial(addr); !errors.Is(err, errClosedInHandshake) {
			t.Errorf("%s server: %v, want it recognised as closed during the handshake", name, err)
		}
	}
	for name, addr := range map[string]string{"not TLS": notTLS, "refused": refused} {
		if err := dial(addr); err == nil || errors.Is(err, errClosedInHandshake) {
			t.Errorf("%s: %v, want a failure that is not a closed handshake", name, err)
		}
	}

	r := reconnectPolicy{lim: lim}
	unreachable := dial(refused)
	for range 8 {
		r.next(false, unreachable)
	}
	shedding := dial(closing)
	for range 20 {
		if d := r.next(false, shedding); d < lim.PollingReconnectMinDelay/10 || d > lim.PollingReconnectMinDelay {
			t.Fatalf("a server closing the handshake: pause %v, want %v to %v", d, lim.PollingReconnectMinDelay/10, lim.PollingReconnectMinDelay)
		}
	}
	// and an unreachable server after it backs off from the start again
	if d := r.next(false, unreachable); d > lim.PollingReconnectMinDelay {
		t.Errorf("the first failure after the server was reached: pause %v, more than %v", d, lim.PollingReconnectMinDelay)
	}
}
