package halibut

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Listener is the listening service role (a listening Tentacle): it accepts
// TLS connections from trusted clients and serves their requests with
// Service (reference/halibut-protocol.md §2.3, §3.2).
type Listener struct {
	Certificate *tls.Certificate
	Trust       *TrustStore
	Service     *Service
	Limits      Limits
	Logger      *slog.Logger
	// FriendlyPage is shown to a browser or curl that connects (§2.5); nil
	// means the default page.
	FriendlyPage []byte

	acceptor
}

// ErrListenerClosed is returned by Serve after Shutdown.
var ErrListenerClosed = errors.New("halibut: listener closed")

func (l *Listener) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// Serve accepts connections on ln until Shutdown or an accept error.
func (l *Listener) Serve(ln net.Listener) error {
	return l.serve(ln, l.Limits, l.logger(), l.handle)
}

// Shutdown stops accepting, closes idle connections, lets requests in flight
// finish and send their responses, then returns (or when ctx ends, after
// closing what is left).
func (l *Listener) Shutdown(ctx context.Context) error {
	l.stop(false)
	return l.wait(ctx)
}

func (l *Listener) handle(raw net.Conn) {
	log := l.logger().With("remote", raw.RemoteAddr().String())
	c, id, peer, err := acceptHalibut(raw, l.serverTLS(l.Certificate), l.Trust, l.Limits, l.FriendlyPage)
	if err != nil {
		l.acceptFailed(l.logger(), l.Limits, raw, err)
		return
	}
	markIdentified(raw)
	if !l.track(c) {
		c.Close()
		return
	}
	defer func() {
		l.untrack(c)
		c.Close()
	}()
	if id.kind != identityClient {
		l.refused(l.logger(), l.Limits, raw.RemoteAddr(), fmt.Sprintf("refused a connection that did not identify as a client (it said %s)", id.kind), peer)
		return
	}
	if err := c.sendText(identityLine(identityServer), l.Limits.SendTimeout); err != nil {
		return
	}
	log = log.With("thumbprint", peer)
	for {
		// Idle between requests: Shutdown may close us here.
		if err := c.waitForData(l.Limits.ListeningNextRequestIdleTimeout); err != nil {
			if !isClosedOrEOF(err) {
				log.Debug("no request", "err", err)
			}
			return
		}
		if !l.setBusy(c, true) {
			return
		}
		msg, err := c.readMessage()
		if err != nil {
			log.Warn("could not read a request", "err", err)
			return
		}
		if msg.IsNull() {
			return // a null request ends the conversation
		}
		err = l.Service.serve(context.Background(), c, msg, peer)
		keepGoing := l.setBusy(c, false)
		if errors.Is(err, ErrPeerHungUp) {
			log.Info("the client closed the connection while its request was executing (a cancelled call)", "err", err)
			return
		}
		if err != nil {
			log.Warn("request failed on the wire", "err", err)
			return
		}
		if !keepGoing {
			c.closeWithEnd()
			return
		}
		word, err := c.readControl(l.Limits.ReceiveTimeout)
		if err != nil || word == controlEnd {
			return
		}
		if word != controlNext {
			log.Warn("protocol error", "err", protocolErrorf("expected NEXT or END, got %q", word))
			return
		}
		if err := c.sendControl(controlProceed); err != nil {
			return
		}
	}
}

// drainBeforeClose lets the alert crypto/tls just sent reach a peer whose
// certificate could not be parsed. With TLS 1.3 that peer has finished its
// handshake and already sent data; closing with it unread would reset the
// connection, and a reset can overtake the alert, leaving the peer with
// "connection reset" instead of the reason. So: half-close, then discard
// what arrives until the peer closes (it does on reading the alert), at most
// 64 KiB or wait.
func drainBeforeClose(raw net.Conn, wait time.Duration) {
	hc, ok := raw.(halfCloser)
	if !ok || hc.CloseWrite() != nil {
		return
	}
	_ = raw.SetReadDeadline(time.Now().Add(min(wait, 5*time.Second)))
	_, _ = io.Copy(io.Discard, io.LimitReader(raw, 64<<10))
}

// halfCloser is a connection that can stop sending and still receive:
// *net.TCPConn and the wrappers accepted connections go through
// (gatedConn, quickAckConn), which pass CloseWrite on.
type halfCloser interface{ CloseWrite() error }

