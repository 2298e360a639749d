//go:build !windows

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func contributing(k string) string {
	return map[string]string{ContributeEnvironmentVariable: "true"}[k]
}

// writeDotEnv makes dir (0700) with a .env of the given mode in it.
func writeDotEnv(t *testing.T, mode os.FileMode) (dir, path string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, DotEnvName)
	if err := os.WriteFile(path, []byte("TENTACLE_TRUSTED_SERVERS=[{\"Thumbprint\":\"ATTACKER\"}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func wantRefused(t *testing.T, path string, s *Settings, err error, mention ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s was read", path)
	}
	if _, ok := err.(*UserError); !ok {
		t.Errorf("not a user error: %T %v", err, err)
	}
	for _, m := range append([]string{path}, mention...) {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("the error does not mention %q: %v", m, err)
		}
	}
	if _, ok := s.Get(KeyTrustedServers); ok {
		t.Error("the trust list was taken from a refused .env")
	}
}

func TestDotEnvWritableByOthersIsRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o620, 0o602, 0o666} {
		_, path := writeDotEnv(t, mode)
		s := NewSettings("")
		_, _, err := ApplyEnvironment(s, contributing, path)
		wantRefused(t, path, s, err, fmt.Sprintf("mode %04o", mode), "chmod go-w")
	}
	// Readable by others is fine: it is not a secret store.
	_, path := writeDotEnv(t, 0o644)
	s := NewSettings("")
	if _, read, err := ApplyEnvironment(s, contributing, path); err != nil || read != path {
		t.Fatalf("a 0644 .env owned by us: read %q, %v", read, err)
	}
	if _, ok := s.Get(KeyTrustedServers); !ok {
		t.Error("not applied")
	}
}

func TestDotEnvInAFolderOthersCanWriteIsRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o770, 0o1777} {
		dir, path := writeDotEnv(t, 0o600)
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		s := NewSettings("")
		_, _, err := ApplyEnvironment(s, contributing, path)
		wantRefused(t, path, s, err, dir)
	}
}

// A symbolic link is judged by the file it points to, on the open file.
func TestDotEnvSymlinkIsJudgedByItsTarget(t *testing.T) {
	_, target := writeDotEnv(t, 0o666)
	dir := filepath.Join(t.TempDir(), "bin")
	os.Mkdir(dir, 0o700)
	link := filepath.Join(dir, DotEnvName)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	s := NewSettings("")
	_, _, err := ApplyEnvironment(s, contributing, link)
	wantRefused(t, link, s, err, "mode 0666")

	os.Chmod(target, 0o600)
	if _, read, err := ApplyEnvironment(s, contributing, link); err != nil || read != link {
		t.Fatalf("a link to a 0600 file of ours: read %q, %v", read, err)
	}
}

func TestDotEnvOwnedBySomeoneElseIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	_, path := writeDotEnv(t, 0o600)
	if err := os.Chown(path, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	s := NewSettings("")
	_, _, err := ApplyEnvironment(s, contributing, path)
	wantRefused(t, path, s, err, "uid 4242")
}

// A FIFO in place of the file is refused, not waited on forever.
func TestDotEnvThatIsNotARegularFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DotEnvName)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip(err)
	}
	s := NewSettings("")
	_, _, err := ApplyEnvironment(s, contributing, path)
	wantRefused(t, path, s, err, "not a regular file")
}

// The folder that counts is the real binary's, not a link's.
func TestDotEnvPathResolvesTheBinary(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "opt", "tentacle")
	os.MkdirAll(filepath.Dir(real), 0o700)
	os.WriteFile(real, nil, 0o700)
	linkDir := filepath.Join(root, "bin")
	os.Mkdir(linkDir, 0o700)
	os.Symlink(real, filepath.Join(linkDir, "tentacle"))
	realRoot, _ := filepath.EvalSymlinks(root)
	if got, want := DotEnvPath(filepath.Join(linkDir, "tentacle")), filepath.Join(realRoot, "opt", DotEnvName); got != want {
		t.Errorf("DotEnvPath = %s, want %s", got, want)
	}
}
