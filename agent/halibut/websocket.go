package halibut

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// WebSocket polling (reference/halibut-protocol.md §8): the same polling
// conversation, carried in WebSocket frames over TLS on port 443, for
// networks that only let HTTPS out. Upstream supports it only in its
// Windows build; ours works everywhere.

// webSocketSubprotocol is the Sec-WebSocket-Protocol both sides name.
const webSocketSubprotocol = "Octopus"

// webSocketGUID is RFC 6455's constant for Sec-WebSocket-Accept.
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes (RFC 6455 §5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// maxWebSocketControlPayload is RFC 6455's bound on control frames.
const maxWebSocketControlPayload = 125

// wsConn is a byte stream over WebSocket data frames, as .NET's
// WebSocketStream is: every Write is one binary frame, and reads ignore
// message boundaries. Pings are answered; a close frame is EOF.
type wsConn struct {
	net.Conn
	br     *bufio.Reader
	client bool // a client masks what it sends (RFC 6455 §5.3)

	rmu       sync.Mutex
	remaining uint64
	mask      [4]byte
	masked    bool
	maskPos   int

	wmu sync.Mutex
}

func (w *wsConn) Read(p []byte) (int, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	for w.remaining == 0 {
		op, length, err := w.nextFrameHeader()
		if err != nil {
			return 0, err
		}
		switch op {
		case wsContinuation, wsBinary, wsText:
			w.remaining = length
		case wsPing, wsPong, wsClose:
			if length > maxWebSocketControlPayload {
				return 0, protocolErrorf("websocket control frame of %d bytes", length)
			}
			payload := make([]byte, length)
			if err := w.readPayload(payload); err != nil {
				return 0, err
			}
			switch op {
			case wsPing:
				if err := w.writeFrame(wsPong, payload); err != nil {
					return 0, err
				}
			case wsClose:
				_ = w.writeFrame(wsClose, payload) // answer the close handshake
				return 0, io.EOF
			}
		default:
			return 0, protocolErrorf("unknown websocket opcode %#x", op)
		}
	}
	if uint64(len(p)) > w.remaining {
		p = p[:w.remaining]
	}
	n, err := w.br.Read(p)
	w.unmask(p[:n])
	w.remaining -= uint64(n)
	return n, err
}

// nextFrameHeader reads a frame header and prepares unmasking.
func (w *wsConn) nextFrameHeader() (op byte, length uint64, err error) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, 0, err
	}
	if h[0]&0x70 != 0 {
		return 0, 0, protocolErrorf("websocket frame with reserved bits set (no extension was negotiated)")
	}
	op = h[0] & 0x0F
	length = uint64(h[1] & 0x7F)
	switch length {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, 0, err
		}
		length = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, 0, err
		}
		length = binary.BigEndian.Uint64(b[:])
		if length>>63 != 0 {
			return 0, 0, protocolErrorf("websocket frame length out of range")
		}
	}
	w.masked = h[1]&0x80 != 0
	// A server never masks; a client always does (RFC 6455 §5.1).
	if w.masked == w.client {
		return 0, 0, protocolErrorf("websocket frame masking is wrong for its direction")
	}
	if w.masked {
		if _, err := io.ReadFull(w.br, w.mask[:]); err != nil {
			return 0, 0, err
		}
		w.maskPos = 0
	}
	return op, length, nil
}

func (w *wsConn) readPayload(p []byte) error {
	if _, err := io.ReadFull(w.br, p); err != nil {
		return err
	}
	w.unmask(p)
	return nil
}

func (w *wsConn) unmask(p []byte) {
	if !w.masked {
		return
	}
	for i := range p {
		p[i] ^= w.mask[w.maskPos&3]
		w.maskPos++
	}
}

