//go:build windows

// Command powershell stands in for Windows PowerShell in the Windows tests of
// agent/scripts (no PowerShell can be had under Wine, whose own powershell.exe
// is a stub). Given the command line the agent runs a bootstrap with, it does
// what PowerShell would: prints the start marker, runs the bootstrap's body
// with the script's arguments, and exits with the body's exit code. The body is
// run by cmd.exe, so the tests' scripts are batch files.
//
// With POWERSHELL_STANDIN_STUB=1 in its environment it behaves like Wine's
// stub: it prints nothing and exits 0.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"golang.org/x/sys/windows"
)

// command is the -Command text agent/scripts' powerShellCommandLine writes:
// the marker, the bootstrap's path (quotes doubled) and the arguments spliced
// in as they are.
var command = regexp.MustCompile(`^\$ErrorActionPreference = 'Stop'; Write-Output '([^']*)'; \. \{\. '((?:[^']|'')*)' ?(.*); if \(\(test-path variable:global:lastexitcode\)\) \{ exit \$LastExitCode \}\}$`)

func main() {
	if os.Getenv("POWERSHELL_STANDIN_STUB") == "1" {
		return
	}
	raw := windows.UTF16PtrToString(windows.GetCommandLine())
	_, text, ok := strings.Cut(raw, ` -Command "`)
	if !ok {
		fail("no -Command in %s", raw)
	}
	m := command.FindStringSubmatch(strings.TrimSuffix(text, `"`))
	if m == nil {
		fail("not a bootstrap command: %s", text)
	}
	marker, bootstrap, args := m[1], strings.ReplaceAll(m[2], "''", "'"), m[3]
	fmt.Print(marker + "\r\n")

	body, err := os.ReadFile(bootstrap)
	if err != nil {
		fail("%v", err)
	}
	script := filepath.Join(filepath.Dir(bootstrap), "Bootstrap.standin.cmd")
	text = "@echo off\r\n" + strings.TrimPrefix(string(body), "\uFEFF")
	if err := os.WriteFile(script, []byte(text), 0o600); err != nil {
		fail("%v", err)
	}
	comspec := os.Getenv("ComSpec")
	if comspec == "" {
		comspec = `C:\windows\system32\cmd.exe`
	}
	cmd := exec.Command(comspec)
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `"` + comspec + `" /d /c ""` + script + `" ` + args + `"`}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	if cmd.ProcessState == nil {
		fail("%v", err)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "powershell stand-in: "+format+"\n", args...)
	os.Exit(1)
}
