//go:build unix

package files

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Uploads create folders and files as the agent's umask says, and keep the
// mode of a file they replace (issue 13 item 7: they were always 0755/0644).
func TestUploadHonoursTheUmaskAndKeepsAnExistingMode(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	home := t.TempDir()
	s := &Store{Home: home}
	body := []byte("payload")
	up, err := s.Upload("new/dir/file.txt", bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(up.Path); m != 0o640 {
		t.Errorf("new file: %o, want 0640 under umask 027", m)
	}
	if m := mode(filepath.Join(home, "new", "dir")); m != 0o750 {
		t.Errorf("new folder: %o, want 0750 under umask 027", m)
	}
	private := filepath.Join(home, "secret.txt")
	if err := os.WriteFile(private, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(private, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if m := mode(private); m != 0o600 {
		t.Errorf("an upload over a 0600 file left it %o", m)
	}
	wide := filepath.Join(home, "script.sh")
	os.WriteFile(wide, []byte("old"), 0o755)
	os.Chmod(wide, 0o755) // past the umask
	if _, err := s.Upload(wide, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if m := mode(wide); m != 0o755 {
		t.Errorf("an upload over a 0755 file left it %o", m)
	}
}

// A UNC path is refused on Unix instead of becoming folders under /.
func TestUploadRefusesUNCPathsOnUnix(t *testing.T) {
	s := &Store{Home: t.TempDir()}
	for _, p := range []string{`\\server\share\y.txt`, "//server/share/y.txt"} {
		_, err := s.Upload(p, strings.NewReader("x"), 1)
		if err == nil || !strings.Contains(err.Error(), "UNC") {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat("/server"); err == nil {
		t.Error("/server exists")
	}
}
