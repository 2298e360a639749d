package halibut

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket polling (reference/halibut-protocol.md §8): the same polling
// conversation, carried in WebSocket frames over TLS on port 443, for
// networks that only let HTTPS out. Upstream supports it only in its
// Windows build; ours works everywhere.

// webSocketSubprotocol is the Sec-WebSocket-Protocol both sides name.
const webSocketSubprotocol = "Octopus"

// webSocketPreamble is the text message a polling client sends first.
const webSocketPreamble = "MX"

// webSocketBufferSize sizes gorilla's buffers and ours: a few tens of KiB per
// WebSocket connection, enough to move packages at TLS speed.
const webSocketBufferSize = 16 << 10

// The framing itself (masking, fragments, control frames, the close
// handshake, the upgrade) is gorilla/websocket's: hostile input meets a
// library that many projects harden, not a copy of RFC 6455 kept here.

// wsStream is a byte stream over WebSocket data messages, as .NET's
// WebSocketStream is: every Write is one binary message, and reads ignore
// message boundaries (upstream sends one endless fragmented message). The
// library answers pings; a close from the peer is EOF.
//
// Reading runs in a goroutine that fills two buffers in turn, and read
// deadlines are kept here: a deadline that expires inside gorilla's reader
// leaves its connection unusable, while a Halibut connection interrupts a
// read with a deadline on purpose and then goes on (conn.watchForHangUp).
type wsStream struct {
	ws *websocket.Conn

	full   chan []byte   // buffers the reader filled, in order
	empty  chan []byte   // buffers the reader may fill
	ended  chan struct{} // closed when the reader stops; endErr says why
	endErr error

	closed    chan struct{}
	closeOnce sync.Once

	rmu      sync.Mutex // one Read at a time
	pending  []byte     // the unread part of buffer
	buffer   []byte
	deadline readDeadline

	wmu sync.Mutex // gorilla allows one writer at a time
}

func newWSStream(ws *websocket.Conn) *wsStream {
	w := &wsStream{ws: ws, full: make(chan []byte, 2), empty: make(chan []byte, 2), ended: make(chan struct{}), closed: make(chan struct{})}
	w.empty <- make([]byte, webSocketBufferSize)
	w.empty <- make([]byte, webSocketBufferSize)
	go w.readLoop()
	return w
}

// readLoop reads data messages into free buffers until the connection
// ends. Two buffers exist, so sending to full never blocks.
func (w *wsStream) readLoop() {
	var err error
	defer func() {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			err = io.EOF // the peer closed or went away: end of stream, as .NET reads it
		}
		w.endErr = err
		close(w.ended)
	}()
	for {
		var r io.Reader
		if _, r, err = w.ws.NextReader(); err != nil {
			return
		}
		for {
			var b []byte
			select {
			case b = <-w.empty:
			case <-w.closed:
				err = net.ErrClosed
				return
			}
			n, rerr := r.Read(b[:cap(b)])
			if n > 0 {
				w.full <- b[:n]
			} else {
				w.empty <- b
			}
			if rerr == io.EOF {
				break // on to the next message
			}
			if rerr != nil {
				err = rerr
				return
			}
		}
	}
}

func (w *wsStream) Read(p []byte) (int, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	for len(w.pending) == 0 {
		if w.buffer != nil {
			w.empty <- w.buffer // never blocks: there are two buffers
			w.buffer = nil
		}
		select {
		case b := <-w.full:
			w.buffer, w.pending = b, b
			continue
		default:
		}
		select {
		case b := <-w.full:
			w.buffer, w.pending = b, b
		case <-w.ended:
			select {
			case b := <-w.full: // sent just before the end
				w.buffer, w.pending = b, b
				continue
			default:
			}
			return 0, w.endErr
		case <-w.deadline.passed():
			return 0, os.ErrDeadlineExceeded
		case <-w.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

func (w *wsStream) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close says goodbye with a close frame (briefly, best effort) and closes
// the connection.
func (w *wsStream) Close() error {
	err := net.ErrClosed
	w.closeOnce.Do(func() {
		close(w.closed)
		_ = w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		err = w.ws.Close()
	})
	return err
}

func (w *wsStream) LocalAddr() net.Addr  { return w.ws.LocalAddr() }
func (w *wsStream) RemoteAddr() net.Addr { return w.ws.RemoteAddr() }

func (w *wsStream) SetDeadline(t time.Time) error {
	w.deadline.set(t)
	return w.ws.SetWriteDeadline(t)
}

func (w *wsStream) SetReadDeadline(t time.Time) error {
	w.deadline.set(t)
	return nil
}

func (w *wsStream) SetWriteDeadline(t time.Time) error { return w.ws.SetWriteDeadline(t) }

// readDeadline is a read deadline as a channel that is closed when it
// passes; setting a new one wakes no reader unless it has already passed.
type readDeadline struct {
	mu    sync.Mutex
	gen   uint64 // which set a timer belongs to
	ch    chan struct{}
	timer *time.Timer
}

func (d *readDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.ch == nil || isClosed(d.ch) {
		d.ch = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.ch)
		return
	}
	gen, ch := d.gen, d.ch
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(ch)
		}
	})
}

