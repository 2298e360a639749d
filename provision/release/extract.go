package release

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
)

// ExtractLimits bound what one archive may unpack to, so that a
// decompression bomb stops at the bound instead of filling the disk. Sizes
// count the bytes actually written, not what the headers claim.
type ExtractLimits struct {
	MaxEntryBytes int64 // one file
	MaxTotalBytes int64 // all files together
	MaxEntries    int   // entries of any kind
}

// DefaultExtractLimits fit a release archive (one ~30 MB binary and a README)
// with a wide margin.
var DefaultExtractLimits = ExtractLimits{
	MaxEntryBytes: 512 << 20,
	MaxTotalBytes: 1 << 30,
	MaxEntries:    10000,
}

// maxSymlinkTargetBytes bounds a zip symlink's target, which is stored as the
// entry's content.
const maxSymlinkTargetBytes = 4096

// Extract unpacks a tar.gz or zip archive into destDir, which must not exist
// yet. It unpacks into a temporary directory beside destDir through os.Root
// and renames it into place only when every entry succeeded, so a refused
// archive leaves nothing behind. Refused, each naming the entry: absolute
// paths and `..`, symlinks whose target leaves the archive or goes through
// another symlink, entries written through a symlink, hard links to anything
// but a file unpacked before, device and FIFO entries, a second entry with
// the same name, and entries or totals over limits.
func Extract(archive, destDir string, limits ExtractLimits) error {
	if _, err := os.Lstat(destDir); err == nil {
		return config.Userf("Cannot extract %s: %s already exists; remove it or choose a new directory.", archive, destDir)
	}
	f, err := os.Open(archive)
	if err != nil {
		return config.Userf("Cannot open the archive %s: %v.", archive, errors.Unwrap(err))
	}
	defer f.Close()
	format, err := sniffArchive(f)
	if err != nil {
		return config.Userf("Cannot read the archive %s: %v.", archive, err)
	}
	parent := filepath.Dir(destDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, ".tentacle-extract-*")
	if err != nil {
		return fmt.Errorf("create a temporary directory beside %s: %w", destDir, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	x := &extractor{
		archive:  archive,
		root:     root,
		limits:   limits,
		files:    map[string]bool{},
		symlinks: map[string]string{},
	}
	switch format {
	case "tar.gz":
		err = x.tarGz(f)
	case "zip":
		err = x.zip(f)
	}
	if err == nil {
		err = x.createSymlinks()
	}
	root.Close()
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, destDir); err != nil {
		return fmt.Errorf("move the extracted archive into %s: %w", destDir, err)
	}
	done = true
	syncRenameDir(parent)
	return nil
}

// sniffArchive tells tar.gz from zip by their first bytes, whatever the file
// is called.
func sniffArchive(f *os.File) (string, error) {
	var magic [4]byte
	n, err := io.ReadFull(f, magic[:])
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		return "", serr
	}
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return "tar.gz", nil
	case n == 4 && bytes.Equal(magic[:], []byte("PK\x03\x04")), n == 4 && bytes.Equal(magic[:], []byte("PK\x05\x06")):
		return "zip", nil
	case err != nil && n < 2:
		return "", errors.New("it is empty or truncated")
	}
	return "", errors.New("it is neither a tar.gz nor a zip archive")
}

type extractor struct {
	archive string
	root    *os.Root
	limits  ExtractLimits
	entries int
	total   int64
	// files are the regular files written so far (hard links may point only
	// at these); symlinks are created last, once every other entry is in
	// place, so none can be written through.
	files    map[string]bool
	symlinks map[string]string
}

func (x *extractor) refuse(entry, format string, args ...any) error {
	return config.Userf("Refusing to extract %s: entry %q %s; nothing was extracted.", x.archive, entry, fmt.Sprintf(format, args...))
}

