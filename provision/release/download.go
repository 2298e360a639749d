package release

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"aead.dev/minisign"
)

// BuiltinPublicKey is the minisign public key release builds pin (set with
// -ldflags -X); empty in development builds, which then need --pubkey.
var BuiltinPublicKey = ""

// ChooseKey is the public key to verify with: the first of keys that is
// set (callers list theirs in order: a flag, the environment, a setting),
// else BuiltinPublicKey.
func ChooseKey(keys ...string) string {
	for _, k := range keys {
		if k != "" {
			return k
		}
	}
	return BuiltinPublicKey
}

// Trust says how checksums.txt is trusted.
type Trust struct {
	// PublicKey is the minisign public key (RW…) checksums.txt must be
	// signed with; "" checks no signature (and says so).
	PublicKey string
	// SkipSignature skips the signature check even with a key.
	SkipSignature bool
}

// Progress follows one download.
type Progress interface {
	// Start begins a file of total bytes (-1 unknown), done of them
	// already on disk from an earlier run.
	Start(name string, total, done int64)
	// Add counts n more bytes.
	Add(n int)
	// Finish ends the file; err is nil when it is complete.
	Finish(err error)
}

// ErrUnverified marks a file or checksums.txt that failed verification (as
// opposed to one that could not be fetched): nothing of it is kept.
var ErrUnverified = errors.New("verification failed")

// unverified is an error of ErrUnverified with its own one-sentence message.
type unverified struct{ msg string }

func (u *unverified) Error() string        { return u.msg }
func (u *unverified) Is(target error) bool { return target == ErrUnverified }

func unverifiedf(format string, args ...any) error {
	return &unverified{msg: fmt.Sprintf(format, args...)}
}

// Checksums is a version's checksums.txt: file name → SHA-256 (hex).
type Checksums map[string]string

// ParseChecksums reads sha256sum's format: 64 hex digits, two spaces (or a
// space and *), the name.
func ParseChecksums(data []byte) (Checksums, error) {
	out := Checksums{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		if len(line) < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') {
			return nil, fmt.Errorf("%s has a malformed line %q; the feed is corrupt", ChecksumsFile, line)
		}
		sum := strings.ToLower(line[:64])
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%s has a malformed line %q; the feed is corrupt", ChecksumsFile, line)
		}
		out[line[66:]] = sum
	}
	return out, sc.Err()
}

// FetchChecksums reads version v's checksums.txt from f and verifies its
// signature as t says. It returns the raw file and the signature (nil when
// not checked or not there), so a mirror can copy both.
func FetchChecksums(ctx context.Context, f Feed, v Version, t Trust) (Checksums, []byte, []byte, error) {
	raw, err := readSmall(ctx, f, v, ChecksumsFile)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil, nil, fmt.Errorf("version %s in feed %s has no %s, so nothing of it can be verified; use another version or feed", v.Version, f, ChecksumsFile)
		}
		return nil, nil, nil, err
	}
	sig, sigErr := readSmall(ctx, f, v, SignatureFile)
	if sigErr != nil && !errors.Is(sigErr, ErrNotFound) {
		return nil, nil, nil, sigErr
	}
	if sigErr != nil {
		sig = nil
	}
	if t.PublicKey != "" && !t.SkipSignature {
		pub, err := ParsePublicKey(t.PublicKey)
		if err != nil {
			return nil, nil, nil, err
		}
		if sig == nil {
			return nil, nil, nil, unverifiedf("version %s in feed %s is not signed (no %s) but a release key is pinned; use a signed feed", v.Version, f, SignatureFile)
		}
		if !minisign.Verify(pub, raw, sig) {
			return nil, nil, nil, unverifiedf("the signature of %s of version %s in feed %s does not match the pinned release key; the feed may be tampered with: do not use it", ChecksumsFile, v.Version, f)
		}
	}
	sums, err := ParseChecksums(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	return sums, raw, sig, nil
}

// ParsePublicKey reads a minisign public key: the RW… line, or the whole
// .pub file (comment line first).
func ParsePublicKey(key string) (minisign.PublicKey, error) {
	var pub minisign.PublicKey
	if err := pub.UnmarshalText([]byte(strings.TrimSpace(lastLine(key)))); err != nil {
		return pub, fmt.Errorf("the release public key is not a minisign public key (%v); give the RW… line of the .pub file", err)
	}
	return pub, nil
}

