package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// checkShellSyntax parses a completion script with the shell itself, when
// that shell is installed.
func checkShellSyntax(t *testing.T, shell, script string) {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Logf("%s is not installed: its completion script was generated but not syntax-checked", shell)
		return
	}
	f := filepath.Join(t.TempDir(), "completion."+shell)
	os.WriteFile(f, []byte(script), 0o644)
	if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
		t.Errorf("%s -n rejects the completion script: %v\n%s", shell, err, out)
	}
}