func (x *extractor) tarGz(f *os.File) error {
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return config.Userf("Cannot read the archive %s: %v; it is not a valid tar.gz.", x.archive, err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return config.Userf("Cannot read the archive %s: %v; it is corrupt or truncated.", x.archive, err)
		}
		var kind entryKind
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue // PAX defaults for what follows (git archive writes one); nothing to create
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archivers still write TypeRegA
			kind = kindFile
		case tar.TypeDir:
			kind = kindDir
		case tar.TypeSymlink:
			kind = kindSymlink
		case tar.TypeLink:
			kind = kindHardlink
		case tar.TypeChar, tar.TypeBlock:
			return x.refuse(hdr.Name, "is a device file")
		case tar.TypeFifo:
			return x.refuse(hdr.Name, "is a FIFO")
		default:
			return x.refuse(hdr.Name, "has the unsupported tar type %q", hdr.Typeflag)
		}
		err = x.entry(hdr.Name, kind, fs.FileMode(hdr.Mode).Perm(), hdr.Size, hdr.Linkname, tr)
		if err != nil {
			return err
		}
	}
}

func (x *extractor) zip(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return config.Userf("Cannot read the archive %s: %v; it is corrupt or truncated.", x.archive, err)
	}
	for _, zf := range zr.File {
		mode := zf.Mode()
		var kind entryKind
		switch {
		case mode&fs.ModeSymlink != 0:
			kind = kindSymlink
		case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
			kind = kindDir
		case mode&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			return x.refuse(zf.Name, "is a device file")
		case mode&fs.ModeNamedPipe != 0:
			return x.refuse(zf.Name, "is a FIFO")
		case mode.IsRegular():
			kind = kindFile
		default:
			return x.refuse(zf.Name, "has the unsupported file mode %v", mode)
		}
		rc, err := zf.Open()
		if err != nil {
			return config.Userf("Cannot read entry %q of %s: %v.", zf.Name, x.archive, err)
		}
		var link string
		if kind == kindSymlink {
			b, err := io.ReadAll(io.LimitReader(rc, maxSymlinkTargetBytes+1))
			if err != nil || len(b) > maxSymlinkTargetBytes {
				rc.Close()
				return x.refuse(zf.Name, "is a symlink with an unreadable or over-long target")
			}
			link = string(b)
		}
		err = x.entry(zf.Name, kind, mode.Perm(), int64(zf.UncompressedSize64), link, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type entryKind int

const (
	kindFile entryKind = iota
	kindDir
	kindSymlink
	kindHardlink
)

// localName checks an entry's name (or a hard link's target) and returns it
// cleaned, slash-separated.
func (x *extractor) localName(entry, name string) (string, error) {
	switch {
	case name == "":
		return "", x.refuse(entry, "has an empty name")
	case strings.ContainsAny(name, "\\\x00"):
		return "", x.refuse(entry, "has a backslash or NUL in its name")
	case path.IsAbs(name) || filepath.IsAbs(name) || filepath.VolumeName(name) != "":
		return "", x.refuse(entry, "has an absolute path")
	}
	clean := path.Clean(name)
	if !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", x.refuse(entry, "points outside the destination (`..` or a reserved name)")
	}
	// An entry whose path crosses a symlink of this archive would be written
	// wherever that link points.
	for dir := path.Dir(clean); dir != "."; dir = path.Dir(dir) {
		if _, ok := x.symlinks[dir]; ok {
			return "", x.refuse(entry, "goes through the symlink %q", dir)
		}
	}
	return clean, nil
}

func (x *extractor) entry(name string, kind entryKind, perm fs.FileMode, declared int64, link string, r io.Reader) error {
	x.entries++
	if x.entries > x.limits.MaxEntries {
		return x.refuse(name, "is past the limit of %d entries per archive", x.limits.MaxEntries)
	}
	clean, err := x.localName(name, name)
	if err != nil {
		return err
	}
	if clean == "." {
		if kind == kindDir {
			return nil
		}
		return x.refuse(name, "names the destination itself")
	}
	if _, ok := x.symlinks[clean]; ok || x.files[clean] {
		return x.refuse(name, "appears twice in the archive")
	}
	switch kind {
	case kindDir:
		if err := x.root.MkdirAll(clean, 0o755); err != nil {
			return x.refuse(name, "cannot be created as a directory (%v)", errors.Unwrap(err))
		}
	case kindSymlink:
		if link == "" || strings.ContainsAny(link, "\\\x00") {
			return x.refuse(name, "is a symlink with an empty or malformed target")
		}
		if path.IsAbs(link) || filepath.IsAbs(link) || filepath.VolumeName(link) != "" {
			return x.refuse(name, "is a symlink to the absolute path %q", link)
		}
		if !filepath.IsLocal(filepath.FromSlash(path.Join(path.Dir(clean), link))) {
			return x.refuse(name, "is a symlink to %q, outside the destination", link)
		}
		x.symlinks[clean] = link
	case kindHardlink:
		target, err := x.localName(name, link)
		if err != nil {
			return err
		}
		if !x.files[target] {
			return x.refuse(name, "is a hard link to %q, which is not a file earlier in the archive", link)
		}
		if err := x.mkParent(name, clean); err != nil {
			return err
		}
		if err := x.root.Link(target, clean); err != nil {
			return x.refuse(name, "cannot be created as a hard link (%v)", errors.Unwrap(err))
		}
		x.files[clean] = true
	case kindFile:
		return x.writeFile(name, clean, perm, declared, r)
	}
	return nil
}

func (x *extractor) mkParent(name, clean string) error {
	if dir := path.Dir(clean); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return x.refuse(name, "cannot be created: its directory %q cannot (%v)", dir, errors.Unwrap(err))
		}
	}
	return nil
}

