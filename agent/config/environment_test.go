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
	dir := t.TempDir()
	dotEnv := filepath.Join(dir, DotEnvName)
	os.WriteFile(dotEnv, []byte("# comment\nTENTACLE_SERVICE_PORT=22222\nexport TENTACLE_NO_LISTEN=\"true\"\n"), 0o600)
	if got, read, err := ApplyEnvironment(s, getenv, dotEnv); got != nil || read != "" || err != nil {
		t.Errorf("applied without %s: %v %q %v", ContributeEnvironmentVariable, got, read, err)
	}
	env[ContributeEnvironmentVariable] = "True"
	_, read, err := ApplyEnvironment(s, getenv, dotEnv)
	if err != nil || read != dotEnv {
		t.Fatalf("read %q, %v", read, err)
	}
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

// Only the .env beside the binary counts: one in a folder above it (which
// someone else may be able to write: /tmp, a home, /) is not read.
func TestDotEnvAboveTheBinaryIsIgnored(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "opt", "tentacle")
	os.MkdirAll(bin, 0o700)
	exe := filepath.Join(bin, "tentacle")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o700)
	os.WriteFile(filepath.Join(root, "opt", DotEnvName), []byte("TENTACLE_TRUSTED_SERVERS=[{\"Thumbprint\":\"ATTACKER\"}]\n"), 0o600)
	os.WriteFile(filepath.Join(root, DotEnvName), []byte("TENTACLE_SERVICE_PORT=1\n"), 0o600)

	s := NewSettings(filepath.Join(root, "t.config"))
	getenv := func(k string) string { return map[string]string{ContributeEnvironmentVariable: "true"}[k] }
	applied, read, err := ApplyEnvironment(s, getenv, DotEnvPath(exe))
	if err != nil || len(applied) != 0 || read != "" {
		t.Fatalf("a .env above the binary's folder was used: applied %v, read %q, err %v", applied, read, err)
	}
	if _, ok := s.Get(KeyTrustedServers); ok {
		t.Error("the trust list came from a parent folder's .env")
	}
}
