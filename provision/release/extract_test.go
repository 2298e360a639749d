package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// archiveEntry is one entry of an archive a test builds.
type archiveEntry struct {
	name string
	kind byte // tar type flag
	mode int64
	link string
	body string
	size int // when > 0, body is that many zero bytes
}

func (e archiveEntry) content() []byte {
	if e.size > 0 {
		return make([]byte, e.size)
	}
	return []byte(e.body)
}

func fileEntry(name, body string) archiveEntry {
	return archiveEntry{name: name, kind: tar.TypeReg, mode: 0o644, body: body}
}

func symlinkEntry(name, target string) archiveEntry {
	return archiveEntry{name: name, kind: tar.TypeSymlink, mode: 0o777, link: target}
}

// canCreateSymlinks says whether this test may create symlinks: Windows
// needs SeCreateSymbolicLinkPrivilege (or developer mode), and Wine 8 has
// none to give.
func canCreateSymlinks(t *testing.T) bool {
	dir := t.TempDir()
	err := os.Symlink("target", filepath.Join(dir, "link"))
	if err == nil { // Wine may report success and make nothing
		_, err = os.Lstat(filepath.Join(dir, "link"))
	}
	if err != nil && runtime.GOOS != "windows" {
		t.Fatal(err)
	}
	return err == nil
}

// refusedForItsSymlinks checks that, where no symlink can be made, an
// archive with symlinks is refused whole, naming the entry and leaving
// nothing behind; it returns the entries without the symlinks.
func refusedForItsSymlinks(t *testing.T, l extractLayout, entries []archiveEntry, write func(*testing.T, string, []archiveEntry)) []archiveEntry {
	t.Helper()
	write(t, l.archive, entries)
	err := Extract(l.archive, l.dest, DefaultExtractLimits)
	if err == nil || !strings.Contains(err.Error(), "cannot be created as a symlink") || !strings.Contains(err.Error(), "nothing was extracted") {
		t.Fatalf("an archive with a symlink where none can be made: %v", err)
	}
	l.assertNothingLeft(t)
	var rest []archiveEntry
	for _, e := range entries {
		if e.kind != tar.TypeSymlink {
			rest = append(rest, e)
		}
	}
	return rest
}

func hardlinkEntry(name, target string) archiveEntry {
	return archiveEntry{name: name, kind: tar.TypeLink, mode: 0o644, link: target}
}

