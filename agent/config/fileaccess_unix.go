//go:build !windows

package config

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

func pathAccess(path string) (access, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return access{}, err
	}
	return infoAccess(fi), nil
}

// openedAccess checks the file that is open, not whatever the name points
// at now (fstat: no window between the check and the read).
func openedAccess(f *os.File) (access, os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return access{}, nil, err
	}
	return infoAccess(fi), fi, nil
}

func infoAccess(fi os.FileInfo) access {
	mode := fi.Mode()
	a := access{
		othersRead:  mode.Perm()&0o044 != 0,
		othersWrite: mode.Perm()&0o022 != 0,
		sticky:      mode&os.ModeSticky != 0,
		describe:    fmt.Sprintf("mode %04o", mode.Perm()|stickyBit(mode)),
	}
	a.owner, a.ownerTrusted = "an unknown owner", false
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid := int(st.Uid)
		a.ownerTrusted = uid == 0 || uid == os.Geteuid()
		a.owner = "uid " + strconv.Itoa(uid)
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			a.owner = u.Username + " (uid " + strconv.Itoa(uid) + ")"
		}
		a.describe += ", owner " + a.owner
	}
	return a
}

func stickyBit(m os.FileMode) os.FileMode {
	if m&os.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

// agentUser names the user the agent runs as, for messages.
func agentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Geteuid())
}

func fixReadable(path string, dir bool) string {
	if dir {
		return "chmod 700 " + shellQuote(path)
	}
	return "chmod 600 " + shellQuote(path)
}

func fixNotWritable(path string, dir bool) string { return "chmod go-w " + shellQuote(path) }

func fixOwner(path string) string { return "chown " + agentUser() + " " + shellQuote(path) }

func shellQuote(s string) string {
	for _, r := range s {
		if !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// restrictSecretFile makes a new file owner-only (0600) before anything is
// written to it, whatever the umask or the mode of the file it will replace.
// When root rewrites a file that belonged to another account (a service
// user's configuration), the new one keeps that owner and group, so that the
// account can still read it.
func restrictSecretFile(f *os.File, _ string, replaced os.FileInfo) error {
	if err := f.Chmod(privateFileMode); err != nil {
		return err
	}
	if replaced == nil {
		return nil
	}
	if st, ok := replaced.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
		_ = f.Chown(int(st.Uid), int(st.Gid)) // only root may; anyone else keeps the file as theirs
	}
	return nil
}

// openNoBlock opens a file for reading without blocking on a FIFO that sits
// where a regular file is expected.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// trustedOwners names who may own what the agent trusts, for messages.
func trustedOwners() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return "root or " + agentUser()
}
