package halibut

import (
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
)

// Thumbprint is the identity Halibut pins: SHA-1 over the leaf certificate's
// DER, 40 upper-case hex digits (reference/halibut-protocol.md §1.3).
func Thumbprint(cert *x509.Certificate) string {
	return thumbprintDER(cert.Raw)
}

// thumbprintDER is Thumbprint of a certificate's DER, for our own
// certificate whose parsed Leaf may be absent.
func thumbprintDER(der []byte) string {
	sum := sha1.Sum(der)
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

// PeerCertificateError is a TLS handshake that failed because Go could not
// parse a certificate: the peer's (Ours false), or, when the peer ended the
// handshake with an alert (Alert) and ours is one Go cannot parse, ours
// (Ours true, Cause from parsing our own).
//
// The usual cause is an Authority Key Identifier marked critical, which
// Halibut's certificate generator writes and .NET accepts, but RFC 5280
// forbids and Go's x509 parser refuses. crypto/tls parses every peer
// certificate before any callback can look at it, with no setting to relax
// that (Go 1.26: no GODEBUG, no raw-certificate hook), and the bytes cannot
// be rewritten in flight because the handshake transcript and the pinned
// thumbprint cover them. Accepting such a peer would take a fork of
// crypto/tls, which would stop this agent from receiving Go's TLS security
// fixes; instead the refusal names the cause and the fix on both sides.
type PeerCertificateError struct {
	Peer  string // "the TLS server at host:port", "the TLS client at host:port"
	Ours  bool
	Alert string // the alert the peer sent, when Ours
	Cause string // Go's x509 message
}

func (e *PeerCertificateError) Error() string {
	if e.Ours {
		return fmt.Sprintf("%s ended the TLS handshake with the alert %q, and this side's certificate is one Go's x509 parser refuses (%s), so a peer built with Go (this agent, tentacle remote) cannot read it.%s Generate a new certificate here (tentacle new-certificate) and have the peer trust its thumbprint", e.Peer, e.Alert, e.Cause, criticalExtensionHint(e.Cause))
	}
	return fmt.Sprintf("%s presented a certificate Go's TLS cannot parse, so the handshake failed before its thumbprint could be checked: %s.%s Give that peer a conforming certificate (a Tentacle: tentacle new-certificate) and trust its new thumbprint", e.Peer, e.Cause, criticalExtensionHint(e.Cause))
}

// criticalExtensionHint explains the x509 messages for extensions RFC 5280
// wants non-critical.
func criticalExtensionHint(cause string) string {
	if !strings.Contains(cause, "incorrectly marked critical") {
		return ""
	}
	return " The certificate marks an extension critical that RFC 5280 says must not be (Halibut's certificate generator does this for the Authority Key Identifier); .NET accepts it, Go refuses it and has no setting to allow it."
}

// Prefixes of the errors crypto/tls returns when x509.ParseCertificate
// refuses the peer's certificate (handshake_client.go, handshake_server.go);
// it has no typed error for them. Tests pin these against the real handshake.
const (
	tlsServerCertificateUnparsable = "tls: failed to parse certificate from server: "
	tlsClientCertificateUnparsable = "tls: failed to parse client certificate: "
)

// asPeerCertificateError recognises a handshake that failed on the peer's
// certificate (peer describes it), or a bad_certificate alert from the peer
// when our own certificate is one Go cannot parse.
func asPeerCertificateError(err error, peer string, own *tls.Certificate) (*PeerCertificateError, bool) {
	if err == nil {
		return nil, false
	}
	var pe *PeerCertificateError
	if errors.As(err, &pe) {
		return pe, true
	}
	msg := err.Error()
	for _, prefix := range []string{tlsServerCertificateUnparsable, tlsClientCertificateUnparsable} {
		if _, cause, ok := strings.Cut(msg, prefix); ok {
			return &PeerCertificateError{Peer: peer, Cause: cause}, true
		}
	}
	// crypto/tls answers a certificate it cannot parse with decode_error
	// (other stacks may say bad_certificate); the side that receives the
	// alert learns nothing more, so it looks at its own certificate.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && own != nil && len(own.Certificate) > 0 {
		if alert := op.Err.Error(); alert == "tls: error decoding message" || alert == "tls: bad certificate" {
			if _, perr := x509.ParseCertificate(own.Certificate[0]); perr != nil {
				return &PeerCertificateError{Peer: peer, Ours: true, Alert: strings.TrimPrefix(alert, "tls: "), Cause: perr.Error()}, true
			}
		}
	}
	return nil, false
}

// ownCertificateNote is a clause for errors where a peer closed on us
// without saying why: if our certificate is one Go cannot parse, a Go peer
// may have refused it.
func ownCertificateNote(own *tls.Certificate) string {
	if own == nil || len(own.Certificate) == 0 {
		return ""
	}
	if _, err := x509.ParseCertificate(own.Certificate[0]); err != nil {
		return fmt.Sprintf(", or, if it is built with Go (tentacle), it cannot parse that certificate (%s)", err)
	}
	return ""
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
