package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Host makes the machine-wide changes a service needs: files under the
// unit directory, ownership of the instance's files, and commands such as
// systemctl. Direct does them in-process (root, or a user unit); Sudo does
// them through `sudo -n`, for a user with passwordless sudo, as upstream.
type Host interface {
	// WriteFile replaces path atomically (temp file beside it, fsync,
	// rename), so a failure leaves the old file or none, never half of one.
	WriteFile(path string, data []byte, mode os.FileMode) error
	// Remove deletes path; a missing file is not an error.
	Remove(path string) error
	// ChownTree gives dir and everything under it to uid:gid without
	// following symbolic links, and sets dir's mode.
	ChownTree(dir string, uid, gid int, dirMode os.FileMode) error
	// Chown gives one file to uid:gid and sets its mode.
	Chown(path string, uid, gid int, mode os.FileMode) error
	// Command runs a program and returns its combined output.
	Command(ctx context.Context, name string, args ...string) (string, error)
}

// Direct is a Host for a process that may make the changes itself.
type Direct struct{}

func (Direct) WriteFile(path string, data []byte, mode os.FileMode) error {
	return writeFileAtomic(path, data, mode)
}

func (Direct) Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (Direct) ChownTree(dir string, uid, gid int, dirMode os.FileMode) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return err
	}
	return os.Chmod(dir, dirMode)
}

func (Direct) Chown(path string, uid, gid int, mode os.FileMode) error {
	if err := os.Lchown(path, uid, gid); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func (Direct) Command(ctx context.Context, name string, args ...string) (string, error) {
	return runCommand(ctx, name, args...)
}

// Sudo is a Host for a user with passwordless sudo: every change goes
// through `sudo -n`, which never prompts (it fails instead).
type Sudo struct{}

func (Sudo) WriteFile(path string, data []byte, mode os.FileMode) error {
	// Staged in a private temp file, then installed beside the target and
	// renamed over it as root, so the target is never half-written.
	tmp, err := os.CreateTemp("", "tentacle-unit-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	staged := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	ctx := context.Background()
	if _, err := runCommand(ctx, "sudo", "-n", "install", "-m", fmt.Sprintf("%04o", mode.Perm()), "-o", "root", "-g", "root", "-T", tmp.Name(), staged); err != nil {
		return err
	}
	if _, err := runCommand(ctx, "sudo", "-n", "mv", "-f", "-T", staged, path); err != nil {
		_, _ = runCommand(ctx, "sudo", "-n", "rm", "-f", staged)
		return err
	}
	return nil
}

func (Sudo) Remove(path string) error {
	_, err := runCommand(context.Background(), "sudo", "-n", "rm", "-f", "--", path)
	return err
}

func (Sudo) ChownTree(dir string, uid, gid int, dirMode os.FileMode) error {
	ctx := context.Background()
	owner := strconv.Itoa(uid) + ":" + strconv.Itoa(gid)
	if _, err := runCommand(ctx, "sudo", "-n", "chown", "-R", "-P", "-h", owner, "--", dir); err != nil {
		return err
	}
	_, err := runCommand(ctx, "sudo", "-n", "chmod", fmt.Sprintf("%04o", dirMode.Perm()), "--", dir)
	return err
}

func (Sudo) Chown(path string, uid, gid int, mode os.FileMode) error {
	ctx := context.Background()
	if _, err := runCommand(ctx, "sudo", "-n", "chown", "-h", strconv.Itoa(uid)+":"+strconv.Itoa(gid), "--", path); err != nil {
		return err
	}
	_, err := runCommand(ctx, "sudo", "-n", "chmod", fmt.Sprintf("%04o", mode.Perm()), "--", path)
	return err
}

func (Sudo) Command(ctx context.Context, name string, args ...string) (string, error) {
	return runCommand(ctx, "sudo", append([]string{"-n", name}, args...)...)
}

// CanSudo reports whether `sudo -n` works for this user without a password.
func CanSudo(ctx context.Context) bool {
	if _, err := exec.LookPath("sudo"); err != nil {
		return false
	}
	_, err := runCommand(ctx, "sudo", "-n", "true")
	return err == nil
}

// CommandError is a program that failed, with what it printed.
type CommandError struct {
	Command string
	Output  string
	Err     error
}

func (e *CommandError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("%s: %v", e.Command, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Command, e.Err, out)
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is the program's exit code, or -1 if it did not run.
func (e *CommandError) ExitCode() int {
	var xe *exec.ExitError
	if errors.As(e.Err, &xe) {
		return xe.ExitCode()
	}
	return -1
}

func runCommand(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// systemctl must not page or ask for a password on a terminal.
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_LESS=", "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		return out.String(), &CommandError{Command: name + " " + strings.Join(args, " "), Output: out.String(), Err: err}
	}
	return out.String(), nil
}

// writeFileAtomic writes a temp file beside path, fsyncs it and renames it
// over path, so readers (and a crash) see the old file or the new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
