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
	u, err := url.Parse(p.ServerAddress)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "wss") {
		return fmt.Errorf("polling address %q is neither https://host:port/ nor wss://host/path", p.ServerAddress)
	}
	sub, err := NormalizeSubscriptionID(p.SubscriptionID)
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

// connectionLoop keeps one connection alive, reconnecting with full-jitter
// exponential back-off so that a fleet that lost its server does not
// reconnect in lock-step (upstream's fixed 5 s retries caused storms).
func (p *Poller) connectionLoop(ctx context.Context, u *url.URL, sub string, index int) {
	log := p.logger().With("server", p.ServerAddress, "connection", index)
	attempt := 0
	for ctx.Err() == nil {
		started := time.Now()
		err := p.pollOnce(ctx, u, sub, log)
		if ctx.Err() != nil {
			return
		}
		// A connection that worked for a while resets the back-off.
		if time.Since(started) > p.Limits.PollingReconnectMaxDelay {
			attempt = 0
		}
		delay := reconnectDelay(attempt, p.Limits)
		attempt++
		var uc *UnexpectedCertificateError
		var pe *PeerCertificateError
		if errors.As(err, &uc) {
			log.Error("the server presented an unexpected certificate; check the trusted thumbprint", "err", err, "retry_in", delay.Round(time.Millisecond))
		} else if errors.As(err, &pe) {
			log.Error("TLS handshake failed on a certificate", "err", err, "retry_in", delay.Round(time.Millisecond))
		} else {
			log.Warn("polling connection lost", "err", err, "retry_in", delay.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// reconnectDelay is "full jitter": uniform in [0, min(max, min*2^attempt)],
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

// pollOnce runs one connection until it fails or ctx ends.
func (p *Poller) pollOnce(ctx context.Context, u *url.URL, sub string, log *slog.Logger) error {
	var c *conn
	var err error
	if u.Scheme == "wss" {
		c, err = dialHalibutWebSocket(ctx, u, p.expected(), p.Certificate, p.Proxy, p.Limits)
	} else {
		port := u.Port()
		if port == "" {
			port = "443"
		}
		c, err = dialHalibut(ctx, net.JoinHostPort(u.Hostname(), port), u.Hostname(), p.expected(), p.Certificate, p.Proxy, nil, p.Limits)
	}
	if err != nil {
		return err
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
			return fmt.Errorf("no request from the server: %w", err)
		}
		if !setBusy(true) {
			return ctx.Err()
		}
		msg, err := c.readMessage()
		if err != nil {
			return err
		}
		if !msg.IsNull() {
			if err := p.Service.serve(context.WithoutCancel(ctx), c, msg, peer); err != nil {
				return err
			}
		}
		if !setBusy(false) {
			c.closeWithEnd()
			return ctx.Err()
		}
		if err := c.sendControl(controlNext); err != nil {
			return err
		}
		word, err := c.readControl(p.Limits.HeartbeatReceiveTimeout)
		if err != nil {
			return err
		}
		if word != controlProceed {
			return protocolErrorf("expected PROCEED, got %q", word)
		}
	}
}

func (p *Poller) expected() []string { return append([]string{p.ServerThumbprint}, p.AlsoTrusted...) }
