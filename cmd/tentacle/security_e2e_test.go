//go:build !windows

package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBinary runs a tentacle binary and returns its exit code and output.
func runBinary(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	c := exec.Command(bin, args...)
	c.Env = env
	out, _ := c.CombinedOutput()
	return c.ProcessState.ExitCode(), string(out)
}

// A configuration that already existed as 0644 (cloud-init write_files)
// receives the certificate as 0600; the agent will not start from a
// configuration others can change, and says what to chmod.
func TestRealBinaryKeepsTheCertificatePrivate(t *testing.T) {
	dir := t.TempDir()
	env := append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(dir, "etc"), "NO_COLOR=1")
	cfgDir := filepath.Join(dir, "Tentacle")
	os.Mkdir(cfgDir, 0o700)
	cfg := filepath.Join(cfgDir, "tentacle.config")
	os.WriteFile(cfg, []byte(`<?xml version="1.0" encoding="utf-8"?><octopus-settings />`), 0o644)
	os.Chmod(cfg, 0o644)
	for _, args := range [][]string{
		{"create-instance", "--instance", "Sec", "--config", cfg},
		{"new-certificate", "--instance", "Sec"},
		{"configure", "--instance", "Sec", "--port", "1", "--listenIpAddress", "127.0.0.1"},
	} {
		if code, out := runBinary(t, builtBinary, env, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Fatalf("the configuration holding the certificate is %04o, want 0600", st.Mode().Perm())
	}
	os.Chmod(cfg, 0o666)
	code, out := runBinary(t, builtBinary, env, "agent", "--instance", "Sec")
	if code != 1 || !strings.Contains(out, "Refusing to start") || !strings.Contains(out, "chmod 600 "+cfg) {
		t.Errorf("agent with a world-writable configuration: exit %d\n%s", code, out)
	}
}

// With OCTOPUS_CONTRIBUTE_ENV_SETTINGS, only the .env beside the binary is
// read, and only when nobody else can change it.
func TestRealBinaryReadsOnlyAProtectedDotEnvBesideIt(t *testing.T) {
	dir := t.TempDir()
	binDir := filepath.Join(dir, "opt", "tentacle")
	os.MkdirAll(binDir, 0o755)
	bin := filepath.Join(binDir, "tentacle")
	src, _ := os.Open(builtBinary)
	dst, _ := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	io.Copy(dst, src)
	src.Close()
	dst.Close()
	env := append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(dir, "etc"), "NO_COLOR=1", "OCTOPUS_CONTRIBUTE_ENV_SETTINGS=true")
	cfg := filepath.Join(dir, "home", "tentacle.config")
	if code, out := runBinary(t, bin, env, "create-instance", "--instance", "Env", "--config", cfg); code != 0 {
		t.Fatal(out)
	}
	show := func() (int, string) { return runBinary(t, bin, env, "show-configuration", "--instance", "Env") }

	// A .env in the folder above the binary's: ignored.
	os.WriteFile(filepath.Join(dir, "opt", ".env"), []byte("TENTACLE_SERVICE_PORT=4444\n"), 0o600)
	if code, out := show(); code != 0 || strings.Contains(out, "4444") {
		t.Errorf("a .env above the binary was read: exit %d\n%s", code, out)
	}
	// Beside it, protected: read.
	dotEnv := filepath.Join(binDir, ".env")
	os.WriteFile(dotEnv, []byte("TENTACLE_SERVICE_PORT=5555\n"), 0o644)
	os.Chmod(dotEnv, 0o644)
	if code, out := show(); code != 0 || !strings.Contains(out, "5555") {
		t.Errorf("the .env beside the binary was not read: exit %d\n%s", code, out)
	}
	// Beside it, group-writable: refused, naming the file and its mode.
	os.Chmod(dotEnv, 0o664)
	if code, out := show(); code != 1 || !strings.Contains(out, dotEnv) || !strings.Contains(out, "mode 0664") {
		t.Errorf("a group-writable .env: exit %d\n%s", code, out)
	}
}
