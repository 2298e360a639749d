package octopus

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
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

// Handshake checks that a polling endpoint answers (https://host:port/ or
// wss://host/path) by POSTing to its /handshake, as upstream does before
// registering a polling Tentacle. HTTP 200, or 400 (the server wanted a
// client certificate), counts as open. It returns the thumbprint of the TLS
// certificate the endpoint presented: for WebSocket polling, the one to
// trust.
func Handshake(ctx context.Context, address string, clientCert *tls.Certificate, proxy func(*http.Request) (*url.URL, error)) (string, error) {
	u, err := url.Parse(address)
	if err != nil || u.Host == "" {
		return "", userErrorf("%q is not a polling address such as https://octopus.example:10943/.", address)
	}
	target := *u
	target.Scheme = "https"
	if u.Scheme != "wss" {
		target.Path = "/handshake"
	}
	var mu sync.Mutex
	var thumb string
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = proxy
	tr.TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true, // identity is the thumbprint, checked by the caller
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if clientCert == nil {
				return &tls.Certificate{}, nil
			}
			return clientCert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				sum := sha1.Sum(cs.PeerCertificates[0].Raw)
				mu.Lock()
				thumb = strings.ToUpper(hex.EncodeToString(sum[:]))
				mu.Unlock()
			}
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
				return "", ctx.Err()
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
			return thumb, nil
		}
		lastErr = fmt.Errorf("it answered %s", resp.Status)
	}
	return "", userErrorf("The Octopus Server's polling endpoint %s cannot be reached (%v). Check --server-comms-address or --server-web-socket, the firewall, and the polling proxy.", u.Host, lastErr)
}
