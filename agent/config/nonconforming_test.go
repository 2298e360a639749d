package config

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// opensslNonConformingPFX makes, with OpenSSL, a self-signed certificate
// shaped like Halibut's generator makes them (Basic Constraints and
// Authority Key Identifier critical) and returns it as a PFX protected by
// password, with the certificate's DER.
func opensslNonConformingPFX(t *testing.T, password string) (pfx, der []byte) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed (make deps installs it): cannot make a certificate Go's x509 refuses")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	key, crt, p12 := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.pfx")
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "3650",
		"-subj", "/CN=Halibut Style", "-addext", "basicConstraints=critical,CA:FALSE",
		"-addext", "subjectKeyIdentifier=hash", "-addext", "authorityKeyIdentifier=critical,keyid:always")
	run("pkcs12", "-export", "-in", crt, "-inkey", key, "-out", p12, "-passout", "pass:"+password)
	pemBytes, _ := os.ReadFile(crt)
	block, _ := pem.Decode(pemBytes)
	pfx, _ = os.ReadFile(p12)
	return pfx, block.Bytes
}

// A PFX whose certificate marks the Authority Key Identifier critical
// imports with its thumbprint, fields and signature intact, survives being
// stored as upstream stores it, and exports byte for byte.
func TestPKCS12WithCertificateGoRefuses(t *testing.T) {
	pfx, der := opensslNonConformingPFX(t, "pw")
	if _, err := x509.ParseCertificate(der); err == nil || !strings.Contains(err.Error(), "authority key identifier incorrectly marked critical") {
		t.Fatalf("the fixture should be refused by Go's parser, got %v", err)
	}
	sum := sha1.Sum(der)
	want := strings.ToUpper(hex.EncodeToString(sum[:]))

	c, err := ParsePKCS12(pfx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if c.Thumbprint() != want || !bytes.Equal(c.Leaf.Raw, der) {
		t.Fatalf("thumbprint %s, want %s", c.Thumbprint(), want)
	}
	l := c.Leaf
	if l.Subject.CommonName != "Halibut Style" || l.SignatureAlgorithm != x509.SHA256WithRSA || c.KeyBits() != 2048 {
		t.Errorf("subject %v, signature %v, %d bits", l.Subject, l.SignatureAlgorithm, c.KeyBits())
	}
	// RawTBSCertificate is the original's: the self-signature verifies.
	if err := l.CheckSignature(l.SignatureAlgorithm, l.RawTBSCertificate, l.Signature); err != nil {
		t.Errorf("signature over the original TBS: %v", err)
	}
	critical := false
	for _, e := range l.Extensions {
		if e.Id.String() == "2.5.29.35" {
			critical = e.Critical
		}
	}
	if !critical {
		t.Error("the Authority Key Identifier should still show as critical")
	}
	if err := c.PeerParseError(); err == nil || !strings.Contains(err.Error(), "authority key identifier") {
		t.Errorf("PeerParseError = %v", err)
	}

	if _, err := ParsePKCS12(pfx, "wrong"); !errors.Is(err, ErrPFXPassword) {
		t.Errorf("wrong password: %v", err)
	}

	mk := fixtureMachineKey(t)
	s := NewSettings(filepath.Join(t.TempDir(), "t.config"))
	if _, err := s.SetCertificate(c, mk); err != nil {
		t.Fatal(err)
	}
	back, err := s.Certificate(mk)
	if err != nil || back.Thumbprint() != want || s.Thumbprint() != want {
		t.Fatalf("stored and loaded: %v (%s)", err, s.Thumbprint())
	}

	out, err := back.PKCS12("again")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParsePKCS12(out, "again")
	if err != nil || !bytes.Equal(again.Leaf.Raw, der) {
		t.Fatalf("export and re-import: %v", err)
	}
}

// A PFX whose certificate fails for another reason says that reason.
func TestParseCertificateDERKeepsOtherErrors(t *testing.T) {
	if _, err := ParseCertificateDER([]byte{0x30, 0x03, 0x02, 0x01, 0x01}); err == nil || !strings.HasPrefix(err.Error(), "x509: ") {
		t.Errorf("garbage: %v", err)
	}
	c, _ := GenerateCertificate()
	if got, err := ParseCertificateDER(c.Leaf.Raw); err != nil || !bytes.Equal(got.Raw, c.Leaf.Raw) {
		t.Errorf("a conforming certificate: %v", err)
	}
	if c.PeerParseError() != nil {
		t.Error("our own certificates are conforming")
	}
}