// lastLine lets a key be given as the whole .pub file (comment line first).
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func readSmall(ctx context.Context, f Feed, v Version, name string) ([]byte, error) {
	b, err := f.Open(ctx, v, name, 0)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(io.LimitReader(b, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s of version %s from %s failed (%v); run the command again", name, v.Version, f, err)
	}
	if len(data) > maxIndexSize {
		return nil, fmt.Errorf("%s of version %s in %s is larger than %d bytes; the feed is corrupt", name, v.Version, f, maxIndexSize)
	}
	return data, nil
}

// PartialSuffix marks a download in progress; a re-run continues it.
const PartialSuffix = ".partial"

// Download fetches file name of version v into dir, resuming dir/name.partial
// when an earlier run left one, checks its SHA-256 against sums, and only then
// renames it to dir/name. A file whose checksum does not match is deleted; a
// download cut short keeps its .partial so the next run continues it.
func Download(ctx context.Context, f Feed, v Version, name string, sums Checksums, dir string, p Progress) (string, error) {
	want, ok := sums[name]
	if !ok {
		return "", fmt.Errorf("%s of version %s is not listed in its %s, so it cannot be verified; the feed is incomplete", name, v.Version, ChecksumsFile)
	}
	if !safeName(name) {
		return "", fmt.Errorf("feed %s names a file %q that is not a plain file name", f, name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s (%v); choose another --to", dir, err)
	}
	dest := filepath.Join(dir, name)
	if verifyFile(dest, want) == nil {
		return dest, nil // already downloaded and intact
	}
	partial := dest + PartialSuffix
	out, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("cannot write %s (%v); choose another --to", partial, err)
	}
	defer out.Close()
	h := sha256.New()
	have, err := io.Copy(h, out)
	if err != nil {
		return "", err
	}
	body, err := f.Open(ctx, v, name, have)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			os.Remove(partial)
			return "", fmt.Errorf("version %s in feed %s has no %s; check --os, --arch and --kind", v.Version, f, name)
		}
		return "", err
	}
	defer body.Close()
	if body.Offset != have {
		// The feed ignored the range: start over from its first byte.
		if err := out.Truncate(0); err != nil {
			return "", err
		}
		h.Reset()
		have = 0
	}
	if _, err := out.Seek(have, io.SeekStart); err != nil {
		return "", err
	}
	if p != nil {
		p.Start(name, body.Size, have)
	}
	n, copyErr := io.CopyBuffer(io.MultiWriter(out, h, progressWriter{p}), body, make([]byte, 256<<10))
	have += n
	if copyErr == nil && body.Size >= 0 && have < body.Size {
		copyErr = io.ErrUnexpectedEOF
	}
	if copyErr != nil {
		if ctx.Err() != nil {
			copyErr = ctx.Err()
		}
		if p != nil {
			p.Finish(copyErr)
		}
		return "", fmt.Errorf("the download of %s was cut after %d bytes (%v); run the command again to continue it", name, have, copyErr)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		out.Close()
		os.Remove(partial)
		err := unverifiedf("%s of version %s from %s does not match its SHA-256 in %s (got %s, want %s); it was deleted: the feed is corrupt or tampered with, do not use it", name, v.Version, f, ChecksumsFile, got, want)
		if p != nil {
			p.Finish(err)
		}
		return "", err
	}
	// No fsync: it halved the throughput (docs/benchmarks.md), and a file
	// cut by a crash is caught anyway: Download re-verifies an existing
	// file before it reuses it.
	if err := out.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(partial, dest); err != nil {
		return "", err
	}
	if p != nil {
		p.Finish(nil)
	}
	return dest, nil
}

type progressWriter struct{ p Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	if w.p != nil {
		w.p.Add(len(b))
	}
	return len(b), nil
}

// verifyFile checks path's SHA-256 against want (hex).
func verifyFile(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: SHA-256 %s, want %s", path, got, want)
	}
	return nil
}
