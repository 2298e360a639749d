package halibut

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// acceptor is the connection bookkeeping the accepting roles (Listener,
// PollingServer) share: the accept loop, the set of open connections and
// whether each is inside an RPC, and shutdown.
type acceptor struct {
	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]bool // true while the connection is inside an RPC
	shutdown bool
	wg       sync.WaitGroup
	accepted int64 // identified connections ever tracked

	unidentified unidentifiedGate
	refusals     refusalLog

	// tlsConfig is made once: the session ticket keys live in it, so a
	// client can resume a session on a later connection (TicketFiles).
	tlsOnce   sync.Once
	tlsConfig *tls.Config
}

func (a *acceptor) serverTLS(cert *tls.Certificate) *tls.Config {
	a.tlsOnce.Do(func() { a.tlsConfig = serverTLSConfig(cert) })
	return a.tlsConfig
}

// Connections reports the open identified connections and how many have
// been identified since start.
func (a *acceptor) Connections() (open int, total int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.conns), a.accepted
}

// serve runs the accept loop on ln until stop.
func (a *acceptor) serve(ln net.Listener, lim Limits, log *slog.Logger, handle func(net.Conn)) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	a.mu.Lock()
	if a.shutdown {
		a.mu.Unlock()
		return ErrListenerClosed
	}
	a.ln = ln
	a.mu.Unlock()
	return acceptLoop(ln, lim, &a.wg, a.closed, func(c net.Conn) net.Conn { return a.admit(c, lim, log) }, handle)
}

// admit puts a new connection under the identification deadline and the
// caps on unidentified connections (see admission.go).
func (a *acceptor) admit(c net.Conn, lim Limits, log *slog.Logger) net.Conn {
	gc, evicted, refused := a.unidentified.admit(c, lim, time.Now())
	if refused { // closed: the handshake fails at once and the peer retries
		a.refused(log, lim, c.RemoteAddr(), fmt.Sprintf(
			"refused a new connection: %d connections that have not identified themselves yet (%d from one address), none older than %s",
			lim.MaxUnidentifiedConnections, lim.MaxUnidentifiedConnectionsPerAddress, lim.UnidentifiedEvictionAge), "")
		return gc
	}
	if a.closed() { // admitted as Shutdown closed the others
		gc.Close()
	}
	if evicted != nil {
		a.refused(log, lim, evicted.RemoteAddr(), fmt.Sprintf(
			"closed a connection that had not identified itself, to make room for a new one (at most %d such connections, %d from one address)",
			lim.MaxUnidentifiedConnections, lim.MaxUnidentifiedConnectionsPerAddress), "")
	}
	return gc
}

// acceptFailed closes a connection that did not get as far as identifying
// itself. A refusal goes to the rate-limited refusal log; anything else
// (a deadline, a scanner, a browser given the friendly page) is routine.
func (a *acceptor) acceptFailed(log *slog.Logger, lim Limits, raw net.Conn, err error) {
	var rf *refusedError
	var pe *PeerCertificateError
	switch {
	case errors.As(err, &pe):
		// The peer only sees an alert, so this log is where the cause shows;
		// through the refusal log, because any peer can send such a
		// certificate (or such an alert) on every connection.
		a.refusals.refused(log, lim, refusal{remote: raw.RemoteAddr().String(), host: remoteHost(raw.RemoteAddr()),
			message: "TLS handshake failed on a certificate: " + err.Error(), asError: true})
	case errors.As(err, &rf):
		a.refused(log, lim, raw.RemoteAddr(), rf.message, rf.thumbprint)
	case errors.Is(err, errNotHalibut):
	default:
		log.Debug("connection closed before identification", "remote", raw.RemoteAddr().String(), "err", err)
	}
	raw.Close()
}

// refused logs a refused connection through the rate-limited refusal log.
func (a *acceptor) refused(log *slog.Logger, lim Limits, remote net.Addr, message, thumbprint string) {
	a.refusals.refused(log, lim, refusal{remote: remote.String(), host: remoteHost(remote), message: message, thumbprint: thumbprint})
}

func (a *acceptor) closed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.shutdown
}

// track records an open connection; false means the acceptor is stopping
// and the connection should close.
func (a *acceptor) track(c *conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.shutdown {
		return false
	}
	if a.conns == nil {
		a.conns = map[*conn]bool{}
	}
	a.conns[c] = false
	a.accepted++
	return true
}

func (a *acceptor) untrack(c *conn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
}

// setBusy marks a connection as inside an RPC or not; false means the
// acceptor is stopping.
func (a *acceptor) setBusy(c *conn, busy bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.conns[c]; ok {
		a.conns[c] = busy
	}
	return !a.shutdown
}

// stop stops accepting and closes idle connections (and busy ones too when
// closeBusy). It reports whether this call started the shutdown.
func (a *acceptor) stop(closeBusy bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := !a.shutdown
	a.shutdown = true
	if a.ln != nil {
		a.ln.Close()
	}
	for c, busy := range a.conns {
		if closeBusy || !busy {
			c.Close()
		}
	}
	a.unidentified.closeAll()
	return first
}

// wait waits for every connection handler to return; when ctx ends first it
// closes whatever is still open and returns ctx's error.
func (a *acceptor) wait(ctx context.Context) error {
	a.refusals.flush()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		a.stop(true)
		<-done
		return ctx.Err()
	}
}

// acceptLoop accepts connections on ln and runs handle for each in its own
// goroutine (tracked by wg) until an accept fails; it returns
// ErrListenerClosed when closed() says the owner is shutting down. A
// temporary failure (out of file descriptors) backs off instead of spinning.
//
// admit runs in the loop itself, before the connection's goroutine starts:
// the caps on unidentified connections then bound the descriptors this
// process holds however far the handlers fall behind (a starved machine
// under a flood of connections once held 993 against caps of about 300
// when admission ran in each connection's goroutine).
func acceptLoop(ln net.Listener, lim Limits, wg *sync.WaitGroup, closed func() bool, admit func(net.Conn) net.Conn, handle func(net.Conn)) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if closed() {
				return ErrListenerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscallEMFILE) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c = admit(configureTCP(c, lim))
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle(c)
		}()
	}
}

// Stopped reports whether Shutdown has been called.
func (a *acceptor) Stopped() bool { return a.closed() }
