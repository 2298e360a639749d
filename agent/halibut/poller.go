package halibut

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"
)

// Poller is the polling service role (a polling Tentacle): it keeps
// Connections connections open to one Octopus Server, identifies with its
// subscription id and serves the requests the server sends down them
// (reference/halibut-protocol.md §2.4, §3.3).
type Poller struct {
	Certificate *tls.Certificate
	Service     *Service
	Limits      Limits
	Logger      *slog.Logger
	// ServerAddress is https://host:port/ (10943 by default, or 443 with SNI).
	ServerAddress string
	// ServerThumbprint is the certificate thumbprint the server must present.
	ServerThumbprint string
	// AlsoTrusted are further thumbprints accepted from this server: its next
	// certificate, trusted ahead of a rotation so no Tentacle loses contact.
	AlsoTrusted []string
	// SubscriptionID is this Tentacle's poll://xxxxxxxxxxxxxxxxxxxx/ id.
	SubscriptionID string
	// Connections is how many connections to keep (1 to 512).
	Connections int
	// Proxy chooses an HTTP proxy; nil connects directly.
	Proxy ProxyFunc

	// connected counts live identified connections, for health reporting.
	mu        sync.Mutex
	connected int
}

// Connected is how many polling connections are identified right now.
func (p *Poller) Connected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// Run polls until ctx ends. When it ends, idle connections close at once
// and a request being served is finished and answered first.
func (p *Poller) Run(ctx context.Context) error {
	if err := p.Limits.Validate(); err != nil {
		return err
	}
	u, sub, err := p.target()
	if err != nil {
		return err
	}
	n := min(max(p.Connections, 1), 512)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.connectionLoop(ctx, u, sub, i)
		}()
	}
	wg.Wait()
	return nil
}

