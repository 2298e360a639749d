package scripts

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// A copy of this test binary stands in for tentacle-supervisor: asked `version`, it prints
// testSupervisorVersionEnv's value, or fails with testSupervisorFailEnv's.
const (
	testSupervisorVersionEnv = "TENTACLE_TEST_SUPERVISOR_VERSION"
	testSupervisorFailEnv    = "TENTACLE_TEST_SUPERVISOR_FAIL"
)

func supervisorFileName() string {
	if runtime.GOOS == "windows" {
		return SupervisorProgram + ".exe"
	}
	return SupervisorProgram
}

// installTestSupervisor copies this test binary to path as an executable.
func installTestSupervisor(t *testing.T, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// agentExecutable makes an empty file standing for the agent's binary at dir/bin/tentacle:
// FindSupervisor only looks at where it is.
func agentExecutable(t *testing.T, dir string) string {
	t.Helper()
	exe := filepath.Join(dir, "bin", "tentacle")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestFindSupervisorChoosesTheProgramOfTheSameBuild(t *testing.T) {
	t.Setenv(testSupervisorVersionEnv, "1.2.3")
	for _, where := range []string{"beside the binary", "in ../libexec/tentacle"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			exe := agentExecutable(t, dir)
			helper := filepath.Join(dir, "bin", supervisorFileName())
			if where != "beside the binary" {
				helper = filepath.Join(dir, "bin", "..", "libexec", "tentacle", supervisorFileName())
			}
			installTestSupervisor(t, helper)
			cmd, note := FindSupervisor(exe, "1.2.3")
			if want := []string{helper, SupervisorArg}; !slices.Equal(cmd, want) {
				t.Fatalf("command %q, want %q (%s)", cmd, want, note)
			}
			if note != "scripts run under "+helper {
				t.Errorf("note %q", note)
			}
		})
	}
}

func TestFindSupervisorFallsBackToTheAgentsOwnBinary(t *testing.T) {
	t.Setenv(testSupervisorVersionEnv, "1.2.3")
	cases := []struct {
		name     string
		install  bool
		version  string // the agent's
		fail     string
		wantNote string
	}{
		{name: "none installed", version: "1.2.3", wantNote: "no " + supervisorFileName() + " beside it or in ../libexec/tentacle"},
		{name: "another build", install: true, version: "1.2.4", wantNote: "is version 1.2.3, not this agent's 1.2.4"},
		{name: "cannot run", install: true, version: "1.2.3", fail: "broken on purpose", wantNote: "cannot be run"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.fail != "" {
				t.Setenv(testSupervisorFailEnv, c.fail)
			}
			dir := t.TempDir()
			exe := agentExecutable(t, dir)
			if c.install {
				installTestSupervisor(t, filepath.Join(dir, "bin", supervisorFileName()))
			}
			cmd, note := FindSupervisor(exe, c.version)
			if want := []string{exe, SupervisorArg}; !slices.Equal(cmd, want) {
				t.Fatalf("command %q, want %q (%s)", cmd, want, note)
			}
			if !strings.HasPrefix(note, "scripts run under this binary ("+exe+")") || !strings.Contains(note, c.wantNote) {
				t.Errorf("note %q does not say %q", note, c.wantNote)
			}
			if c.fail != "" && !strings.Contains(note, c.fail) {
				t.Errorf("note %q does not carry the program's own error %q", note, c.fail)
			}
		})
	}
}

// Packages link /opt/octopus/tentacle/Tentacle to the real binary: the supervisor is looked
// for beside the file the link leads to.
func TestFindSupervisorFollowsALinkToTheBinary(t *testing.T) {
	t.Setenv(testSupervisorVersionEnv, "1.2.3")
	dir := t.TempDir()
	exe := agentExecutable(t, dir)
	helper := filepath.Join(dir, "bin", supervisorFileName())
	installTestSupervisor(t, helper)
	link := filepath.Join(dir, "opt", "Tentacle")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, link); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("SKIP: this Windows cannot make a symbolic link here (%v); the packages that link the binary are Linux's", err)
		}
		t.Fatal(err)
	}
	cmd, note := FindSupervisor(link, "1.2.3")
	if resolved, err := filepath.EvalSymlinks(link); runtime.GOOS == "windows" && (err != nil || resolved == link) {
		// Wine makes the link but does not resolve it: nothing beside the link, so this binary.
		if want := []string{link, SupervisorArg}; !slices.Equal(cmd, want) {
			t.Fatalf("command %q, want %q where links are not resolved (%s)", cmd, want, note)
		}
		return
	}
	if len(cmd) == 0 || !sameFile(t, cmd[0], helper) {
		t.Fatalf("command %q, want %s (%s)", cmd, helper, note)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}
