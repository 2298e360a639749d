package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixtureMachineKey(t *testing.T) *UnixMachineKey {
	t.Helper()
	return &UnixMachineKey{
		MachineIDPath:    filepath.Join(fixtureDir, "machine-id"),
		GeneratedKeyPath: filepath.Join(t.TempDir(), "machinekey"),
	}
}

// The fixture was encrypted by OpenSSL (make-upstream-fixture.sh), not by us.
func TestReadsUpstreamEncryptedCertificate(t *testing.T) {
	s, err := ParseSettings(readFixture(t, "upstream-linux.config"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := s.Certificate(fixtureMachineKey(t))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(readFixture(t, "thumbprint")))
	if cert.Thumbprint() != want || s.Thumbprint() != want {
		t.Errorf("thumbprint %s (config says %s), want %s", cert.Thumbprint(), s.Thumbprint(), want)
	}
	if cert.Leaf.Subject.CommonName != CertificateSubject || cert.KeyBits() != 2048 {
		t.Errorf("subject %q, %d bits", cert.Leaf.Subject.CommonName, cert.KeyBits())
	}
}

func TestCertificateFromAnotherMachineIsAClearError(t *testing.T) {
	s, _ := ParseSettings(readFixture(t, "upstream-linux.config"))
	other := filepath.Join(t.TempDir(), "machine-id")
	os.WriteFile(other, []byte("00000000000000000000000000000000\n"), 0o600)
	_, err := s.Certificate(&UnixMachineKey{MachineIDPath: other, GeneratedKeyPath: filepath.Join(t.TempDir(), "k")})
	var ue *UserError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "another machine") {
		t.Errorf("err = %v", err)
	}
}

func TestMachineKeyRoundTripAndFallback(t *testing.T) {
	mk := fixtureMachineKey(t)
	enc, err := mk.Encrypt([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := mk.Decrypt(enc); err != nil || string(plain) != "secret" {
		t.Fatalf("%q %v", plain, err)
	}
	if _, err := os.Stat(mk.GeneratedKeyPath); !errors.Is(err, os.ErrNotExist) {
		t.Error("a key file must not be generated while machine-id works")
	}

	// Without a usable machine-id, a key file is generated (0600) and used.
	noID := &UnixMachineKey{MachineIDPath: filepath.Join(t.TempDir(), "absent"), GeneratedKeyPath: filepath.Join(t.TempDir(), "sub", "machinekey")}
	enc2, err := noID.Encrypt([]byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	assertPrivateFile(t, noID.GeneratedKeyPath)
	raw, _ := os.ReadFile(noID.GeneratedKeyPath)
	parts := strings.Split(string(raw), ".")
	if len(parts) != 2 {
		t.Fatalf("key file format %q, want base64(key).base64(iv)", raw)
	}
	if k, _ := base64.StdEncoding.DecodeString(parts[0]); len(k) != 32 {
		t.Errorf("key is %d bytes", len(k))
	}
	if plain, err := noID.Decrypt(enc2); err != nil || !bytes.Equal(plain, []byte("other")) {
		t.Fatal(plain, err)
	}
	if _, err := mk.Decrypt(enc2); !errors.Is(err, ErrMachineKeyMismatch) {
		t.Errorf("decrypting with the wrong key: %v", err)
	}
	if _, err := mk.Decrypt("not base64!"); err == nil {
		t.Error("garbage must not decrypt")
	}
}