func (x *extractor) writeFile(name, clean string, perm fs.FileMode, declared int64, r io.Reader) error {
	room := min(x.limits.MaxEntryBytes, x.limits.MaxTotalBytes-x.total)
	tooBig := func() error {
		if room == x.limits.MaxEntryBytes {
			return x.refuse(name, "is larger than the limit of %d bytes per file", x.limits.MaxEntryBytes)
		}
		return x.refuse(name, "takes the archive past the limit of %d bytes in all", x.limits.MaxTotalBytes)
	}
	if declared > room {
		return tooBig()
	}
	if err := x.mkParent(name, clean); err != nil {
		return err
	}
	// O_EXCL: a second entry of the same name, or one landing on a directory
	// or link, fails instead of replacing what is there.
	out, err := x.root.OpenFile(clean, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return x.refuse(name, "appears twice in the archive")
		}
		return x.refuse(name, "cannot be created (%v)", errors.Unwrap(err))
	}
	n, err := io.Copy(out, io.LimitReader(r, room+1))
	x.total += n
	if err == nil && n > room {
		out.Close()
		return tooBig()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return config.Userf("Cannot extract entry %q of %s: %v; nothing was extracted.", name, x.archive, err)
	}
	x.files[clean] = true
	return nil
}

// createSymlinks makes the archive's symlinks once every other entry is in
// place. A target that crosses another symlink is refused, because its
// lexical check above says nothing about where it really leads (`d -> .`
// makes `d/../x` leave the destination).
func (x *extractor) createSymlinks() error {
	names := make([]string, 0, len(x.symlinks))
	for name := range x.symlinks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		link := x.symlinks[name]
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := x.symlinks[dir]; ok {
				return x.refuse(name, "goes through the symlink %q", dir)
			}
		}
		at := path.Dir(name)
		for _, part := range strings.Split(link, "/") {
			if _, ok := x.symlinks[at]; ok && at != "." {
				return x.refuse(name, "is a symlink whose target %q goes through the symlink %q", link, at)
			}
			at = path.Join(at, part)
		}
		if err := x.mkParent(name, name); err != nil {
			return err
		}
		if err := x.root.Symlink(filepath.FromSlash(link), name); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return x.refuse(name, "appears twice in the archive")
			}
			return x.refuse(name, "cannot be created as a symlink (%v)", errors.Unwrap(err))
		}
	}
	return nil
}

// syncRenameDir makes a rename in dir durable; where directories cannot be synced
// (Windows) there is nothing to do.
func syncRenameDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
