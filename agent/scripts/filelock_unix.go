//go:build !windows

package scripts

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive lock on the whole file at path, creating it if needed.
// With wait false it fails with errLocked when another process holds the lock.
//
// The lock belongs to the open file, which Go opens close-on-exec, so a supervisor's lock
// is not inherited by the script it runs and disappears exactly when the supervisor dies.
func lockFile(path string, wait bool) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file: %w", err)
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) unlock() {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
}

// lockHolder names the process that took the whole-file lock on path, from
// the kernel's table of locks (Linux's /proc/locks; nothing elsewhere), as
// ", pid N: its command line", or "" when it cannot tell.
func lockHolder(path string) string {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return ""
	}
	table, err := os.ReadFile("/proc/locks")
	if err != nil {
		return ""
	}
	suffix := fmt.Sprintf(":%d", st.Ino)
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		// 1: FLOCK  ADVISORY  WRITE 5441 fe:00:10100832 0 EOF
		if len(f) < 6 || f[1] != "FLOCK" || !strings.HasSuffix(f[5], suffix) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + f[4] + "/cmdline")
		return ", pid " + f[4] + ": " + strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return ""
}
