package octopus

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// HandshakeAttempts and HandshakeBackoff bound the polling port check.
var (
	HandshakeAttempts = 5
	HandshakeBackoff  = 200 * time.Millisecond
)

// HandshakeOptions are what the polling port check presents and trusts.
type HandshakeOptions struct {
	// ClientCert is presented when the endpoint asks for one (nil: none).
	ClientCert *tls.Certificate
	// Proxy is the polling proxy (nil: direct).
	Proxy func(*http.Request) (*url.URL, error)
	// Roots validate the endpoint's certificate; nil means the system's
	// (which honour SSL_CERT_FILE and SSL_CERT_DIR).
	Roots *x509.CertPool
}

// HandshakeResult is what the check saw of the endpoint's certificate.
type HandshakeResult struct {
	// Thumbprint is the SHA-1 thumbprint of the certificate presented: for
	// WebSocket polling, the one the Tentacle pins.
	Thumbprint string
	// ValidationErr says why the certificate failed standard validation
	// (chain of trust to the roots, host name, dates); nil when it passed.
	ValidationErr error
}

// Handshake checks that a polling endpoint answers (https://host:port/ or
// wss://host/path) by POSTing to its /handshake, as upstream does before
// registering a polling Tentacle. HTTP 200, or 400 (the server wanted a
// client certificate), counts as open. The TLS connection accepts any
// certificate, since the point is to learn which one is there; the result
// says whether it would also have passed standard validation, so a caller
// pinning a WebSocket endpoint's thumbprint can refuse or ask first.
func Handshake(ctx context.Context, address string, opts HandshakeOptions) (HandshakeResult, error) {
	u, err := url.Parse(address)
	if err != nil || u.Host == "" {
		return HandshakeResult{}, userErrorf("%q is not a polling address such as https://octopus.example:10943/.", address)
	}
	target := *u
	target.Scheme = "https"
	if u.Scheme != "wss" {
		target.Path = "/handshake"
	}
	var mu sync.Mutex
	var seen HandshakeResult
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = opts.Proxy
	tr.TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true, // learned here; validated below, pinned by the caller
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if opts.ClientCert == nil {
				return &tls.Certificate{}, nil
			}
			return opts.ClientCert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			r := HandshakeResult{Thumbprint: thumbprintOf(cs.PeerCertificates[0].Raw)}
			r.ValidationErr = validateServerCertificate(cs, u.Hostname(), opts.Roots)
			mu.Lock()
			seen = r
			mu.Unlock()
			return nil
		},
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var lastErr error
	delay := HandshakeBackoff
	for attempt := 0; attempt < HandshakeAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return HandshakeResult{}, ctx.Err()
			case <-time.After(delay):
			}
			delay *= 2
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), nil)
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusBadRequest {
			mu.Lock()
			defer mu.Unlock()
			return seen, nil
		}
		lastErr = fmt.Errorf("it answered %s", resp.Status)
	}
	return HandshakeResult{}, userErrorf("The Octopus Server's polling endpoint %s cannot be reached (%v). Check --server-comms-address or --server-web-socket, the firewall, and the polling proxy.", u.Host, lastErr)
}

// validateServerCertificate is the check a browser would make: a chain to
// the roots through the intermediates the server sent, valid today, for
// host (a name or an IP address).
func validateServerCertificate(cs tls.ConnectionState, host string, roots *x509.CertPool) error {
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
	return err
}

func thumbprintOf(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}
