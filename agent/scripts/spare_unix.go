//go:build !windows

package scripts

import (
	"os"

	"golang.org/x/sys/unix"
)

const extraFilesSupported = true

// redirectStdio points the process's stdout and stderr at path (appending), as an
// ordinary supervisor's are from its start: a spare learns its workspace late.
func redirectStdio(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup2(int(f.Fd()), fd); err != nil {
			return err
		}
	}
	return nil
}

func closeOnExec(fd int) { unix.CloseOnExec(fd) }