// passed is closed once the deadline has passed.
func (d *readDeadline) passed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// dialHalibutWebSocket connects to a wss:// polling endpoint: TLS with the
// client certificate (the server's certificate is pinned by thumbprint),
// the WebSocket upgrade with sub-protocol Octopus, then the "MX" text
// preamble. It returns a connection ready for the identity line.
func dialHalibutWebSocket(ctx context.Context, u *url.URL, expectedThumbprints []string, cert *tls.Certificate, proxy ProxyFunc, lim Limits) (*conn, error) {
	dialer := websocket.Dialer{
		// TLS is made here, not by gorilla: the thumbprint pinning and the
		// errors that name a certificate problem are the same as for TCP.
		NetDialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialTLS(ctx, addr, clientTLSConfig(cert, u.Hostname(), expectedThumbprints, nil), cert, proxy, lim)
		},
		Subprotocols:     []string{webSocketSubprotocol},
		HandshakeTimeout: lim.SendTimeout,
		ReadBufferSize:   webSocketBufferSize,
		WriteBufferSize:  webSocketBufferSize,
	}
	header := http.Header{"X-Octopus-RequestId": {NewGuid().String()}}
	ws, resp, err := dialer.DialContext(ctx, u.String(), header)
	if err != nil {
		var uc *UnexpectedCertificateError
		var pe *PeerCertificateError
		switch {
		case errors.As(err, &uc), errors.As(err, &pe), errors.Is(err, context.Canceled):
			return nil, err
		case errors.Is(err, websocket.ErrBadHandshake) && resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
			return nil, fmt.Errorf("websocket upgrade at %s refused: %s", u.Redacted(), resp.Status)
		case errors.Is(err, websocket.ErrBadHandshake):
			return nil, protocolErrorf("websocket upgrade at %s was answered without a valid upgrade (%v)", u.Redacted(), err)
		}
		return nil, fmt.Errorf("websocket upgrade at %s: %w", u.Redacted(), err)
	}
	ws.SetWriteDeadline(time.Now().Add(lim.SendTimeout))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(webSocketPreamble)); err != nil {
		ws.Close()
		return nil, err
	}
	ws.SetWriteDeadline(time.Time{})
	return newConn(newWSStream(ws), lim), nil
}

// WebSocketHandler serves polling Tentacles that connect over WebSocket at
// any path it is mounted on. The http.Server must use TLS with
// ClientAuth RequestClientCert (see WebSocketTLSConfig) and HTTP/1.1 only,
// and serve on WebSocketListener(ln) so that peers must identify
// themselves in time.
func (s *PollingServer) WebSocketHandler() http.Handler {
	upgrader := websocket.Upgrader{
		Subprotocols:    []string{webSocketSubprotocol},
		ReadBufferSize:  webSocketBufferSize,
		WriteBufferSize: webSocketBufferSize,
		// Peers are Tentacles, not browsers, and are admitted by their
		// certificate's thumbprint (checked before the upgrade), never by
		// cookies: the Origin header carries no authority here.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := s.logger().With("remote", r.RemoteAddr)
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "this endpoint accepts Octopus polling WebSocket connections only", http.StatusBadRequest)
			return
		}
		peer := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer = Thumbprint(r.TLS.PeerCertificates[0])
		}
		if peer == "" || !s.Trust.Trusted(peer) {
			msg := "refused a websocket connection from an untrusted certificate; trust it with --trust if this is your Tentacle"
			if peer == "" {
				msg = "refused a websocket connection: the client did not present a certificate"
			}
			s.refused(s.logger(), s.Limits, remoteAddrOf(r), msg, peer)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader has answered with the reason
		}
		if !readWebSocketPreamble(ws, s.Limits) {
			ws.Close()
			return
		}
		hc := newConn(newWSStream(ws), s.Limits)
		id, err := readIdentity(hc.r, s.Limits.MaxControlLineBytes)
		if err != nil {
			hc.Close()
			return
		}
		markIdentified(ws.NetConn())
		// Lift the identification deadline from the connection under
		// gorilla's reader; wsStream keeps the read deadlines from now on.
		if err := ws.SetReadDeadline(time.Time{}); err != nil {
			hc.Close()
			return
		}
		s.wg.Add(1)
		defer s.wg.Done()
		s.serveSubscriber(hc, id, peer, log)
	})
}

// readWebSocketPreamble reads the client's first message, which must be the
// short text message MX.
func readWebSocketPreamble(ws *websocket.Conn, lim Limits) bool {
	ws.SetReadDeadline(time.Now().Add(lim.ReceiveTimeout))
	typ, r, err := ws.NextReader()
	if err != nil || typ != websocket.TextMessage {
		return false
	}
	pre, err := io.ReadAll(io.LimitReader(r, int64(lim.MaxPreambleBytes)+1))
	if err != nil || len(pre) > lim.MaxPreambleBytes || !strings.HasPrefix(string(pre), webSocketPreamble) {
		return false
	}
	// No deadline inside gorilla's reader from here: wsStream keeps them.
	return ws.SetReadDeadline(time.Time{}) == nil
}

// WebSocketListener wraps the listener an http.Server serving
// WebSocketHandler accepts on, so its connections get what the TCP polling
// port gives them: one deadline (Limits.IdentificationTimeout) from accept
// to identified peer, covering TLS, the HTTP upgrade, the preamble and the
// identity, and the caps on connections not yet identified, shared with
// Serve.
func (s *PollingServer) WebSocketListener(ln net.Listener) net.Listener {
	return &gatedListener{Listener: ln, a: &s.acceptor, lim: s.Limits, log: s.logger()}
}

// remoteAddrOf is the peer address of an HTTP request as a net.Addr.
func remoteAddrOf(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{}
}

// WebSocketTLSConfig is the TLS configuration an http.Server needs for
// WebSocketHandler: the server certificate, a requested (not verified)
// client certificate, HTTP/1.1 only.
func WebSocketTLSConfig(cert *tls.Certificate) *tls.Config {
	cfg := serverTLSConfig(cert)
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}
