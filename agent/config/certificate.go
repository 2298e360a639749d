package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// CertificateSubject is the subject and issuer of every certificate upstream
// generates; the server shows it and some tooling matches on it.
const CertificateSubject = "Octopus Tentacle"

// MinRSAKeyBits is the key size below which an imported certificate is
// accepted with a warning, as upstream.
const MinRSAKeyBits = 2048

// Certificate is an instance's identity: a certificate and its private key.
// Peers trust it by SHA-1 thumbprint only.
type Certificate struct {
	Leaf *x509.Certificate
	Key  crypto.Signer
}

// GenerateCertificate makes a certificate with upstream's properties:
// self-signed RSA-2048, CN=Octopus Tentacle, SHA256withRSA, valid from
// yesterday for 100 years, random 63-bit serial.
func GenerateCertificate() (*Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating an RSA key: %w", err)
	}
	return selfSigned(key, x509.SHA256WithRSA, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment)
}

// GenerateOperatorCertificate makes the identity `tentacle remote` presents
// to Tentacles: as GenerateCertificate, but ECDSA P-256. Tentacles pin the
// thumbprint, not the key type, and the signature every TLS handshake asks
// of the client costs ~0.05 ms with P-256 where RSA-2048 takes ~1.2 ms.
func GenerateOperatorCertificate() (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating an ECDSA key: %w", err)
	}
	return selfSigned(key, x509.ECDSAWithSHA256, x509.KeyUsageDigitalSignature)
}

func selfSigned(key crypto.Signer, alg x509.SignatureAlgorithm, usage x509.KeyUsage) (*Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: CertificateSubject},
		Issuer:             pkix.Name{CommonName: CertificateSubject},
		NotBefore:          now.AddDate(0, 0, -1),
		NotAfter:           now.AddDate(100, 0, 0),
		SignatureAlgorithm: alg,
		KeyUsage:           usage,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating the certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Certificate{Leaf: leaf, Key: key}, nil
}

// Thumbprint is the SHA-1 of the certificate's DER in upper-case hex: the
// identity Octopus pins.
func (c *Certificate) Thumbprint() string { return Thumbprint(c.Leaf) }

// Thumbprint of any certificate.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// TLS returns the certificate for crypto/tls.
func (c *Certificate) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Leaf.Raw}, PrivateKey: c.Key, Leaf: c.Leaf}
}

// KeyBits is the RSA key size, or 0 for another key type.
func (c *Certificate) KeyBits() int {
	if k, ok := c.Key.Public().(*rsa.PublicKey); ok {
		return k.N.BitLen()
	}
	return 0
}

// PKCS12 exports certificate and key as a PFX protected by password (which
// may be empty). It uses TripleDES/SHA-1, the scheme .NET itself writes, so
// that upstream Tentacle and older Windows versions can import it.
func (c *Certificate) PKCS12(password string) ([]byte, error) {
	return pkcs12.LegacyDES.Encode(c.Key, c.Leaf, nil, password)
}

// PKCS12Unprotected is a PFX without encryption or MAC, for a file whose
// protection is its permissions (0600). An empty password would protect it
// no better, and its key derivation costs ~2 ms every time the file is read.
// ParsePKCS12 with an empty password reads it; so does OpenSSL.
func (c *Certificate) PKCS12Unprotected() ([]byte, error) {
	return pkcs12.Passwordless.Encode(c.Key, c.Leaf, nil, "")
}

// Errors from ParsePKCS12 a user can cause.
var (
	ErrPFXPassword  = errors.New("the PFX password is wrong")
	ErrPFXCorrupt   = errors.New("the data is not a valid PFX (PKCS#12) file")
	ErrPFXNoKey     = errors.New("the PFX does not include the certificate's private key")
	ErrPFXKeyFormat = errors.New("the PFX private key is of a type that cannot sign (expected RSA or ECDSA)")
	// ErrPFXCertificate wraps the reason the certificate inside a PFX that
	// decrypted correctly cannot be used.
	ErrPFXCertificate = errors.New("the certificate in the PFX cannot be read")
)

// ParsePKCS12 reads a PFX with its private key.
func ParsePKCS12(data []byte, password string) (*Certificate, error) {
	key, leaf, _, err := pkcs12.DecodeChain(data, password)
	if err != nil && strings.HasPrefix(err.Error(), "x509: ") {
		// The PFX decrypted, but Go's x509 parser refused a certificate in
		// it (DecodeChain parses every one). Read the bags again without it.
		key, leaf, err = decodePKCS12KeepingDER(data, password, err)
		if err != nil {
			return nil, err
		}
	}
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, ErrPFXPassword
		}
		if strings.Contains(err.Error(), "private key missing") {
			return nil, ErrPFXNoKey
		}
		return nil, fmt.Errorf("%w (%v)", ErrPFXCorrupt, err)
	}
	if key == nil {
		return nil, ErrPFXNoKey
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, ErrPFXKeyFormat
	}
	return &Certificate{Leaf: leaf, Key: signer}, nil
}

// Certificate loads the instance certificate from the configuration: base64
// PKCS#12 without a password, encrypted with the machine key, as upstream
// stores it. It returns nil and no error when there is none.
func (s *Settings) Certificate(mk MachineKey) (*Certificate, error) {
	enc, ok := s.Get(KeyCertificate)
	if !ok || s.Thumbprint() == "" {
		return nil, nil
	}
	plain, err := mk.Decrypt(enc)
	if err != nil {
		if errors.Is(err, ErrMachineKeyMismatch) {
			return nil, Userf("The certificate in %s was encrypted on another machine (or /etc/machine-id has changed) and cannot be read here. Import the original with `tentacle import-certificate --from-file <pfx>`, or generate a new one with `tentacle new-certificate` and re-register.", s.path)
		}
		return nil, Userf("The certificate in %s cannot be decrypted: %v.", s.path, err)
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(plain)))
	if err != nil {
		return nil, Userf("The certificate in %s is corrupt (not base64 after decryption). Generate a new one with `tentacle new-certificate` or import one.", s.path)
	}
	cert, err := ParsePKCS12(der, "")
	if err != nil {
		return nil, Userf("The certificate in %s is corrupt (%v). Generate a new one with `tentacle new-certificate` or import one.", s.path, err)
	}
	return cert, nil
}

// SetCertificate stores the certificate as upstream does and reports whether
// the configuration changed.
func (s *Settings) SetCertificate(c *Certificate, mk MachineKey) (bool, error) {
	if s.Thumbprint() == c.Thumbprint() {
		if _, ok := s.Get(KeyCertificate); ok {
			return false, nil
		}
	}
	pfx, err := c.PKCS12("")
	if err != nil {
		return false, err
	}
	enc, err := mk.Encrypt([]byte(base64.StdEncoding.EncodeToString(pfx)))
	if err != nil {
		return false, err
	}
	s.Set(KeyCertificate, enc)
	s.Set(KeyCertificateThumbprint, c.Thumbprint())
	return true, nil
}