func writeTarGz(t *testing.T, path string, entries []archiveEntry) {
	t.Helper()
	var buf bytes.Buffer
	// Stored, not compressed: the archives hold whole tentacle binaries,
	// and deflate under the race detector took minutes per test package.
	gz, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		body := e.content()
		hdr := &tar.Header{Name: e.name, Typeflag: e.kind, Mode: e.mode, Linkname: e.link, Format: tar.FormatPAX}
		if e.kind == tar.TypeXGlobalHeader {
			hdr.PAXRecords = map[string]string{"comment": "commit id"}
		}
		if e.kind == tar.TypeReg {
			hdr.Size = int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, path string, entries []archiveEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		body := e.content()
		switch e.kind {
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			body = []byte(e.link)
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | 0o755)
		case tar.TypeFifo:
			h.SetMode(fs.ModeNamedPipe | 0o644)
		case tar.TypeChar:
			h.SetMode(fs.ModeDevice | fs.ModeCharDevice | 0o644)
		default:
			h.SetMode(fs.FileMode(e.mode))
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// extractLayout is where a test extracts: base/parent/dest, the archive in
// base, and base/outside as the place an evil archive aims at.
type extractLayout struct {
	base, parent, dest, outside, archive string
}

func newExtractLayout(t *testing.T, archiveName string) extractLayout {
	base := t.TempDir()
	l := extractLayout{
		base:    base,
		parent:  filepath.Join(base, "parent"),
		dest:    filepath.Join(base, "parent", "dest"),
		outside: filepath.Join(base, "outside"),
		archive: filepath.Join(base, archiveName),
	}
	for _, d := range []string{l.parent, l.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// assertNothingLeft checks a refused extraction left no trace: no
// destination, no temporary directory, nothing outside.
func (l extractLayout) assertNothingLeft(t *testing.T) {
	t.Helper()
	for _, dir := range []string{l.parent, l.outside} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("left behind after a refused extraction: %s", filepath.Join(dir, e.Name()))
		}
	}
	ents, _ := os.ReadDir(l.base)
	for _, e := range ents {
		if n := e.Name(); n != "parent" && n != "outside" && n != filepath.Base(l.archive) {
			t.Errorf("written outside the destination: %s", filepath.Join(l.base, n))
		}
	}
}

func TestExtractTarGzWritesEveryEntry(t *testing.T) {
	l := newExtractLayout(t, "ok.tar.gz")
	entries := []archiveEntry{
		{name: "pax_global_header", kind: tar.TypeXGlobalHeader},
		{name: "./", kind: tar.TypeDir, mode: 0o755},
		{name: "tentacle/", kind: tar.TypeDir, mode: 0o755},
		{name: "tentacle/Tentacle", kind: tar.TypeReg, mode: 0o755, body: "#!binary"},
		fileEntry("tentacle/README.md", "read me"),
		fileEntry("deep/er/file.txt", "implicit parents"),
		symlinkEntry("tentacle/current", "Tentacle"),
		symlinkEntry("tentacle/up", "../deep/er/file.txt"),
		hardlinkEntry("tentacle/Tentacle.hard", "tentacle/Tentacle"),
	}
	symlinks := canCreateSymlinks(t)
	if !symlinks {
		entries = refusedForItsSymlinks(t, l, entries, writeTarGz)
	}
	writeTarGz(t, l.archive, entries)
	if err := Extract(l.archive, l.dest, DefaultExtractLimits); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"tentacle/Tentacle":      "#!binary",
		"tentacle/README.md":     "read me",
		"deep/er/file.txt":       "implicit parents",
		"tentacle/Tentacle.hard": "#!binary",
	}
	if symlinks {
		want["tentacle/current"] = "#!binary"
		want["tentacle/up"] = "implicit parents"
	}
	for name, want := range want {
		got, err := os.ReadFile(filepath.Join(l.dest, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(l.dest, "tentacle", "Tentacle"))
		if err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("tentacle/Tentacle lost its executable bit: %v %v", fi.Mode(), err)
		}
	}
	if link, err := os.Readlink(filepath.Join(l.dest, "tentacle", "current")); symlinks && (err != nil || link != "Tentacle") {
		t.Errorf("tentacle/current -> %q, %v; want a symlink to Tentacle", link, err)
	}
	// Only dest appears in the parent: the temporary directory was renamed.
	ents, _ := os.ReadDir(l.parent)
	if len(ents) != 1 || ents[0].Name() != "dest" {
		t.Errorf("parent holds %v, want only dest", ents)
	}
}

func TestExtractZipWritesEveryEntry(t *testing.T) {
	l := newExtractLayout(t, "ok.zip")
	entries := []archiveEntry{
		{name: "tentacle/", kind: tar.TypeDir},
		{name: "tentacle/Tentacle.exe", kind: tar.TypeReg, mode: 0o755, body: "MZ"},
		symlinkEntry("tentacle/current", "Tentacle.exe"),
	}
	symlinks := canCreateSymlinks(t)
	if !symlinks {
		entries = refusedForItsSymlinks(t, l, entries, writeZip)
	}
	writeZip(t, l.archive, entries)
	if err := Extract(l.archive, l.dest, DefaultExtractLimits); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(l.dest, "tentacle", "Tentacle.exe")); err != nil || string(got) != "MZ" {
		t.Errorf("tentacle/Tentacle.exe = %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(l.dest, "tentacle", "current")); symlinks && (err != nil || string(got) != "MZ") {
		t.Errorf("tentacle/current = %q, %v", got, err)
	}
}

// TestExtractRefusesEvilArchives: every refused archive names the entry and
// why, and leaves nothing behind (not even the entries before the bad one).
func TestExtractRefusesEvilArchives(t *testing.T) {
	small := ExtractLimits{MaxEntryBytes: 1 << 20, MaxTotalBytes: 3 << 19, MaxEntries: 5}
	cases := []struct {
		name    string
		zip     bool
		entries func(l extractLayout) []archiveEntry
		limits  ExtractLimits
		want    string // in the error, after the entry's name
		entry   string
	}{
		{
			name: "archiver/v3 CVE-2024-0406: symlink to outside, then a file through it",
			entries: func(l extractLayout) []archiveEntry {
				return []archiveEntry{symlinkEntry("evil", filepath.ToSlash(l.outside)), fileEntry("evil/pwned.txt", "x")}
			},
			entry: "evil", want: "is a symlink to the absolute path",
		},
		{
			name: "relative symlink escaping, then a file through it",
			entries: func(l extractLayout) []archiveEntry {
				return []archiveEntry{symlinkEntry("evil", "../../outside"), fileEntry("evil/pwned.txt", "x")}
			},
			entry: "evil", want: "outside the destination",
		},
		{
			name: "file written through an in-archive symlink",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{fileEntry("sub/a", "a"), symlinkEntry("evil", "sub"), fileEntry("evil/pwned.txt", "x")}
			},
			entry: "evil/pwned.txt", want: `goes through the symlink "evil"`,
		},
		{
			name: "symlink through a symlink to the root: x -> d/../outside, d -> .",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{symlinkEntry("x", "d/../outside"), symlinkEntry("d", ".")}
			},
			entry: "x", want: `goes through the symlink "d"`,
		},
		{
			name: "symlink whose lexically local target crosses another symlink",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{symlinkEntry("a/x", "../d/../y"), symlinkEntry("d", "a")}
			},
			entry: "a/x", want: `goes through the symlink "d"`,
		},
		{
			name: "prefix-bypass sibling ../dest-sibling/x.txt",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{fileEntry("ok.txt", "fine"), fileEntry("../dest-sibling/x.txt", "x")}
			},
			entry: "../dest-sibling/x.txt", want: "points outside the destination",
		},
		{
			name:    "dot-dot inside a longer path",
			entries: func(extractLayout) []archiveEntry { return []archiveEntry{fileEntry("a/b/../../../x.txt", "x")} },
			entry:   "a/b/../../../x.txt", want: "points outside the destination",
		},
		{
			name: "absolute path",
			entries: func(l extractLayout) []archiveEntry {
				return []archiveEntry{fileEntry(filepath.ToSlash(l.outside)+"/abs.txt", "x")}
			},
			want: "has an absolute path",
		},
		{
			name:    "backslash traversal meant for Windows",
			entries: func(extractLayout) []archiveEntry { return []archiveEntry{fileEntry(`..\..\x.txt`, "x")} },
			entry:   `..\\..\\x.txt`, want: "backslash",
		},
		{
			name:    "hard link to a file outside",
			entries: func(extractLayout) []archiveEntry { return []archiveEntry{hardlinkEntry("h", "../../outside/secret")} },
			entry:   "h", want: "points outside the destination",
		},
		{
			name:    "hard link to an absolute path",
			entries: func(extractLayout) []archiveEntry { return []archiveEntry{hardlinkEntry("h", "/etc/passwd")} },
			entry:   "h", want: "has an absolute path",
		},
		{
			name: "hard link to a symlink that leads outside the archive's files",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{symlinkEntry("s", "a"), fileEntry("a", "x"), hardlinkEntry("h", "s")}
			},
			entry: "h", want: "not a file earlier in the archive",
		},
		{
			name: "hard link to an entry not yet extracted",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{hardlinkEntry("h", "later"), fileEntry("later", "x")}
			},
			entry: "h", want: "not a file earlier in the archive",
		},
		{
			name: "character device",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{{name: "null", kind: tar.TypeChar, mode: 0o666}}
			},
			entry: "null", want: "is a device file",
		},
		{
			name: "block device",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{{name: "sda", kind: tar.TypeBlock, mode: 0o660}}
			},
			entry: "sda", want: "is a device file",
		},
		{
			name: "FIFO",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{{name: "pipe", kind: tar.TypeFifo, mode: 0o644}}
			},
			entry: "pipe", want: "is a FIFO",
		},
		{
			name: "duplicate file overwriting an earlier one",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{fileEntry("tentacle/Tentacle", "good"), fileEntry("tentacle/Tentacle", "evil")}
			},
			entry: "tentacle/Tentacle", want: "appears twice",
		},
		{
			name:    "file replacing a symlink",
			entries: func(extractLayout) []archiveEntry { return []archiveEntry{symlinkEntry("a", "b"), fileEntry("a", "x")} },
			entry:   "a", want: "appears twice",
		},
		{
			name: "file then symlink of the same directory name",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{fileEntry("d/x", "x"), symlinkEntry("d", "e")}
			},
			entry: "d", want: "appears twice",
		},
		{
			name: "decompression bomb: one entry over the per-file bound",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{{name: "bomb", kind: tar.TypeReg, mode: 0o644, size: 4 << 20}}
			},
			limits: small, entry: "bomb", want: "larger than the limit of 1048576 bytes per file",
		},
		{
			name: "entries together over the total bound",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{{name: "a", kind: tar.TypeReg, size: 1 << 20}, {name: "b", kind: tar.TypeReg, size: 1 << 20}}
			},
			limits: small, entry: "b", want: "past the limit of 1572864 bytes in all",
		},
		{
			name: "too many entries",
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{fileEntry("1", ""), fileEntry("2", ""), fileEntry("3", ""), fileEntry("4", ""), fileEntry("5", ""), fileEntry("6", "")}
			},
			limits: small, entry: "6", want: "limit of 5 entries",
		},
		{
			name: "zip-slip (CVE-2025-3445)", zip: true,
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{fileEntry("ok.txt", "x"), fileEntry("../dest-sibling/evil.txt", "x")}
			},
			entry: "../dest-sibling/evil.txt", want: "points outside the destination",
		},
		{
			name: "zip symlink escaping", zip: true,
			entries: func(l extractLayout) []archiveEntry {
				return []archiveEntry{symlinkEntry("evil", "../../outside"), fileEntry("evil/pwned.txt", "x")}
			},
			entry: "evil", want: "outside the destination",
		},
		{
			name: "zip duplicate", zip: true,
			entries: func(extractLayout) []archiveEntry { return []archiveEntry{fileEntry("a", "1"), fileEntry("a", "2")} },
			entry:   "a", want: "appears twice",
		},
		{
			name: "zip bomb", zip: true,
			entries: func(extractLayout) []archiveEntry {
				return []archiveEntry{{name: "bomb", kind: tar.TypeReg, size: 4 << 20}}
			},
			limits: small, entry: "bomb", want: "larger than the limit",
		},
		{
			name: "zip FIFO", zip: true,
			entries: func(extractLayout) []archiveEntry { return []archiveEntry{{name: "pipe", kind: tar.TypeFifo}} },
			entry:   "pipe", want: "is a FIFO",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "evil.tar.gz"
			if tc.zip {
				name = "evil.zip"
			}
			l := newExtractLayout(t, name)
			entries := tc.entries(l)
			if tc.zip {
				writeZip(t, l.archive, entries)
			} else {
				writeTarGz(t, l.archive, entries)
			}
			limits := tc.limits
			if limits == (ExtractLimits{}) {
				limits = DefaultExtractLimits
			}
			err := Extract(l.archive, l.dest, limits)
			if err == nil {
				t.Fatal("extracted an evil archive")
			}
			msg := err.Error()
			if !canCreateSymlinks(t) && strings.Contains(msg, "cannot be created as a symlink") && strings.Contains(msg, "nothing was extracted") {
				// Where no symlink can be made (Windows without the
				// privilege, Wine), an archive with one is refused for that
				// before its later entries are checked.
				t.Logf("refused for a symlink this system cannot make: %s", msg)
			} else if !strings.Contains(msg, tc.want) || !strings.Contains(msg, `"`+tc.entry) || !strings.Contains(msg, "nothing was extracted") {
				t.Errorf("error = %q; want it to name entry %q and say %q", msg, tc.entry, tc.want)
			}
			l.assertNothingLeft(t)
		})
	}
}

