package halibut

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand; timers fire on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) {
	c.mu.Lock()
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), f})
	c.mu.Unlock()
}

// Advance moves time on and runs the timers that came due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		due := -1
		for i, tm := range c.timers {
			if !tm.at.After(c.now) && (due < 0 || tm.at.Before(c.timers[due].at)) {
				due = i
			}
		}
		if due < 0 {
			c.mu.Unlock()
			return
		}
		f := c.timers[due].f
		c.timers = append(c.timers[:due], c.timers[due+1:]...)
		c.mu.Unlock()
		f()
	}
}

// logLines captures warnings as "message key=value ..." lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

// take returns the lines logged since the last take.
func (l *logLines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

func addrOf(s string) net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", s)
	return a
}

// One address refused hundreds of times a minute costs one full line, then
// one summary a minute; an address that stops is forgotten, so its next
// refusal is logged in full again.
func TestRefusalsAreLoggedOnceThenSummarisedPerMinute(t *testing.T) {
	clk := newFakeClock()
	logs := &logLines{}
	log := slog.New(logs)
	lim := DefaultLimits()
	var a acceptor
	a.refusals.clock = clk
	const untrusted = "refused a connection from an untrusted certificate; trust it with `tentacle configure --trust` if this is your Octopus Server"
	refuse := func(n int, host string) {
		for i := range n {
			a.refused(log, lim, addrOf(fmt.Sprintf("%s:%d", host, 40000+i)), untrusted, "ABCDEF")
		}
	}

	refuse(330, "192.0.2.7")
	if got := logs.take(); len(got) != 1 || !strings.Contains(got[0], "trust it with `tentacle configure --trust`") || !strings.Contains(got[0], "thumbprint=ABCDEF") {
		t.Fatalf("first refusal: want one full line with the thumbprint and the hint, got %q", got)
	}
	clk.Advance(59 * time.Second)
	refuse(10, "192.0.2.7")
	if got := logs.take(); len(got) != 0 {
		t.Fatalf("refusals within the minute were logged one by one: %q", got)
	}
	clk.Advance(time.Second)
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "340 connections refused from 192.0.2.7 in the last minute") || !strings.Contains(got[0], "thumbprint=ABCDEF") {
		t.Fatalf("after a minute: want one summary of 340, got %q", got)
	}
	refuse(5, "192.0.2.7")
	clk.Advance(time.Minute)
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "5 connections refused from 192.0.2.7 in the last minute") {
		t.Fatalf("second minute: got %q", got)
	}
	clk.Advance(time.Minute) // a quiet minute: nothing to say, the address is forgotten
	if got := logs.take(); len(got) != 0 {
		t.Fatalf("a quiet minute logged %q", got)
	}
	refuse(1, "192.0.2.7")
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], untrusted) {
		t.Fatalf("after a quiet minute the next refusal should be logged in full, got %q", got)
	}
}

// Many addresses cannot grow the tallies past their bound: the ones beyond
// it are counted together.
func TestRefusalTalliesAreBounded(t *testing.T) {
	clk := newFakeClock()
	logs := &logLines{}
	log := slog.New(logs)
	lim := DefaultLimits()
	lim.MaxRefusalLogAddresses = 4
	var a acceptor
	a.refusals.clock = clk
	for i := range 1000 {
		a.refused(log, lim, addrOf(fmt.Sprintf("198.51.%d.%d:1000", i/250, i%250)), "refused a connection: the client did not present a certificate", "")
	}
	if got := logs.take(); len(got) != 4 {
		t.Errorf("want the first refusal of each of the 4 tallied addresses, got %d lines", len(got))
	}
	if n := len(a.refusals.tallies); n > 4 {
		t.Errorf("%d addresses tallied, bound is 4", n)
	}
	clk.Advance(time.Minute)
	got := logs.take()
	if len(got) != 1 || !strings.HasPrefix(got[0], "996 connections refused from addresses beyond the 4 tallied one by one in the last minute") {
		t.Errorf("want one summary for the other addresses, got %q", got)
	}
}

// The real listener: fifty refused connections from one client give one
// warning, and a summary once the minute is over. Before, fifty warnings.
func TestListenerRefusalsDoNotFloodTheLog(t *testing.T) {
	srv, cli, stranger := certs(t)
	clk := newFakeClock()
	logs := &logLines{}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: testLimits(), Logger: slog.New(logs)}
	l.refusals.clock = clk
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(context.Background()) })
	ep := Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf)}
	for range 50 {
		tc, r := rawDial(t, ep, stranger)
		io.WriteString(tc, "MX\r\n\r\nMX-CLIENT 1.0\r\n\r\n")
		if _, err := r.ReadByte(); err == nil {
			t.Fatal("an untrusted client got a reply")
		}
		tc.Close()
	}
	if got := logs.take(); len(got) != 1 || !strings.Contains(got[0], Thumbprint(stranger.Leaf)) || !strings.Contains(got[0], "configure --trust") {
		t.Fatalf("50 refusals: want one full warning with the thumbprint and the hint, got %d lines: %q", len(got), got)
	}
	clk.Advance(time.Minute)
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "50 connections refused from 127.0.0.1 in the last minute") {
		t.Fatalf("after a minute: want one summary, got %q", got)
	}
}

// A certificate Go cannot parse is explained at Error, but anyone can present
// one on every connection: twenty such connections from one client give one
// Error line, then a summary once the minute is over. Before, twenty.
func TestUnparsableCertificateRefusalsDoNotFloodTheLog(t *testing.T) {
	odd := opensslNonConformingCert(t)
	srv, _, _ := certs(t)
	clk := newFakeClock()
	logs := &logLines{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Certificate: srv, Trust: NewTrustStore(thumbprintDER(odd.Certificate[0])), Service: echoService(), Limits: testLimits(), Logger: slog.New(logs)}
	l.refusals.clock = clk
	done := make(chan struct{})
	go func() { l.Serve(ln); close(done) }()
	t.Cleanup(func() { l.Shutdown(context.Background()); <-done })
	const n = 20
	for range n {
		cfg := &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return odd, nil }}
		if tc, err := tls.Dial("tcp", ln.Addr().String(), cfg); err == nil {
			tc.Close()
		}
	}
	refusedSoFar := func() int {
		l.refusals.mu.Lock()
		defer l.refusals.mu.Unlock()
		if tl := l.refusals.tallies["127.0.0.1"]; tl != nil {
			return tl.count
		}
		return 0
	}
	logged := func() int {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return len(logs.lines)
	}
	// (a line per connection, as before, also ends the wait)
	waitFor(t, func() bool { return refusedSoFar() == n || logged() >= n }, "the listener to refuse every connection")
	if got := logs.take(); len(got) != 1 || !strings.Contains(got[0], "TLS client at") || !strings.Contains(got[0], akiCritical) {
		t.Fatalf("%d unparsable certificates: want one line naming the cause, got %d: %q", n, len(got), got)
	}
	clk.Advance(time.Minute)
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], fmt.Sprintf("%d connections refused from 127.0.0.1 in the last minute", n)) {
		t.Fatalf("after a minute: want one summary, got %q", got)
	}
}
