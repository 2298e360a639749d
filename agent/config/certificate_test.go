package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGeneratedCertificateHasUpstreamProperties(t *testing.T) {
	c, err := GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	l := c.Leaf
	if l.Subject.CommonName != "Octopus Tentacle" || l.Issuer.CommonName != "Octopus Tentacle" {
		t.Errorf("subject %v issuer %v", l.Subject, l.Issuer)
	}
	if k, ok := c.Key.Public().(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("key %T", c.Key.Public())
	}
	if l.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("signature %v", l.SignatureAlgorithm)
	}
	if l.SerialNumber.Sign() <= 0 || l.SerialNumber.Cmp(new(big.Int).Lsh(big.NewInt(1), 63)) >= 0 {
		t.Errorf("serial %v is not a positive 63-bit number", l.SerialNumber)
	}
	if d := time.Until(l.NotBefore); d > -23*time.Hour || d < -25*time.Hour {
		t.Errorf("NotBefore %v, want yesterday", l.NotBefore)
	}
	if y := l.NotAfter.Year() - time.Now().Year(); y != 100 {
		t.Errorf("valid for %d years", y)
	}
	sum := sha1.Sum(l.Raw)
	if c.Thumbprint() != strings.ToUpper(hex.EncodeToString(sum[:])) || len(c.Thumbprint()) != 40 {
		t.Errorf("thumbprint %s", c.Thumbprint())
	}
	if err := l.CheckSignature(l.SignatureAlgorithm, l.RawTBSCertificate, l.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
}

func TestPKCS12RoundTripAndErrors(t *testing.T) {
	c, _ := GenerateCertificate()
	pfx, err := c.PKCS12("p@ss")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePKCS12(pfx, "p@ss")
	if err != nil || back.Thumbprint() != c.Thumbprint() {
		t.Fatalf("%v %v", back, err)
	}
	if _, err := ParsePKCS12(pfx, "wrong"); !errors.Is(err, ErrPFXPassword) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := ParsePKCS12([]byte("not a pfx"), ""); !errors.Is(err, ErrPFXCorrupt) {
		t.Errorf("corrupt: %v", err)
	}
	if _, err := ParsePKCS12(pfx[:len(pfx)/2], "p@ss"); err == nil {
		t.Error("truncated PFX accepted")
	}
	nokey := readFixture(t, "nokey.pfx")
	if _, err := ParsePKCS12(nokey, "secret"); !errors.Is(err, ErrPFXNoKey) {
		t.Errorf("no key: %v", err)
	}
	// The OpenSSL-made fixture (TripleDES, SHA-1 MAC, as .NET writes) imports.
	fx, err := ParsePKCS12(readFixture(t, "tentacle.pfx"), "Secret123")
	if err != nil || fx.Thumbprint() != strings.TrimSpace(string(readFixture(t, "thumbprint"))) {
		t.Errorf("fixture: %v %v", fx, err)
	}
}

// OpenSSL, an independent implementation, must read what we export, both
// the password-protected PFX and the password-less one stored in the config.
func TestOpenSSLReadsOurPKCS12(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: cannot cross-check our PKCS#12 with an independent reader")
	}
	c, _ := GenerateCertificate()
	for _, pw := range []string{"Secret123", ""} {
		pfx, err := c.PKCS12(pw)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "c.pfx")
		os.WriteFile(path, pfx, 0o600)
		out, err := exec.Command(openssl, "pkcs12", "-in", path, "-passin", "pass:"+pw, "-nodes").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl (password %q): %v\n%s", pw, err, out)
		}
		if !strings.Contains(string(out), "PRIVATE KEY") || !strings.Contains(string(out), "CN = Octopus Tentacle") && !strings.Contains(string(out), "CN=Octopus Tentacle") {
			t.Errorf("openssl output lacks the key or certificate:\n%s", out)
		}
	}
}

func TestCertificateStoredAsUpstreamDoes(t *testing.T) {
	mk := fixtureMachineKey(t)
	s := NewSettings(filepath.Join(t.TempDir(), "t.config"))
	if c, err := s.Certificate(mk); c != nil || err != nil {
		t.Fatalf("empty config: %v %v", c, err)
	}
	c, _ := GenerateCertificate()
	if changed, err := s.SetCertificate(c, mk); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if changed, _ := s.SetCertificate(c, mk); changed {
		t.Error("storing the same certificate again is not a change")
	}
	if s.Thumbprint() != c.Thumbprint() {
		t.Errorf("thumbprint key %s", s.Thumbprint())
	}
	back, err := s.Certificate(mk)
	if err != nil || back.Thumbprint() != c.Thumbprint() {
		t.Fatal(back, err)
	}
	// Independently of our reader: OpenSSL-style decryption of the stored value
	// yields base64 of a password-less PKCS#12.
	enc, _ := s.Get(KeyCertificate)
	plain, err := mk.Decrypt(enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePKCS12(mustDecodeBase64(t, string(plain)), ""); err != nil {
		t.Errorf("stored value is not base64 PKCS#12 with an empty password: %v", err)
	}
}

// The operator identity: ECDSA P-256, otherwise as upstream's certificates,
// stored as an unprotected PFX that we, and OpenSSL, read without a password.
func TestOperatorCertificateAndUnprotectedPFX(t *testing.T) {
	c, err := GenerateOperatorCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := c.Key.Public().(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("key %T", c.Key.Public())
	}
	l := c.Leaf
	if l.Subject.CommonName != CertificateSubject || l.SignatureAlgorithm != x509.ECDSAWithSHA256 || l.NotAfter.Year()-time.Now().Year() != 100 {
		t.Errorf("subject %v, signature %v, until %v", l.Subject, l.SignatureAlgorithm, l.NotAfter)
	}
	if err := l.CheckSignature(l.SignatureAlgorithm, l.RawTBSCertificate, l.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	pfx, err := c.PKCS12Unprotected()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePKCS12(pfx, "")
	if err != nil {
		t.Fatal(err)
	}
	if back.Thumbprint() != c.Thumbprint() || !back.Key.Public().(*ecdsa.PublicKey).Equal(c.Key.Public()) {
		t.Fatal("the unprotected PFX does not give back the certificate and its key")
	}
	// And an RSA certificate too, as `remote` may be given any PFX.
	rc, _ := GenerateCertificate()
	rpfx, _ := rc.PKCS12Unprotected()
	if back, err := ParsePKCS12(rpfx, ""); err != nil || back.Thumbprint() != rc.Thumbprint() {
		t.Fatalf("RSA unprotected PFX: %v", err)
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: cannot cross-check the unprotected PFX with an independent reader")
	}
	path := filepath.Join(t.TempDir(), "operator.pfx")
	os.WriteFile(path, pfx, 0o600)
	out, err := exec.Command(openssl, "pkcs12", "-in", path, "-passin", "pass:", "-nodes").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PRIVATE KEY") || !strings.Contains(string(out), "Octopus Tentacle") {
		t.Errorf("openssl output lacks the key or certificate:\n%s", out)
	}
}
