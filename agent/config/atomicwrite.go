package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// File modes for everything we create. Upstream leaves these to the umask,
// which on most machines makes the certificate world-readable; we do not.
const (
	privateFileMode os.FileMode = 0o600
	privateDirMode  os.FileMode = 0o700
)

// WriteFileAtomic replaces path with data so that a reader sees either the
// old file or the new one, never a torn write, and a crash leaves no
// half-written file behind: write a temp file beside it, fsync, rename, fsync
// the directory. An existing file's mode is kept; a new one gets perm. Use
// WriteSecretFileAtomic for anything that holds a secret.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm, false)
}

// WriteSecretFileAtomic is WriteFileAtomic for a file that holds (or will
// hold) a secret: the configuration with the certificate, the machine key, a
// PFX. The new file is owner-only from its creation, before a byte is
// written, whatever the mode of the file it replaces: 0600 (keeping the old
// file's owner when root rewrites it), on Windows a protected ACL for its
// owner, SYSTEM and Administrators.
func WriteSecretFileAtomic(path string, data []byte) error {
	return writeAtomic(path, data, privateFileMode, true)
}

func writeAtomic(path string, data []byte, perm os.FileMode, secret bool) error {
	dir := filepath.Dir(path)
	replaced, err := os.Stat(path)
	if err != nil {
		replaced = nil
	} else if !secret {
		perm = replaced.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if secret {
		err = restrictSecretFile(tmp, path, replaced)
	} else {
		err = tmp.Chmod(perm)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := renameReplacing(tmpName, path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	ok = true
	syncDir(dir)
	return nil
}

// renameReplacing retries for a moment on Windows, where a rename over a file
// fails while another process (a concurrent `tentacle` reading the
// configuration) has it open.
func renameReplacing(from, to string) error {
	err := os.Rename(from, to)
	for i := 0; err != nil && runtime.GOOS == "windows" && i < 50; i++ {
		time.Sleep(10 * time.Millisecond)
		err = os.Rename(from, to)
	}
	return err
}

// readFileRetrying is os.ReadFile that retries for a moment on Windows,
// where opening a file fails while a rename replaces it.
func readFileRetrying(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	for i := 0; err != nil && runtime.GOOS == "windows" && !errors.Is(err, os.ErrNotExist) && !isDir(path) && i < 50; i++ {
		time.Sleep(10 * time.Millisecond)
		data, err = os.ReadFile(path)
	}
	return data, err
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// syncDir makes a rename durable. Best effort: not every platform or file
// system supports fsync on a directory, and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// EnsurePrivateDir creates dir (and its parents) if missing; a directory we
// create ourselves is 0700. An existing directory's mode is left alone: it may
// be shared on purpose (for example /etc/octopus).
func EnsurePrivateDir(dir string) (created bool, err error) {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", dir)
		}
		return false, nil
	}
	if err := os.MkdirAll(dir, privateDirMode); err != nil {
		return false, fmt.Errorf("cannot create directory %s: %w", dir, err)
	}
	// MkdirAll applies the umask; make the leaf exactly 0700.
	if err := os.Chmod(dir, privateDirMode); err != nil {
		return true, fmt.Errorf("cannot set permissions on %s: %w", dir, err)
	}
	return true, nil
}