// connectionLoop keeps one connection alive, reconnecting as reconnectPolicy
// says.
func (p *Poller) connectionLoop(ctx context.Context, u *url.URL, sub string, index int) {
	log := p.logger().With("server", p.ServerAddress, "connection", index)
	policy := reconnectPolicy{lim: p.Limits}
	for ctx.Err() == nil {
		identified, err := p.pollOnce(ctx, u, sub, log)
		if ctx.Err() != nil {
			return
		}
		delay := policy.next(identified, err)
		var uc *UnexpectedCertificateError
		var pe *PeerCertificateError
		switch {
		case errors.As(err, &uc):
			log.Error("the server presented an unexpected certificate; check the trusted thumbprint", "err", err, "retry_in", delay.Round(time.Millisecond))
		case errors.As(err, &pe):
			log.Error("TLS handshake failed on a certificate", "err", err, "retry_in", delay.Round(time.Millisecond))
		case identified && errors.Is(err, ErrPeerHungUp):
			// how a server cancels a request in flight: routine
			log.Info("polling connection ended; reconnecting", "err", err, "retry_in", delay.Round(time.Millisecond))
		case identified:
			log.Warn("polling connection ended; reconnecting", "err", err, "retry_in", delay.Round(time.Millisecond))
		default:
			log.Warn("polling connection failed", "err", err, "retry_in", delay.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// reconnectPolicy chooses the pause before a polling connection connects
// again; its numbers are the PollingReconnect* limits.
//
// A connection that identified itself proves the server reachable and
// willing, so when it ends (the server dropped it on cancelling a request,
// restarted, or the network blinked) the back-off starts over and the pause
// is short: uniform in [½, 1] × PollingReconnectAfterDisconnectDelay, about a
// second. Only while connecting fails does the pause grow: full jitter,
// uniform in [MinDelay/10, min(MaxDelay, MinDelay × 2^failures)], so a fleet
// that lost its server neither hammers it nor retries in lock-step (upstream's
// fixed 5 s retries caused storms). A server that accepts the connection and
// closes it during the TLS handshake is up but shedding load: the pause is
// the first failure's, and does not grow.
type reconnectPolicy struct {
	lim      Limits
	failures int // connection attempts that failed since the last identified one
}

func (r *reconnectPolicy) next(identified bool, err error) time.Duration {
	if identified {
		r.failures = 0
		d := r.lim.PollingReconnectAfterDisconnectDelay
		return d/2 + rand.N(d/2+1)
	}
	if errors.Is(err, errClosedInHandshake) {
		// The server is there and shedding load (all its Tentacles reconnecting at
		// once after it restarted): the pause is the first one's, jittered, and does
		// not grow, so that no Tentacle waits minutes for a server that is up.
		r.failures = 0
		return reconnectDelay(0, r.lim)
	}
	d := reconnectDelay(r.failures, r.lim)
	r.failures++
	return d
}

// reconnectDelay is the pause after the attempt-th consecutive failure
// (counting from 0): "full jitter", uniform in [0, min(max, min*2^attempt)],
// but never below a tenth of the minimum so a flapping server is not
// hammered.
func reconnectDelay(attempt int, lim Limits) time.Duration {
	ceiling := lim.PollingReconnectMinDelay << min(attempt, 20)
	if ceiling <= 0 || ceiling > lim.PollingReconnectMaxDelay {
		ceiling = lim.PollingReconnectMaxDelay
	}
	floor := lim.PollingReconnectMinDelay / 10
	if ceiling <= floor {
		return floor
	}
	return floor + rand.N(ceiling-floor)
}

// pollOnce runs one connection until it fails or ctx ends. identified says
// whether the server answered our identification.
func (p *Poller) pollOnce(ctx context.Context, u *url.URL, sub string, log *slog.Logger) (identified bool, err error) {
	c, err := p.dial(ctx, u)
	if err != nil {
		return false, err
	}
	// ctx ending closes the connection at once unless a request is being
	// served; that one is finished and answered first.
	var mu sync.Mutex
	busy, stopping := false, false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		stopping = true
		if !busy {
			c.Close()
		}
	})
	defer stop()
	defer c.Close()
	setBusy := func(b bool) (keepGoing bool) {
		mu.Lock()
		defer mu.Unlock()
		busy = b
		return !stopping
	}
	if err := p.identify(c, u, sub); err != nil {
		return false, err
	}
	p.mu.Lock()
	p.connected++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.connected--
		p.mu.Unlock()
	}()
	log.Debug("polling connection established")
	peer := p.ServerThumbprint
	for {
		// A server sends a null request at least every 30 s; 60 s of silence
		// means the connection is dead.
		if err := c.waitForData(p.Limits.PollingReceiveRequestTimeout); err != nil {
			return true, fmt.Errorf("no request from the server: %w", err)
		}
		if !setBusy(true) {
			return true, ctx.Err()
		}
		msg, err := c.readMessage()
		if err != nil {
			return true, err
		}
		if !msg.IsNull() {
			if err := p.Service.serve(context.WithoutCancel(ctx), c, msg, peer); err != nil {
				return true, err
			}
		}
		if !setBusy(false) {
			c.closeWithEnd()
			return true, ctx.Err()
		}
		if err := c.sendControl(controlNext); err != nil {
			return true, err
		}
		word, err := c.readControl(p.Limits.HeartbeatReceiveTimeout)
		if err != nil {
			return true, err
		}
		if word != controlProceed {
			return true, protocolErrorf("expected PROCEED, got %q", word)
		}
	}
}

func (p *Poller) expected() []string { return append([]string{p.ServerThumbprint}, p.AlsoTrusted...) }

// Probe opens one polling connection, identifies with the subscription id
// and returns once the server has identified itself, without serving a
// request: the check `tentacle doctor` runs. A server that does not trust
// this Tentacle's certificate closes the connection instead, which Probe
// reports. Timeouts are p.Limits' (ConnectTimeout, SendTimeout,
// ReceiveTimeout) and ctx's.
func (p *Poller) Probe(ctx context.Context) error {
	u, sub, err := p.target()
	if err != nil {
		return err
	}
	c, err := p.dial(ctx, u)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	return p.identify(c, u, sub)
}

// target is the server's address and this Tentacle's subscription id,
// checked.
func (p *Poller) target() (*url.URL, string, error) {
	u, err := url.Parse(p.ServerAddress)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "wss") {
		return nil, "", fmt.Errorf("polling address %q is neither https://host:port/ nor wss://host/path", p.ServerAddress)
	}
	sub, err := NormalizeSubscriptionID(p.SubscriptionID)
	return u, sub, err
}

// dial connects to the server at u (TCP or WebSocket) and completes TLS,
// pinning the server's thumbprint.
func (p *Poller) dial(ctx context.Context, u *url.URL) (*conn, error) {
	if u.Scheme == "wss" {
		return dialHalibutWebSocket(ctx, u, p.expected(), p.Certificate, p.Proxy, p.Limits)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return dialHalibut(ctx, net.JoinHostPort(u.Hostname(), port), u.Hostname(), p.expected(), p.Certificate, p.Proxy, nil, p.Limits)
}

// identify sends the subscription id and reads the server's identity.
func (p *Poller) identify(c *conn, u *url.URL, sub string) error {
	if err := c.sendText(identityLine(identitySubscr, sub), p.Limits.SendTimeout); err != nil {
		return err
	}
	id, err := readIdentity(c.r, p.Limits.MaxControlLineBytes)
	if err != nil {
		// With TLS 1.3 a server's refusal of our certificate arrives here.
		if pe, ok := asPeerCertificateError(err, "the server at "+u.Host, p.Certificate); ok {
			return pe
		}
		return fmt.Errorf("identifying to the server: %w", err)
	}
	if id.kind != identityServer {
		return protocolErrorf("expected MX-SERVER, got %s", id.kind)
	}
	return nil
}
