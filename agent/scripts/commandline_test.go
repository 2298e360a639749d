package scripts

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPowerShellCommandLine(t *testing.T) {
	got := powerShellCommandLine(`C:\Windows\System32\WindowsPowerShell\v1.0\PowerShell.exe`,
		`C:\Octopus\Work\O'Brien\Bootstrap.ps1`, powerShellStartMarker("T1"), []string{"-Verbose", `"a b"`})
	want := `"C:\Windows\System32\WindowsPowerShell\v1.0\PowerShell.exe" -NonInteractive -NoProfile -NoLogo -ExecutionPolicy Unrestricted ` +
		`-Command "$ErrorActionPreference = 'Stop'; Write-Output '##tentacle[powershell-started T1]'; . {. 'C:\Octopus\Work\O''Brien\Bootstrap.ps1' -Verbose "a b"; ` +
		`if ((test-path variable:global:lastexitcode)) { exit $LastExitCode }}"`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDefaultPowerShellPath(t *testing.T) {
	root := t.TempDir()
	if got := defaultPowerShellPath(root, fileExists); got != "PowerShell.exe" {
		t.Errorf("without System32 copy: %q", got)
	}
	p := filepath.Join(root, "System32", "WindowsPowerShell", "v1.0", "PowerShell.exe")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, nil, 0o600)
	if got := defaultPowerShellPath(root, fileExists); got != p {
		t.Errorf("with System32 copy: %q", got)
	}
	if got := defaultPowerShellPath("", fileExists); got != "PowerShell.exe" {
		t.Errorf("without SystemRoot: %q", got)
	}
}

func TestBashArgv(t *testing.T) {
	got := bashArgv("/bin/bash", "/home/Work/T/Bootstrap.sh", []string{"a b", "-x"})
	if !slices.Equal(got, []string{"/bin/bash", "/home/Work/T/Bootstrap.sh", "a b", "-x"}) {
		t.Fatalf("got %q", got)
	}
}

func TestBootstrapScripts(t *testing.T) {
	req := &StartRequest{ScriptBody: "echo body\r\n", Scripts: map[string]string{"Bash": "echo bash\r\necho two\r\n"}}
	name, data := bashFlavor.bootstrapScript(req)
	if name != "Bootstrap.sh" || string(data) != "echo bash\necho two\n" {
		t.Errorf("bash: %s %q", name, data)
	}
	name, data = bashFlavor.bootstrapScript(&StartRequest{ScriptBody: "a\r\nb"})
	if name != "Bootstrap.sh" || string(data) != "a\nb" {
		t.Errorf("bash from body: %s %q", name, data)
	}
	name, data = powerShellFlavor.bootstrapScript(req)
	if name != "Bootstrap.ps1" || !bytes.Equal(data, []byte("\xEF\xBB\xBFecho body\r\n")) {
		t.Errorf("powershell: %s %q", name, data)
	}
}

func TestPrepareWorkspaceStaysInside(t *testing.T) {
	work := t.TempDir()
	outside := t.TempDir()
	dir := filepath.Join(work, "T1")
	// A symbolic link planted where a script file goes must not lead outside.
	req := &StartRequest{ScriptBody: "true", Files: []ScriptFile{
		{Name: `sub\a.txt`, Contents: strings.NewReader("A")},
		{Name: "empty"},
	}}
	if err := prepareWorkspace(dir, bashFlavor, req, survivesPowerLoss); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "a.txt")); string(b) != "A" {
		t.Fatalf("sub/a.txt = %q", b)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Skip("no symlinks:", err)
	}
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	if err := writeWorkspaceFile(root, filepath.Join("link", "x"), strings.NewReader("x"), survivesPowerLoss); err == nil {
		t.Fatal("wrote through a symbolic link out of the workspace")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Fatal("file appeared outside the workspace")
	}
}
