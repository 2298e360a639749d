package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestApplyEnvironmentOnlyWhenAskedAndWithPrecedence(t *testing.T) {
	s, _ := ParseSettings([]byte(`<octopus-settings><set key="Tentacle.Services.PortNumber">10933</set></octopus-settings>`))
	env := map[string]string{"TENTACLE_SERVICE_PORT": "11111"}
	getenv := func(k string) string { return env[k] }
	if got := ApplyEnvironment(s, getenv, ""); got != nil {
		t.Errorf("applied without %s: %v", ContributeEnvironmentVariable, got)
	}
	env[ContributeEnvironmentVariable] = "True"
	dir := filepath.Join(t.TempDir(), "bin", "deep")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(filepath.Dir(dir), ".env"), []byte("# comment\nTENTACLE_SERVICE_PORT=22222\nexport TENTACLE_NO_LISTEN=\"true\"\n"), 0o600)
	ApplyEnvironment(s, getenv, dir)
	if p, _ := s.Port(); p != 11111 {
		t.Errorf("process environment must win over .env and the file: %d", p)
	}
	if nl, _ := s.NoListen(); !nl {
		t.Error(".env value not applied")
	}
	if s.Changed() {
		t.Error("the overlay must not mark the file changed (it is never saved)")
	}
}
