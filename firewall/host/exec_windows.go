//go:build windows

package host

import (
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/windows"
)

// resolveTool finds netsh.exe in the system directory rather than on PATH,
// so that a netsh.exe planted in a directory on PATH is never run with
// administrator rights.
func resolveTool(name string) (string, error) {
	dir, err := windows.GetSystemDirectory()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+".exe")
	if _, err := exec.LookPath(p); err != nil {
		return "", err
	}
	return p, nil
}

// prepare keeps netsh from opening a console window when tentacle runs as
// a service.
func prepare(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NO_WINDOW}
}
