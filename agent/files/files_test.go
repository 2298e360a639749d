package files

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestResolveFollowsUpstreamRules(t *testing.T) {
	s := &Store{Home: "/home/tentacle"}
	cases := map[string]string{
		`Files\pkg.1.0.nupkg`: "/home/tentacle/Files/pkg.1.0.nupkg",
		"Files/a/../b.txt":    "/home/tentacle/Files/b.txt",
		"/tmp/x.zip":          "/tmp/x.zip",
	}
	if runtime.GOOS == "windows" {
		s.Home = `C:\Octopus\Tentacle`
		cases = map[string]string{
			`Files\pkg.1.0.nupkg`:     `C:\Octopus\Tentacle\Files\pkg.1.0.nupkg`,
			"Files/a/../b.txt":        `C:\Octopus\Tentacle\Files\b.txt`,
			`D:\Temp\x.zip`:           `D:\Temp\x.zip`,
			`\\server\share\y.txt`:    `\\server\share\y.txt`,
			`C:\Octopus\..\Windows\x`: `C:\Windows\x`,
		}
	}
	for in, want := range cases {
		if got, err := s.Resolve(in); err != nil || got != want {
			t.Errorf("%q -> %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := s.Resolve("  "); err == nil {
		t.Error("empty path accepted")
	}
}

func TestUploadIsAtomicAndHashed(t *testing.T) {
	home := t.TempDir()
	s := &Store{Home: home}
	payload := bytes.Repeat([]byte("tentacle"), 1<<17)
	up, err := s.Upload(`Files\sub\pkg.zip`, bytes.NewReader(payload), int64(len(payload)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(payload)
	if up.Path != filepath.Join(home, "Files", "sub", "pkg.zip") || up.Length != int64(len(payload)) || up.SHA1 != hex.EncodeToString(sum[:]) {
		t.Errorf("%+v", up)
	}
	got, _ := os.ReadFile(up.Path)
	if !bytes.Equal(got, payload) {
		t.Error("content differs")
	}

	// A stream that ends early leaves the previous file untouched and no temp file.
	_, err = s.Upload(`Files\sub\pkg.zip`, io.LimitReader(bytes.NewReader(payload), 100), int64(len(payload)))
	if err == nil {
		t.Fatal("a short upload succeeded")
	}
	got, _ = os.ReadFile(up.Path)
	if !bytes.Equal(got, payload) {
		t.Error("a failed upload changed the existing file")
	}
	ents, _ := os.ReadDir(filepath.Dir(up.Path))
	if len(ents) != 1 {
		t.Errorf("leftovers after a failed upload: %v", ents)
	}

	// A reader that fails mid-way leaves nothing for a new file.
	_, err = s.Upload("new.bin", io.MultiReader(bytes.NewReader(payload[:10]), errReader{}), 100)
	if err == nil {
		t.Fatal("a failing reader succeeded")
	}
	if _, err := os.Stat(filepath.Join(home, "new.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed upload left a file behind")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestUploadRefusedWithoutFreeSpace(t *testing.T) {
	s := &Store{Home: t.TempDir(), MinFreeBytes: 1 << 62}
	if _, err := s.Upload("x", bytes.NewReader(nil), 0); err == nil {
		t.Error("upload accepted although it would leave less than MinFreeBytes")
	}
}

func TestOpen(t *testing.T) {
	home := t.TempDir()
	s := &Store{Home: home}
	os.WriteFile(filepath.Join(home, "a.txt"), []byte("abc"), 0o644)
	f, size, found, err := s.Open("a.txt")
	if err != nil || !found || size != 3 {
		t.Fatal(size, found, err)
	}
	f.Close()
	if _, _, found, err := s.Open("missing"); found || err != nil {
		t.Errorf("missing: %v %v", found, err)
	}
	if _, _, _, err := s.Open("."); err == nil {
		t.Error("a directory was opened for download")
	}
}
