//go:build !windows

package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/agent/halibut"
)

// A Tentacle certificate shaped as Halibut's generator makes them (Basic
// Constraints and Authority Key Identifier critical, which Go's x509 parser
// refuses) imports, keeps its thumbprint, and is what the agent serves; a
// Go peer (`tentacle remote`) is told exactly why it cannot connect.
func TestAgentServesImportedCertificateGoRefuses(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed (make deps installs it): cannot make a certificate Go's x509 refuses")
	}
	a := newRealAgent(t)
	dir := t.TempDir()
	key, crt, pfx := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem"), filepath.Join(dir, "halibut.pfx")
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "3650", "-subj", "/CN=Halibut Style",
			"-addext", "basicConstraints=critical,CA:FALSE", "-addext", "subjectKeyIdentifier=hash", "-addext", "authorityKeyIdentifier=critical,keyid:always"},
		{"pkcs12", "-export", "-in", crt, "-inkey", key, "-out", pfx, "-passout", "pass:pw"},
	} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	pemBytes, _ := os.ReadFile(crt)
	block, _ := pem.Decode(pemBytes)
	sum := sha1.Sum(block.Bytes)
	want := strings.ToUpper(hex.EncodeToString(sum[:]))

	out := a.tentacle("import-certificate", "--instance", "E2E", "--from-file", pfx, "--pfx-password", "pw")
	if !strings.Contains(out, want+" imported successfully") || !strings.Contains(out, "authority key identifier incorrectly marked critical") {
		t.Fatalf("import-certificate:\n%s", out)
	}
	if got := strings.TrimSpace(a.tentacle("show-thumbprint", "--instance", "E2E")); got != want {
		t.Fatalf("show-thumbprint %s, want %s", got, want)
	}
	a.thumb = want
	a.start()

	// OpenSSL, a TLS stack that (like Octopus Server's) reads the certificate,
	// receives exactly the imported one.
	served, _ := exec.Command(openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", a.port), "-showcerts").CombinedOutput()
	at := bytes.Index(served, []byte("-----BEGIN CERTIFICATE-----"))
	if at < 0 {
		t.Fatalf("no certificate served:\n%s", served)
	}
	got, _ := pem.Decode(served[at:])
	if !bytes.Equal(got.Bytes, block.Bytes) {
		t.Error("the agent served another certificate than the one imported")
	}

	// A Go client cannot read it, and says why.
	_, err = a.client.Call(t.Context(), halibut.Endpoint{BaseURI: fmt.Sprintf("https://127.0.0.1:%d/", a.port), Thumbprint: want},
		"ICapabilitiesServiceV2", "GetCapabilities", nil, nil)
	var pe *halibut.PeerCertificateError
	if !errors.As(err, &pe) || pe.Ours || !strings.Contains(pe.Cause, "authority key identifier") {
		t.Errorf("Go client: %v", err)
	}
	opPFX := filepath.Join(a.dir, "operator.pfx")
	op, _ := a.operator.PKCS12("")
	os.WriteFile(opPFX, op, 0o600)
	c := exec.Command(builtBinary, "remote", "exec", "--endpoint", fmt.Sprintf("https://127.0.0.1:%d/", a.port), "--thumbprint", want, "--", "true")
	c.Env = append(a.env, "TENTACLE_OPERATOR_CERT="+opPFX)
	remoteOut, _ := c.CombinedOutput()
	if c.ProcessState.ExitCode() != 1 || !bytes.Contains(remoteOut, []byte("authority key identifier incorrectly marked critical")) || !bytes.Contains(remoteOut, []byte("new-certificate")) {
		t.Errorf("remote exec: exit %d\n%s", c.ProcessState.ExitCode(), remoteOut)
	}
}
