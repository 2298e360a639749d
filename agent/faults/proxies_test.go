//go:build linux

package faults

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// faultyProxy is an HTTP CONNECT proxy on loopback that misbehaves: with resetEvery N, it
// resets every Nth connection as soon as the CONNECT arrives and resets every tunnel it
// opened after tunnelLife; with stall, it accepts connections and never answers (it only
// closes its side once the client gives up).
type faultyProxy struct {
	url        *url.URL
	accepted   atomic.Int64
	resetEvery int64
	tunnelLife time.Duration
	stall      bool
	target     string
	wg         sync.WaitGroup
	ln         net.Listener
}

func startFaultyProxy(t *testing.T, p *faultyProxy) *faultyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.url = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			k := p.accepted.Add(1)
			p.wg.Go(func() { p.serve(c, k) })
		}
	}()
	return p
}

// close stops accepting and waits for every connection's goroutine.
func (p *faultyProxy) close() {
	p.ln.Close()
	p.wg.Wait()
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *faultyProxy) serve(c net.Conn, k int64) {
	if p.stall {
		io.Copy(io.Discard, c) // never answers; returns when the client closes
		c.Close()
		return
	}
	br := bufio.NewReader(c)
	if _, err := http.ReadRequest(br); err != nil || (p.resetEvery > 0 && k%p.resetEvery == 0) {
		reset(c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(c)
		return
	}
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	timer := time.AfterFunc(p.tunnelLife, func() { reset(c); reset(up) })
	defer timer.Stop()
	done := make(chan struct{}, 2)
	// Plain copies: TCP-to-TCP io.Copy splices through a pool of pipes that only the
	// garbage collector closes, which the descriptor count would mistake for a leak.
	go func() { io.Copy(struct{ io.Writer }{up}, struct{ io.Reader }{br}); done <- struct{}{} }()
	go func() { io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{up}); done <- struct{}{} }()
	<-done
	reset(c)
	reset(up)
	<-done
}

// retryDelays keeps the pauses the poller logged before reconnecting.
type retryDelays struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (h *retryDelays) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryDelays) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" {
			h.mu.Lock()
			h.delays = append(h.delays, a.Value.Duration())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}
func (h *retryDelays) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *retryDelays) WithGroup(string) slog.Handler      { return h }

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A poller behind a proxy that resets every 3rd connection at CONNECT and every tunnel
// after 300 ms, and behind one that accepts and never answers: over the window it keeps
// reconnecting with jittered pauses (no two alike, none below the floor), never faster
// than its back-off allows, at a small fraction of a CPU, and it leaves no descriptor behind.
func TestPollerBehindAResettingProxy(t *testing.T) {
	faultyProxyWindow(t, &faultyProxy{resetEvery: 3, tunnelLife: 300 * time.Millisecond})
}

func TestPollerBehindAStallingProxy(t *testing.T) {
	faultyProxyWindow(t, &faultyProxy{stall: true})
}

func faultyProxyWindow(t *testing.T, p *faultyProxy) {
	const window, connections = 4 * time.Second, 3
	lim := fastLimits()
	lim.PollingReconnectAfterDisconnectDelay = 400 * time.Millisecond
	lim.PollingReconnectMinDelay = 400 * time.Millisecond
	lim.ConnectTimeout = time.Second
	srv := newServer(t, lim)
	srv.servePolling("")
	p.target = srv.addr
	fdsBefore := openFDs(t)
	startFaultyProxy(t, p)
	cert, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	srv.trust.Add(cert.Thumbprint())
	tlsCert := cert.TLS()
	delays := &retryDelays{}
	poller := &halibut.Poller{Certificate: &tlsCert, Service: &halibut.Service{}, Limits: lim, Logger: slog.New(delays),
		ServerAddress: "https://" + srv.addr + "/", ServerThumbprint: srv.cert.Thumbprint(), SubscriptionID: "poll://faultyproxy0000000000/",
		Connections: connections, Proxy: halibut.FixedProxy(p.url)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cpu0 := cpuTime()
	go func() { poller.Run(ctx); close(done) }()
	time.Sleep(window)
	cpu := cpuTime() - cpu0
	fdsDuring := openFDs(t)
	cancel()
	<-done
	p.close()
	attempts := p.accepted.Load()
	delays.mu.Lock()
	ds := append([]time.Duration(nil), delays.delays...)
	delays.mu.Unlock()

	// No busy loop: each connection waits at least its floor between attempts (half the
	// after-disconnect pause once identified, a tenth of the minimum when failing), and a
	// stalled attempt lasts ConnectTimeout.
	floor := min(lim.PollingReconnectAfterDisconnectDelay/2, lim.PollingReconnectMinDelay/10)
	if most := int64(connections) * int64(window/floor+1); attempts > most || attempts < connections {
		t.Errorf("%d connection attempts in %v by %d connections; want between %d and %d", attempts, window, connections, connections, most)
	}
	if p.stall {
		if most := int64(connections) * int64(window/lim.ConnectTimeout+1); attempts > most {
			t.Errorf("%d attempts through a stalling proxy in %v; each waits ConnectTimeout (%v), so at most %d", attempts, window, lim.ConnectTimeout, most)
		}
	}
	distinct := map[time.Duration]bool{}
	for _, d := range ds {
		distinct[d] = true
		if d < lim.PollingReconnectMinDelay/10 || d > lim.PollingReconnectMaxDelay {
			t.Errorf("a reconnect pause of %v is outside [%v, %v]", d, lim.PollingReconnectMinDelay/10, lim.PollingReconnectMaxDelay)
		}
	}
	if len(ds) < connections || len(distinct) < len(ds)*3/4 {
		t.Errorf("reconnect pauses %v: want several, jittered (no lock-step)", ds)
	}
	// Recorded CPU covers the whole test process (the proxy and the server too): an upper
	// bound for the poller. A busy loop would take the window's worth of a core.
	if cpu > window/4 {
		t.Errorf("%v of CPU in a %v window: a busy loop?", cpu, window)
	}
	// Descriptors: during the window, at most each connection's socket and the proxy's
	// and server's ends of it; after stopping, back to where they were.
	if fdsDuring > fdsBefore+6*connections+4 {
		t.Errorf("%d descriptors open during the window, %d before", fdsDuring, fdsBefore)
	}
	var fdsAfter int
	waitFor(t, 5*time.Second, "descriptors back to where they were", func() bool {
		fdsAfter = openFDs(t)
		return fdsAfter <= fdsBefore+2
	})
	t.Logf("figures: %d connection attempts by %d connections in %v; pauses %v; CPU %v (whole test process, -race if on); descriptors %d before, %d during, %d after",
		attempts, connections, window, ds, cpu.Round(time.Millisecond), fdsBefore, fdsDuring, fdsAfter)
}
