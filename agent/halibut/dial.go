package halibut

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ProxyFunc says which HTTP proxy, if any, to use to reach addr (host:port).
// nil, nil means connect directly. The agent builds one from its proxy
// settings or from HTTPS_PROXY/NO_PROXY; this package stays out of policy.
type ProxyFunc func(addr string) (*url.URL, error)

// dialTCP connects to addr, through an HTTP CONNECT proxy when proxy says so
// (reference/halibut-protocol.md §1.1), and applies keep-alive and Nagle
// settings.
func dialTCP(ctx context.Context, addr string, proxy ProxyFunc, lim Limits) (net.Conn, error) {
	var proxyURL *url.URL
	if proxy != nil {
		u, err := proxy(addr)
		if err != nil {
			return nil, fmt.Errorf("choosing a proxy for %s: %w", addr, err)
		}
		proxyURL = u
	}
	d := net.Dialer{Timeout: lim.ConnectTimeout, KeepAliveConfig: lim.TCPKeepAlive}
	target := addr
	if proxyURL != nil {
		target = proxyURL.Host
		if proxyURL.Port() == "" {
			target = net.JoinHostPort(proxyURL.Hostname(), "80")
		}
	}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		if proxyURL != nil {
			return nil, fmt.Errorf("connecting to proxy %s: %w", proxyURL.Redacted(), err)
		}
		return nil, err
	}
	c = configureTCP(c, lim)
	if proxyURL == nil {
		return c, nil
	}
	if err := connectThroughProxy(ctx, c, addr, proxyURL, lim); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// connectThroughProxy asks an HTTP proxy for a tunnel to addr.
func connectThroughProxy(ctx context.Context, c net.Conn, addr string, proxyURL *url.URL, lim Limits) error {
	deadline := time.Now().Add(lim.ConnectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	defer c.SetDeadline(time.Time{})
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if u := proxyURL.User; u != nil {
		pw, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	req += "\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return fmt.Errorf("proxy %s: %w", proxyURL.Redacted(), err)
	}
	// The peer sends nothing until our TLS ClientHello, so reading the
	// response through a bufio.Reader cannot swallow tunnel bytes.
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		return fmt.Errorf("proxy %s did not answer CONNECT: %w", proxyURL.Redacted(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusProxyAuthRequired {
			return fmt.Errorf("proxy %s requires authentication (407): set the proxy user name and password", proxyURL.Redacted())
		}
		return fmt.Errorf("proxy %s refused the tunnel to %s: %s", proxyURL.Redacted(), addr, resp.Status)
	}
	return nil
}

// dialHalibut connects to a Halibut peer and completes TLS and the preamble:
// it returns a connection ready for the identity line.
func dialHalibut(ctx context.Context, addr, serverName string, expectedThumbprints []string, cert *tls.Certificate, proxy ProxyFunc, tickets *TicketFiles, lim Limits) (*conn, error) {
	hsCtx, cancel := context.WithTimeout(ctx, lim.SendTimeout)
	defer cancel()
	tc, err := dialTLS(hsCtx, addr, clientTLSConfig(cert, serverName, expectedThumbprints, tickets.cache(addr, expectedThumbprints, cert)), cert, proxy, lim)
	if err != nil {
		return nil, err
	}
	c := newConn(tc, lim)
	if err := c.sendText(preamble, lim.SendTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// errClosedInHandshake: the peer accepted the connection and closed it
// before the TLS handshake finished, without a TLS alert. A live server
// that is shedding load does this (a polling endpoint at its cap of
// unidentified connections, admission.go), so a poller retries it as soon
// as a server it has reached, not with the growing back-off of a server
// it cannot reach.
var errClosedInHandshake = errors.New("closed by the server during the TLS handshake")

// dialTLS connects (through the proxy) and completes the TLS handshake
// within ctx; a certificate problem comes back as the error that names it
// (UnexpectedCertificateError, PeerCertificateError).
func dialTLS(ctx context.Context, addr string, cfg *tls.Config, cert *tls.Certificate, proxy ProxyFunc, lim Limits) (*tls.Conn, error) {
	raw, err := dialTCP(ctx, addr, proxy, lim)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		if uc, ok := asUnexpectedCertificate(err); ok {
			return nil, uc
		}
		if pe, ok := asPeerCertificateError(err, "the TLS server at "+addr, cert); ok {
			return nil, pe
		}
		if ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
			return nil, fmt.Errorf("TLS handshake with %s: %w (%w)", addr, errClosedInHandshake, err)
		}
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// EnvironmentProxy chooses a proxy from HTTPS_PROXY and NO_PROXY (and their
// lower-case forms), as curl and Go programs do; loopback is never proxied.
// Upstream Tentacle ignores these variables on Linux; we honour them when no
// proxy is configured.
func EnvironmentProxy(addr string) (*url.URL, error) {
	return http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: "https", Host: addr}})
}

// FixedProxy always uses proxyURL (with its user info as credentials).
func FixedProxy(proxyURL *url.URL) ProxyFunc {
	return func(string) (*url.URL, error) { return proxyURL, nil }
}

// Dial opens a TCP connection to addr (host:port), through an HTTP CONNECT
// proxy when proxy says so, bounded by lim.ConnectTimeout and ctx: the
// reachability check `tentacle doctor` makes, with the proxy errors the
// agent would see.
func Dial(ctx context.Context, addr string, proxy ProxyFunc, lim Limits) (net.Conn, error) {
	return dialTCP(ctx, addr, proxy, lim)
}
