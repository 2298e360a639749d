//go:build !windows

package scripts

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const extraFilesSupported = true

// redirectStdio points the process's stdout and stderr at path (appending), as an
// ordinary supervisor's are from its start: a spare learns its workspace late. Until then
// they are a pipe to the agent, which a supervisor must not keep: it outlives the agent,
// and a write to fd 1 or 2 whose reader is gone kills a Go program (SIGPIPE). If path
// cannot be opened, the error goes to the agent and the output to the null device.
func redirectStdio(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "script supervisor: %v\n", err)
		if f, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
			return err
		}
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
