package halibut

import (
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Thumbprint is the identity Halibut pins: SHA-1 over the leaf certificate's
// DER, 40 upper-case hex digits (reference/halibut-protocol.md §1.3).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// TrustStore is the set of peer thumbprints a listener accepts, compared
// case-insensitively as upstream's DefaultTrustProvider does. It is safe for
// concurrent use and can be replaced while connections are being served, so
// a configuration reload needs no restart.
type TrustStore struct {
	mu  sync.RWMutex
	set map[string]struct{}
}

// NewTrustStore returns a store trusting thumbprints.
func NewTrustStore(thumbprints ...string) *TrustStore {
	t := &TrustStore{}
	t.Replace(thumbprints)
	return t
}

// Trusted reports whether thumbprint is trusted.
func (t *TrustStore) Trusted(thumbprint string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.set[strings.ToUpper(thumbprint)]
	return ok
}

// Replace sets the whole trusted list.
func (t *TrustStore) Replace(thumbprints []string) {
	set := make(map[string]struct{}, len(thumbprints))
	for _, tp := range thumbprints {
		if tp = strings.TrimSpace(tp); tp != "" {
			set[strings.ToUpper(tp)] = struct{}{}
		}
	}
	t.mu.Lock()
	t.set = set
	t.mu.Unlock()
}

// Add trusts one more thumbprint.
func (t *TrustStore) Add(thumbprint string) {
	t.mu.Lock()
	if t.set == nil {
		t.set = map[string]struct{}{}
	}
	t.set[strings.ToUpper(strings.TrimSpace(thumbprint))] = struct{}{}
	t.mu.Unlock()
}

// List returns the trusted thumbprints, sorted.
func (t *TrustStore) List() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.set))
	for tp := range t.set {
		out = append(out, tp)
	}
	sort.Strings(out)
	return out
}

// UnexpectedCertificateError is a dialed peer presenting a certificate whose
// thumbprint is not the one expected. It is never retried: the peer is not
// who we meant to talk to.
type UnexpectedCertificateError struct {
	Expected, Presented string
}

func (e *UnexpectedCertificateError) Error() string {
	if e.Presented == "" {
		return fmt.Sprintf("the remote host presented no certificate; expected thumbprint %s", e.Expected)
	}
	return fmt.Sprintf("the remote host presented a certificate with thumbprint %s, but thumbprint %s was expected", e.Presented, e.Expected)
}

// serverTLSConfig is the accepting side: it always asks for a client
// certificate but accepts any (or none) during the handshake, because the
// decision is taken after the preamble, as upstream: a browser without a
// certificate gets the friendly page, an untrusted Halibut peer is closed.
func serverTLSConfig(cert *tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   tls.RequestClientCert,
	}
}

// clientTLSConfig is the dialing side. It always presents cert, whatever CA
// names the server's CertificateRequest lists (Go would otherwise send none
// for a self-signed certificate), and accepts the server only by thumbprint:
// chains, names and dates mean nothing in Halibut.
//
// More than one thumbprint may be expected: a server's current certificate
// and its next one, trusted ahead of a rotation.
func clientTLSConfig(cert *tls.Certificate, serverName string, expected []string, sessions tls.ClientSessionCache) *tls.Config {
	want := strings.Join(expected, " or ")
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		ClientSessionCache: sessions,
		InsecureSkipVerify: true, // replaced by the thumbprint check below
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &UnexpectedCertificateError{Expected: want}
			}
			got := Thumbprint(cs.PeerCertificates[0])
			for _, e := range expected {
				if strings.EqualFold(got, e) {
					return nil
				}
			}
			return &UnexpectedCertificateError{Expected: want, Presented: got}
		},
	}
}

// peerThumbprint is the thumbprint of the certificate a TLS peer presented,
// or "" if it presented none.
func peerThumbprint(c *tls.Conn) string {
	cs := c.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return Thumbprint(cs.PeerCertificates[0])
}

// asUnexpectedCertificate finds an UnexpectedCertificateError inside a TLS
// handshake error (crypto/tls wraps what VerifyConnection returns).
func asUnexpectedCertificate(err error) (*UnexpectedCertificateError, bool) {
	var uc *UnexpectedCertificateError
	ok := errors.As(err, &uc)
	return uc, ok
}
