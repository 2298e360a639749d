package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/internal/releasebuild"
)

// builtBinary is the real tentacle binary, built once for the tests that
// need separate processes.
var builtBinary string

func TestMain(m *testing.M) {
	// Under Wine there is no Go toolchain: `make test-windows` builds the
	// binary and says where (internal/winetest/windowssuite).
	if prebuilt := os.Getenv("TENTACLE_TEST_BINARY_DIR"); prebuilt != "" {
		builtBinary = filepath.Join(prebuilt, "tentacle.exe")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "tentacle-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builtBinary = filepath.Join(dir, "tentacle")
	if runtime.GOOS == "windows" {
		builtBinary += ".exe"
	}
	// tentacle-supervisor beside it, as in every package: the agents these tests start run
	// their scripts under it (scripts.FindSupervisor).
	for _, build := range []func(string, string, releasebuild.Options) *exec.Cmd{releasebuild.Command, releasebuild.SupervisorCommand} {
		if out, err := build(filepath.Join("..", ".."), builtBinary, releasebuild.Options{}).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building tentacle: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Two configure processes at once must not corrupt the file or lose either
// change: the file lock serialises their read-modify-write cycles.
func TestConcurrentConfigureProcesses(t *testing.T) {
	tmp := t.TempDir()
	env := append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(tmp, "etc"))
	cfg := filepath.Join(tmp, "t", "tentacle.config")
	cmd := exec.Command(builtBinary, "create-instance", "--instance", "Tentacle", "--config", cfg)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			thumb := fmt.Sprintf("%040X", i+1)
			c := exec.Command(builtBinary, "configure", "--instance", "Tentacle", "--trust", thumb)
			c.Env = env
			if out, err := c.CombinedOutput(); err != nil {
				t.Errorf("configure %d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	s, err := config.LoadSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	servers, err := s.TrustedServers()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != n {
		t.Errorf("%d trusted servers after %d concurrent configure runs", len(servers), n)
	}
}

// The exit codes automation depends on, from the real process.
func TestExitCodesOfTheRealBinary(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, ""},
		{[]string{"no-such-command"}, 2, "not supported"},
		{[]string{"configure", "--no-such-option"}, 1, "Unrecognized command line arguments: --no-such-option"},
		{nil, 2, "Usage: Tentacle <command> [<options>]"},
		{[]string{"configure", "--instance", "Missing"}, 1, "has not been configured"},
	} {
		c := exec.Command(builtBinary, tc.args...)
		c.Env = append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+tmp, "NO_COLOR=1")
		out, _ := c.CombinedOutput()
		if got := c.ProcessState.ExitCode(); got != tc.code || !strings.Contains(string(out), tc.out) {
			t.Errorf("tentacle %v: exit %d, output %q; want exit %d containing %q", tc.args, got, out, tc.code, tc.out)
		}
		if strings.Contains(string(out), "\x1b[") {
			t.Errorf("tentacle %v: colour codes without a terminal: %q", tc.args, out)
		}
	}
}
