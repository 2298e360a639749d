package config

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"
)

// Go's x509 parser refuses a certificate that marks one of these extensions
// critical (RFC 5280 says a CA must not). .NET accepts it, and Halibut's
// certificate generator marks the Authority Key Identifier critical, so
// such certificates exist. A Tentacle pins the SHA-1 of the DER and never
// validates a chain: for its own identity the flag changes nothing.
var refusedCriticalExtensions = map[string]asn1.ObjectIdentifier{
	"x509: authority key identifier incorrectly marked critical": {2, 5, 29, 35},
	"x509: subject key identifier incorrectly marked critical":   {2, 5, 29, 14},
	"x509: authority info access incorrectly marked critical":    {1, 3, 6, 1, 5, 5, 7, 1, 1},
}

// ParseCertificateDER parses our own certificate. It is x509.ParseCertificate,
// except that a certificate refused only because of an extension marked
// critical that RFC 5280 wants non-critical (see refusedCriticalExtensions)
// is read too: the fields come from a copy with the flag cleared, while
// Raw, RawTBSCertificate and Extensions are the original's, so the
// thumbprint, the signature and what is served and exported are unchanged.
//
// Only for certificates we present: a peer's certificate is parsed by
// crypto/tls, which has no such leniency (see halibut.PeerCertificateError).
func ParseCertificateDER(der []byte) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err == nil {
		return cert, nil
	}
	firstErr := err
	relaxed := map[string]bool{}
	patched := der
	// Each pass clears one flag; a certificate may have more than one.
	for range len(refusedCriticalExtensions) {
		oid, ok := refusedCriticalExtensions[err.Error()]
		if !ok {
			return nil, firstErr
		}
		if patched, err = clearCriticalFlag(patched, oid); err != nil {
			return nil, firstErr
		}
		relaxed[oid.String()] = true
		if cert, err = x509.ParseCertificate(patched); err == nil {
			break
		}
	}
	if err != nil {
		return nil, firstErr
	}
	var outer struct {
		TBS    asn1.RawValue
		SigAlg asn1.RawValue
		Sig    asn1.RawValue
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, firstErr
	}
	cert.Raw = der
	cert.RawTBSCertificate = outer.TBS.FullBytes
	for i := range cert.Extensions {
		if relaxed[cert.Extensions[i].Id.String()] {
			cert.Extensions[i].Critical = true
		}
	}
	return cert, nil
}

// clearCriticalFlag re-encodes a certificate with extension oid marked
// non-critical. The result's signature no longer matches: it is only ever
// given to x509.ParseCertificate to read the fields.
func clearCriticalFlag(der []byte, oid asn1.ObjectIdentifier) ([]byte, error) {
	var outer struct {
		TBS    asn1.RawValue
		SigAlg asn1.RawValue
		Sig    asn1.RawValue
	}
	if rest, err := asn1.Unmarshal(der, &outer); err != nil || len(rest) != 0 {
		return nil, errors.New("not a DER certificate")
	}
	var tbs bytes.Buffer
	found := false
	for rest := outer.TBS.Bytes; len(rest) > 0; {
		var field asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &field); err != nil {
			return nil, err
		}
		if field.Class != asn1.ClassContextSpecific || field.Tag != 3 {
			tbs.Write(field.FullBytes)
			continue
		}
		var exts []pkix.Extension
		if rest, err := asn1.Unmarshal(field.Bytes, &exts); err != nil || len(rest) != 0 {
			return nil, errors.New("malformed extensions")
		}
		for i := range exts {
			if exts[i].Id.Equal(oid) && exts[i].Critical {
				exts[i].Critical = false
				found = true
			}
		}
		seq, err := asn1.Marshal(exts)
		if err != nil {
			return nil, err
		}
		wrapped, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 3, IsCompound: true, Bytes: seq})
		if err != nil {
			return nil, err
		}
		tbs.Write(wrapped)
	}
	if !found {
		return nil, errors.New("no such critical extension")
	}
	tbsDER, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: tbs.Bytes()})
	if err != nil {
		return nil, err
	}
	body := append(append(tbsDER, outer.SigAlg.FullBytes...), outer.Sig.FullBytes...)
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
}

// decodePKCS12KeepingDER reads a PFX whose certificate Go's x509 parser
// refused (parseErr). pkcs12.DecodeChain parses every certificate bag with
// x509.ParseCertificates and the library has no lower-level decoder, so the
// bags are read with pkcs12.ToPEM, which decrypts them and hands certificates
// over as raw DER. ToPEM is deprecated because it labels PKCS#1 and SEC 1
// keys "PRIVATE KEY"; that is handled below. It reads the common layout
// (two safe contents, a shrouded key: what Windows, .NET, OpenSSL and our
// own exports write); anything else fails with both reasons.
func decodePKCS12KeepingDER(data []byte, password string, parseErr error) (crypto.PrivateKey, *x509.Certificate, error) {
	blocks, err := pkcs12.ToPEM(data, password) //nolint:staticcheck // see above
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v (reading it without that check failed too: %v)", ErrPFXCertificate, parseErr, err)
	}
	type certBag struct {
		der   []byte
		keyID string
	}
	var certs []certBag
	var key crypto.PrivateKey
	keyID := ""
	for _, b := range blocks {
		switch b.Type {
		case "CERTIFICATE":
			certs = append(certs, certBag{b.Bytes, b.Headers["localKeyId"]})
		case "PRIVATE KEY":
			if key != nil {
				return nil, nil, fmt.Errorf("%w: it holds more than one private key", ErrPFXCertificate)
			}
			if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
				if key, err = x509.ParseECPrivateKey(b.Bytes); err != nil {
					return nil, nil, ErrPFXKeyFormat
				}
			}
			keyID = b.Headers["localKeyId"]
		}
	}
	if key == nil {
		return nil, nil, ErrPFXNoKey
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("%w: it holds no certificate", ErrPFXCertificate)
	}
	// The certificate that belongs to the key carries the same local key
	// id; without ids, the first one, as DecodeChain assumes.
	leafDER := certs[0].der
	for _, c := range certs {
		if keyID != "" && c.keyID == keyID {
			leafDER = c.der
			break
		}
	}
	leaf, err := ParseCertificateDER(leafDER)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrPFXCertificate, err)
	}
	if !publicKeyMatches(key, leaf.PublicKey) {
		return nil, nil, fmt.Errorf("%w: its private key does not belong to its certificate", ErrPFXCertificate)
	}
	return key, leaf, nil
}

func publicKeyMatches(key crypto.PrivateKey, pub crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	case *ecdsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	}
	return false
}

// PeerParseError is why Go's own x509 parser refuses this certificate, or
// nil. Octopus Server and upstream Tentacle (.NET) accept such a certificate
// as this agent's identity, but Go peers (`tentacle remote`, `remote serve`,
// another agent of ours) refuse it in the TLS handshake.
func (c *Certificate) PeerParseError() error {
	_, err := x509.ParseCertificate(c.Leaf.Raw)
	return err
}