func (w *wsConn) Write(p []byte) (int, error) {
	if err := w.writeFrame(wsBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrame sends one final frame.
func (w *wsConn) writeFrame(op byte, payload []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	hdr := make([]byte, 0, 14)
	hdr = append(hdr, 0x80|op)
	maskBit := byte(0)
	if w.client {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, maskBit|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, maskBit|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, maskBit|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	body := payload
	if w.client {
		var key [4]byte
		if _, err := rand.Read(key[:]); err != nil {
			return err
		}
		hdr = append(hdr, key[:]...)
		body = make([]byte, len(payload))
		for i, b := range payload {
			body[i] = b ^ key[i&3]
		}
	}
	if _, err := w.Conn.Write(append(hdr, body...)); err != nil {
		return err
	}
	return nil
}

// readTextMessage reads one whole text message (the "MX" preamble).
func (w *wsConn) readTextMessage(max int) (string, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	op, length, err := w.nextFrameHeader()
	if err != nil {
		return "", err
	}
	if op != wsText || length > uint64(max) {
		return "", protocolErrorf("expected a short websocket text message, got opcode %#x of %d bytes", op, length)
	}
	b := make([]byte, length)
	if err := w.readPayload(b); err != nil {
		return "", err
	}
	return string(b), nil
}

func webSocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + webSocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// dialHalibutWebSocket connects to a wss:// polling endpoint: TLS with the
// client certificate (the server's certificate is pinned by thumbprint),
// the WebSocket upgrade with sub-protocol Octopus, then the "MX" text
// preamble. It returns a connection ready for the identity line.
func dialHalibutWebSocket(ctx context.Context, u *url.URL, expectedThumbprints []string, cert *tls.Certificate, proxy ProxyFunc, lim Limits) (*conn, error) {
	port := u.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	raw, err := dialTCP(ctx, addr, proxy, lim)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, clientTLSConfig(cert, u.Hostname(), expectedThumbprints, nil))
	tc.SetDeadline(time.Now().Add(lim.SendTimeout))
	fail := func(err error) (*conn, error) { raw.Close(); return nil, err }
	if err := tc.HandshakeContext(ctx); err != nil {
		if uc, ok := asUnexpectedCertificate(err); ok {
			return fail(uc)
		}
		if pe, ok := asPeerCertificateError(err, "the TLS server at "+addr, cert); ok {
			return fail(pe)
		}
		return fail(fmt.Errorf("TLS handshake with %s: %w", addr, err))
	}
	var keyBytes [16]byte
	rand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + webSocketSubprotocol + "\r\n" +
		"X-Octopus-RequestId: " + NewGuid().String() + "\r\n\r\n"
	if _, err := io.WriteString(tc, req); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fail(fmt.Errorf("websocket upgrade at %s: %w", u.Redacted(), err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fail(fmt.Errorf("websocket upgrade at %s refused: %s", u.Redacted(), resp.Status))
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != webSocketAccept(key) {
		return fail(protocolErrorf("websocket upgrade at %s answered with a wrong Sec-WebSocket-Accept", u.Redacted()))
	}
	tc.SetDeadline(time.Time{})
	ws := &wsConn{Conn: tc, br: br, client: true}
	if err := ws.writeFrame(wsText, []byte("MX")); err != nil {
		return fail(err)
	}
	return newConn(ws, lim), nil
}

// WebSocketHandler serves polling Tentacles that connect over WebSocket at
// any path it is mounted on. The http.Server must use TLS with
// ClientAuth RequestClientCert (see WebSocketTLSConfig) and HTTP/1.1 only,
// and serve on WebSocketListener(ln) so that peers must identify
// themselves in time.
func (s *PollingServer) WebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := s.logger().With("remote", r.RemoteAddr)
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Key") == "" {
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
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "websocket upgrade needs HTTP/1.1", http.StatusHTTPVersionNotSupported)
			return
		}
		c, brw, err := hj.Hijack()
		if err != nil {
			return
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + webSocketAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n" +
			"Sec-WebSocket-Protocol: " + webSocketSubprotocol + "\r\n\r\n"
		if _, err := io.WriteString(c, resp); err != nil {
			c.Close()
			return
		}
		ws := &wsConn{Conn: c, br: brw.Reader}
		c.SetReadDeadline(time.Now().Add(s.Limits.ReceiveTimeout))
		pre, err := ws.readTextMessage(s.Limits.MaxPreambleBytes)
		if err != nil || !strings.HasPrefix(pre, "MX") {
			c.Close()
			return
		}
		hc := newConn(ws, s.Limits)
		id, err := readIdentity(hc.r, s.Limits.MaxControlLineBytes)
		if err != nil {
			c.Close()
			return
		}
		markIdentified(c)
		s.wg.Add(1)
		defer s.wg.Done()
		s.serveSubscriber(hc, id, peer, log)
	})
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