func TestExtractRefusesAnExistingDestination(t *testing.T) {
	l := newExtractLayout(t, "ok.tar.gz")
	writeTarGz(t, l.archive, []archiveEntry{fileEntry("a", "new")})
	if err := os.Mkdir(l.dest, 0o755); err != nil {
		t.Fatal(err)
	}
	err := Extract(l.archive, l.dest, DefaultExtractLimits)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v; want the destination refused", err)
	}
}

func TestExtractRefusesWhatIsNotAnArchive(t *testing.T) {
	for body, want := range map[string]string{
		"":                               "empty or truncated",
		"#!/bin/sh\necho not an archive": "neither a tar.gz nor a zip",
		"\x1f\x8b\x08\x00truncated":      "corrupt or truncated",
	} {
		l := newExtractLayout(t, "bad.tar.gz")
		if err := os.WriteFile(l.archive, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Extract(l.archive, l.dest, DefaultExtractLimits)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v; want %q", body, err, want)
		}
		l.assertNothingLeft(t)
	}
}

func TestExtractRefusesATruncatedTarGz(t *testing.T) {
	l := newExtractLayout(t, "cut.tar.gz")
	writeTarGz(t, l.archive, []archiveEntry{fileEntry("a", strings.Repeat("tentacle ", 20000)), fileEntry("b", "x")})
	b, _ := os.ReadFile(l.archive)
	if err := os.WriteFile(l.archive, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	err := Extract(l.archive, l.dest, DefaultExtractLimits)
	if err == nil {
		t.Fatal("extracted a truncated archive")
	}
	l.assertNothingLeft(t)
}
