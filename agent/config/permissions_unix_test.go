//go:build !windows

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A configuration file that already existed as 0644 (cloud-init
// write_files, touch, upstream's umask) gets the certificate: it must be
// owner-only from then on, and so must the machine key and an exported PFX.
func TestSecretsNeverLandInAFileOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tentacle.config")
	os.WriteFile(path, NewSettings(path).Marshal(), 0o644)
	os.Chmod(path, 0o644)
	mk := &UnixMachineKey{MachineIDPath: filepath.Join(dir, "no-machine-id"), GeneratedKeyPath: filepath.Join(dir, "etc", "machinekey")}
	if _, err := Update(path, func(s *Settings) error {
		cert, err := GenerateCertificate()
		if err != nil {
			return err
		}
		_, err = s.SetCertificate(cert, mk)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, mk.GeneratedKeyPath} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s is %04o after the secret was written, want 0600", p, st.Mode().Perm())
		}
	}

	pfx := filepath.Join(dir, "export.pfx")
	os.WriteFile(pfx, nil, 0o666)
	os.Chmod(pfx, 0o666)
	if err := WriteSecretFileAtomic(pfx, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(pfx); st.Mode().Perm() != 0o600 {
		t.Errorf("an existing 0666 file replaced by a secret is %04o", st.Mode().Perm())
	}
	// Files that are not secret keep their mode.
	plain := filepath.Join(dir, "thumbprint.txt")
	os.WriteFile(plain, nil, 0o644)
	WriteFileAtomic(plain, []byte("ABC"), 0o600)
	if st, _ := os.Stat(plain); st.Mode().Perm() != 0o644 {
		t.Errorf("a plain file's mode changed to %04o", st.Mode().Perm())
	}
}

// Root rewriting a service account's configuration keeps it that account's,
// so that the agent running as it can still read it.
func TestSecretRewriteKeepsTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files as another user")
	}
	path := filepath.Join(t.TempDir(), "tentacle.config")
	os.WriteFile(path, []byte("old"), 0o644)
	os.Chown(path, 4242, 4343)
	if err := WriteSecretFileAtomic(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 4242 || sys.Gid != 4343 || st.Mode().Perm() != 0o600 {
		t.Errorf("uid %d gid %d mode %04o, want 4242 4343 0600", sys.Uid, sys.Gid, st.Mode().Perm())
	}
}

type finding struct {
	path  string
	fatal bool
}

func findings(configPath, root string) []finding {
	var out []finding
	for _, f := range CheckPermissions(configPath, root) {
		out = append(out, finding{f.Path, f.Fatal})
	}
	return out
}

func TestCheckPermissions(t *testing.T) {
	base := t.TempDir() // 0700, in sticky /tmp
	layout := func(name string) (dir, cfg, root string) {
		dir = filepath.Join(base, name, "Tentacle")
		os.MkdirAll(dir, 0o700)
		os.Chmod(filepath.Join(base, name), 0o755)
		cfg = filepath.Join(dir, "tentacle.config")
		os.WriteFile(cfg, []byte("<octopus-settings />"), 0o600)
		root = filepath.Join(base, name, "etc")
		if _, err := NewIndex(root).Register(Instance{Name: "T", ConfigurationFilePath: cfg}); err != nil {
			t.Fatal(err)
		}
		return dir, cfg, root
	}
	dir, cfg, root := layout("ok")
	if got := CheckPermissions(cfg, root); len(got) != 0 {
		t.Errorf("a 0600 file in a 0700 folder: %v", got)
	}
	if got := CheckPermissions(filepath.Join(dir, "missing.config"), ""); len(got) != 0 {
		t.Errorf("a missing file: %v", got)
	}

	cases := []struct {
		name  string
		setup func(dir, cfg, root string) string // returns the path that must be reported
		fatal bool
	}{
		{"config 0644", func(dir, cfg, root string) string { os.Chmod(cfg, 0o644); return cfg }, false},
		{"config 0640", func(dir, cfg, root string) string { os.Chmod(cfg, 0o640); return cfg }, false},
		{"config 0664", func(dir, cfg, root string) string { os.Chmod(cfg, 0o664); return cfg }, true},
		{"config 0602", func(dir, cfg, root string) string { os.Chmod(cfg, 0o602); return cfg }, true},
		{"folder 0755", func(dir, cfg, root string) string { os.Chmod(dir, 0o755); return dir }, false},
		{"folder 0777", func(dir, cfg, root string) string { os.Chmod(dir, 0o777); return dir }, true},
		{"folder 1777", func(dir, cfg, root string) string { os.Chmod(dir, 0o1777); return dir }, true},
		{"parent 0777", func(dir, cfg, root string) string { os.Chmod(filepath.Dir(dir), 0o777); return filepath.Dir(dir) }, true},
		{"machine key 0644", func(dir, cfg, root string) string {
			p := filepath.Join(root, "machinekey")
			os.WriteFile(p, []byte("k.iv"), 0o644)
			os.Chmod(p, 0o644)
			return p
		}, false},
		{"index entry 0666", func(dir, cfg, root string) string {
			p := NewIndex(root).fileName("T")
			os.Chmod(p, 0o666)
			return p
		}, true},
		{"index folder 0777", func(dir, cfg, root string) string {
			os.Chmod(NewIndex(root).Dir, 0o777)
			return NewIndex(root).Dir
		}, true},
	}
	for i, c := range cases {
		dir, cfg, root := layout("case" + string(rune('a'+i)))
		want := c.setup(dir, cfg, root)
		got := findings(cfg, root)
		if len(got) != 1 || got[0] != (finding{want, c.fatal}) {
			t.Errorf("%s: got %v, want [{%s %v}]", c.name, got, want, c.fatal)
		}
		err := RefusePermissions(CheckPermissions(cfg, root))
		if (err != nil) != c.fatal {
			t.Errorf("%s: refused = %v", c.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "chmod") {
			t.Errorf("%s: the refusal does not say what to chmod: %v", c.name, err)
		}
	}

	if os.Geteuid() == 0 {
		dir, cfg, root := layout("foreign")
		os.Chown(cfg, 4242, 4242)
		if got := findings(cfg, root); len(got) != 1 || got[0] != (finding{cfg, true}) {
			t.Errorf("a configuration owned by another user: %v", got)
		}
		_ = dir
	}
}

// assertPrivateFile checks what makes a secret file private on Unix: mode 0600.
func assertPrivateFile(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, st.Mode().Perm())
	}
}
