// Package files is the agent's side of IFileTransferService: uploads
// streamed to disk and downloads streamed from it, with upstream's path rules
// (reference/halibut-protocol.md §6.6).
package files

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Store resolves and moves files for one agent.
type Store struct {
	// Home is the agent's home; relative remote paths resolve under it.
	Home string
	// MinFreeBytes is kept free on the target's file system after an upload
	// (upstream refuses uploads that would not fit).
	MinFreeBytes int64
	// Journal is a folder recording the temporary file of each upload in
	// flight, so a restart can remove what a crash left behind
	// (SweepInterruptedUploads); "" keeps no record.
	Journal string
}

// Resolve turns a remote path as the server sends it into a local path: on
// Linux and macOS backslashes become slashes (the server may be Windows),
// relative paths land under Home, absolute paths are used as they are (the
// server is trusted with the whole machine, as upstream).
func (s *Store) Resolve(remotePath string) (string, error) {
	p := remotePath
	if runtime.GOOS != "windows" {
		// A UNC path names a Windows share; as a Unix path it would create
		// folders under / ("\\server\share\y.txt" -> /server/share/y.txt).
		if strings.HasPrefix(p, `\\`) || strings.HasPrefix(p, "//") {
			return "", fmt.Errorf("%s is a Windows network (UNC) path, which this agent cannot reach on %s; send a local path", remotePath, runtime.GOOS)
		}
		p = strings.ReplaceAll(p, `\`, "/")
	}
	if strings.TrimSpace(p) == "" {
		return "", errors.New("the remote path is empty")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.Home, p)
	}
	return filepath.Clean(p), nil
}

// Uploaded describes a stored upload.
type Uploaded struct {
	Path   string
	Length int64
	SHA1   string // lower-case hex: what UploadResult.Hash carries
}

// Upload writes length bytes of content to remotePath in one pass, hashing
// as it goes. The bytes go to a temporary file beside the target, which
// replaces the target only when complete and of the declared length: a
// failed or interrupted upload leaves the old file (or nothing) behind,
// never a partial one.
func (s *Store) Upload(remotePath string, content io.Reader, length int64) (Uploaded, error) {
	path, err := s.Resolve(remotePath)
	if err != nil {
		return Uploaded{}, err
	}
	dir := filepath.Dir(path)
	// Folders and new files get what the agent's umask allows (0777 and 0666
	// before it), as any program creating them would; a file that already
	// exists keeps its mode, so a private file stays private.
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return Uploaded{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := s.checkFreeSpace(dir, length); err != nil {
		return Uploaded{}, err
	}
	perm, keep := os.FileMode(0o666), false
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		perm, keep = fi.Mode().Perm(), true // umask may narrow it at creation: Chmod below restores it
	}
	tmp, forget, err := s.createUploadTemp(dir, filepath.Base(path), perm)
	if err != nil {
		return Uploaded{}, fmt.Errorf("writing %s: %w", path, err)
	}
	defer forget() // last: after the rename or the removal below
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// SHA-1 only: the contract needs it, and nothing reads another hash (a
	// SHA-256 beside it cost ~0.5 CPU s per GiB).
	h1 := sha1.New()
	n, err := CopyHashing(tmp, []hash.Hash{h1}, io.LimitReader(content, length))
	if err != nil {
		return Uploaded{}, fmt.Errorf("writing %s: %w", path, err)
	}
	if n != length {
		return Uploaded{}, fmt.Errorf("upload of %s ended after %d of %d bytes", path, n, length)
	}
	if keep {
		if err := tmp.Chmod(perm); err != nil {
			return Uploaded{}, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	// No fsync: like upstream and scp we leave flushing to the kernel (it
	// costs ~1.3 s per GiB here). The rename still guarantees that readers
	// never see a partial file, and a server re-sends what a power cut lost.
	if err := tmp.Close(); err != nil {
		return Uploaded{}, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Uploaded{}, fmt.Errorf("writing %s: %w", path, err)
	}
	ok = true
	return Uploaded{Path: path, Length: n, SHA1: hexSum(h1)}, nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// Open opens remotePath for download. found is false when there is no such
// file (the service then answers null, as upstream).
func (s *Store) Open(remotePath string) (f *os.File, size int64, found bool, err error) {
	path, err := s.Resolve(remotePath)
	if err != nil {
		return nil, 0, false, err
	}
	f, err = os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, false, err
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, false, fmt.Errorf("%s is a directory, not a file", path)
	}
	return f, st.Size(), true, nil
}