// closeWrite half-closes c if it can, for the wrappers' CloseWrite.
func closeWrite(c net.Conn) error {
	if hc, ok := c.(halfCloser); ok {
		return hc.CloseWrite()
	}
	return errors.ErrUnsupported
}

// errNotHalibut is a connection that was answered with the friendly page.
var errNotHalibut = errors.New("not a Halibut peer")

// acceptHalibut does everything an accepting side does before the
// conversation: TLS, the preamble (browsers get the friendly page), the
// trust check (an untrusted peer is closed without a reply, as upstream) and
// reading the peer's identity.
func acceptHalibut(raw net.Conn, cfg *tls.Config, trust *TrustStore, lim Limits, page []byte) (*conn, identity, string, error) {
	tc := tls.Server(raw, cfg)
	// raw is gated (admission.go): no deadline set until identification
	// reaches past Limits.IdentificationTimeout from accept.
	_ = tc.SetDeadline(time.Now().Add(lim.ReceiveTimeout))
	if err := tc.Handshake(); err != nil {
		var own *tls.Certificate
		if len(cfg.Certificates) > 0 {
			own = &cfg.Certificates[0]
		}
		if pe, ok := asPeerCertificateError(err, "the TLS client at "+raw.RemoteAddr().String(), own); ok {
			if !pe.Ours {
				drainBeforeClose(raw, lim.SendTimeout)
			}
			return nil, identity{}, "", pe
		}
		return nil, identity{}, "", fmt.Errorf("TLS handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	c := newConn(tc, lim)
	pre, err := readPreamble(c.r, lim.MaxPreambleBytes)
	if err != nil {
		return nil, identity{}, "", err
	}
	if pre == "" {
		return nil, identity{}, "", io.EOF
	}
	if !strings.HasPrefix(pre, "MX") {
		sendFriendlyPage(c, page)
		return nil, identity{}, "", errNotHalibut
	}
	peer := peerThumbprint(tc)
	if peer == "" {
		return nil, identity{}, "", &refusedError{message: "refused a connection: the client did not present a certificate"}
	}
	if !trust.Trusted(peer) {
		return nil, identity{}, peer, &refusedError{
			message:    "refused a connection from an untrusted certificate; trust it with `tentacle configure --trust` if this is your Octopus Server",
			thumbprint: peer,
		}
	}
	c.setReadTimeout(lim.ReceiveTimeout)
	id, err := readIdentity(c.r, lim.MaxControlLineBytes)
	if err != nil {
		return nil, identity{}, peer, err
	}
	return c, id, peer, nil
}

// defaultFriendlyPage is what a browser sees on the agent's port.
var defaultFriendlyPage = []byte(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Octopus Tentacle</title></head>
<body>
<h1>Octopus Tentacle</h1>
<p>This port belongs to an Octopus Deploy Tentacle agent. It speaks the Halibut protocol to Octopus
Servers whose certificates it trusts; there is nothing to browse here.</p>
<p>You see this page because your browser did not present a trusted client certificate.</p>
</body>
</html>`)

// friendlyPageHeaders are the security headers sent with the page.
var friendlyPageHeaders = []string{
	"Content-Security-Policy: default-src 'none'",
	"Referrer-Policy: no-referrer",
	"X-Content-Type-Options: nosniff",
	"X-Frame-Options: DENY",
	"Strict-Transport-Security: max-age=31536000",
}

func sendFriendlyPage(c *conn, page []byte) {
	if page == nil {
		page = defaultFriendlyPage
	}
	var b strings.Builder
	b.WriteString("HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(page)) + "\r\n")
	for _, h := range friendlyPageHeaders {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(page)
	_ = c.sendText(b.String(), c.lim.SendTimeout)
}

// configureTCP applies keep-alive, the unacknowledged-data bound, Nagle and immediate-ACK settings to an
// accepted or dialed TCP connection and returns the connection to use.
func configureTCP(c net.Conn, lim Limits) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	_ = tc.SetKeepAliveConfig(lim.TCPKeepAlive)
	setUserTimeout(tc, lim.TCPUserTimeout)
	_ = tc.SetNoDelay(lim.TCPNoDelay)
	if lim.TCPQuickAck {
		return ackAtOnce(tc)
	}
	return tc
}

func isClosedOrEOF(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) && ne.Timeout()
}
