//go:build !windows

package agent

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// The agent warns when others can read its configuration (the private key)
// and refuses to start when others can change it (the trust list).
func TestAgentChecksItsConfigurationPermissionsAtStart(t *testing.T) {
	home := t.TempDir()
	operator, _ := config.GenerateCertificate()
	cert, _ := config.GenerateCertificate()
	path := filepath.Join(home, "tentacle.config")
	s := config.NewSettings(path)
	s.Set(config.KeyHome, home)
	s.Set(config.KeyListenIP, "127.0.0.1")
	s.SetTrustedServers([]config.TrustedServer{{Thumbprint: operator.Thumbprint(), CommunicationStyle: config.StyleTentaclePassive}})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	start := func() (*Agent, string, error) {
		var log bytes.Buffer
		exe, _ := os.Executable()
		a, err := New(Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
			Logger: slog.New(slog.NewTextHandler(&log, nil)), Executable: exe, Getenv: func(string) string { return "" }})
		return a, log.String(), err
	}

	os.Chmod(path, 0o664)
	if _, _, err := start(); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("a group-writable configuration: %v", err)
	}
	os.Chmod(path, 0o600)
	os.Chmod(home, 0o777)
	if _, _, err := start(); err == nil || !strings.Contains(err.Error(), "chmod 700 "+home) {
		t.Fatalf("a world-writable configuration folder: %v", err)
	}
	os.Chmod(home, 0o700)

	os.Chmod(path, 0o644)
	a, log, err := start()
	if err != nil {
		t.Fatalf("a world-readable configuration must only warn: %v", err)
	}
	a.close()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, path) || !strings.Contains(log, "chmod 600") {
		t.Errorf("no warning for a world-readable configuration:\n%s", log)
	}

	os.Chmod(path, 0o600)
	a, log, err = start()
	if err != nil {
		t.Fatal(err)
	}
	a.close()
	if strings.Contains(log, "level=WARN") {
		t.Errorf("a warning for a private configuration:\n%s", log)
	}
}
