package release

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/scripts"
	"github.com/tentacle-go/tentacle/internal/releasebuild"
)

var (
	builtMu   sync.Mutex
	builtDir  string
	builtBins = map[string]string{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// tentacleBinary builds the real tentacle once per version for the whole
// test run, stamped as a release build is.
func tentacleBinary(t *testing.T, version string) string {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if p, ok := builtBins[version]; ok {
		return p
	}
	if builtDir == "" {
		d, err := os.MkdirTemp("", "tentacle-release-test-*")
		if err != nil {
			t.Fatal(err)
		}
		builtDir = d
	}
	out := filepath.Join(builtDir, "tentacle-"+version)
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	// Under Wine there is no Go toolchain: `make test-windows` builds these
	// versions and says where (internal/winetest/windowssuite).
	if prebuilt := os.Getenv("TENTACLE_TEST_BINARY_DIR"); prebuilt != "" {
		out = filepath.Join(prebuilt, "tentacle-"+version+".exe")
		builtBins[version] = out
		return out
	}
	releasebuild.Build(t, filepath.Join("..", ".."), out, releasebuild.Options{Version: version})
	builtBins[version] = out
	return out
}

// releaseArchive writes a tar.gz shaped as goreleaser's (tentacle/Tentacle
// and a README) holding binary, without a tentacle-supervisor (as releases
// before it).
func releaseArchive(t *testing.T, dir, binary string) string {
	t.Helper()
	return releaseArchiveWithSupervisor(t, dir, binary, "")
}

// binaryName is what an installed tentacle binary is called: Windows runs
// only an .exe.
var binaryName = map[bool]string{false: "tentacle", true: "tentacle.exe"}[runtime.GOOS == "windows"]

func copyBinaryTo(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func versionOf(t *testing.T, binary string) string {
	t.Helper()
	out, err := exec.Command(binary, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", binary, err)
	}
	return strings.TrimSpace(string(out))
}

// noPackageManager hides dpkg and rpm, so a test of binary mode does not
// depend on what owns what on the machine running it.
func noPackageManager(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
}

func assertNoInstallLeftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tentacle-") {
			t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
		}
	}
}

func TestInstallBinaryKeepsPreviousAndRollsBack(t *testing.T) {
	v1, v2 := tentacleBinary(t, "1.0.0"), tentacleBinary(t, "2.0.0")
	noPackageManager(t)
	dir := t.TempDir()
	target := filepath.Join(dir, binaryName)
	copyBinaryTo(t, v1, target)
	archive := releaseArchive(t, t.TempDir(), v2)

	res, err := Install(context.Background(), archive, InstallOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != MethodBinary || res.Version != "2.0.0" || res.PreviousVersion != "1.0.0" || res.Previous != target+".previous" {
		t.Errorf("result = %+v", res)
	}
	if got := versionOf(t, target); got != "2.0.0" {
		t.Errorf("installed binary says %q, want 2.0.0", got)
	}
	if got := versionOf(t, target+".previous"); got != "1.0.0" {
		t.Errorf("previous binary says %q, want 1.0.0", got)
	}
	assertNoInstallLeftovers(t, dir)

	rb, err := Rollback(context.Background(), target, false)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Version != "1.0.0" {
		t.Errorf("rollback result = %+v", rb)
	}
	if got := versionOf(t, target); got != "1.0.0" {
		t.Errorf("after rollback the binary says %q, want 1.0.0", got)
	}
	if _, err := os.Lstat(target + ".previous"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the previous binary is still there after the rollback: %v", err)
	}
	_, err = Rollback(context.Background(), target, false)
	var ue *config.UserError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no previous binary") {
		t.Errorf("second rollback: err = %v; want a user error saying there is nothing to restore", err)
	}
}

func TestInstallFollowsASymlinkedTarget(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	v1, v2 := tentacleBinary(t, "1.0.0"), tentacleBinary(t, "2.0.0")
	noPackageManager(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "opt", "tentacle")
	link := filepath.Join(dir, "bin", "tentacle")
	os.MkdirAll(filepath.Dir(real), 0o755)
	os.MkdirAll(filepath.Dir(link), 0o755)
	copyBinaryTo(t, v1, real)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	res, err := Install(context.Background(), releaseArchive(t, t.TempDir(), v2), InstallOptions{Target: link})
	if err != nil {
		t.Fatal(err)
	}
	if res.Target != real {
		t.Errorf("target = %s, want the link's target %s", res.Target, real)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is no longer a symlink: %v", link, err)
	}
	if got := versionOf(t, link); got != "2.0.0" {
		t.Errorf("through the link: %q, want 2.0.0", got)
	}
}

func TestInstallDryRunChangesNothing(t *testing.T) {
	v1, v2 := tentacleBinary(t, "1.0.0"), tentacleBinary(t, "2.0.0")
	noPackageManager(t)
	dir := t.TempDir()
	target := filepath.Join(dir, binaryName)
	copyBinaryTo(t, v1, target)
	res, err := Install(context.Background(), releaseArchive(t, t.TempDir(), v2), InstallOptions{Target: target, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Version != "2.0.0" || len(res.Steps) != 2 || !strings.Contains(res.Steps[0], "1.0.0") {
		t.Errorf("dry run result = %+v", res)
	}
	if got := versionOf(t, target); got != "1.0.0" {
		t.Errorf("a dry run replaced the binary: it says %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("a dry run wrote beside the target: %v", ents)
	}
}

func TestInstallRefusesABinaryThatDoesNotRun(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses shell scripts as broken binaries")
	}
	v1 := tentacleBinary(t, "1.0.0")
	noPackageManager(t)
	for name, script := range map[string]string{
		"exits non-zero":       "#!/bin/sh\necho boom >&2\nexit 3\n",
		"prints no version":    "#!/bin/sh\necho hello\n",
		"is not a program":     "just some text\n",
		"exits at once, empty": "#!/bin/sh\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, binaryName)
			copyBinaryTo(t, v1, target)
			broken := filepath.Join(t.TempDir(), "broken")
			if err := os.WriteFile(broken, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := Install(context.Background(), releaseArchive(t, t.TempDir(), broken), InstallOptions{Target: target})
			var ue *config.UserError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "does not run") || !strings.Contains(err.Error(), "not installed") {
				t.Fatalf("err = %v; want a user error saying the new binary does not run", err)
			}
			if got := versionOf(t, target); got != "1.0.0" {
				t.Errorf("the target was replaced: %q", got)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("left beside the target: %v", ents)
			}
		})
	}
}

func TestInstallRefusesAnArchiveWithoutTheBinary(t *testing.T) {
	noPackageManager(t)
	dir := t.TempDir()
	target := filepath.Join(dir, binaryName)
	os.WriteFile(target, []byte("old"), 0o755)
	archive := filepath.Join(t.TempDir(), "other.tar.gz")
	writeTarGz(t, archive, []archiveEntry{fileEntry("something/else", "x")})
	_, err := Install(context.Background(), archive, InstallOptions{Target: target})
	if err == nil || !strings.Contains(err.Error(), "holds no tentacle/Tentacle") {
		t.Fatalf("err = %v", err)
	}
	assertNoInstallLeftovers(t, dir)
}

func TestInstallRefusesAnEvilArchiveBeforeTouchingTheTarget(t *testing.T) {
	noPackageManager(t)
	dir := t.TempDir()
	target := filepath.Join(dir, binaryName)
	os.WriteFile(target, []byte("old"), 0o755)
	archive := filepath.Join(t.TempDir(), "evil.tar.gz")
	writeTarGz(t, archive, []archiveEntry{fileEntry("tentacle/Tentacle", "x"), fileEntry("../../tentacle", "pwned")})
	_, err := Install(context.Background(), archive, InstallOptions{Target: target})
	if err == nil || !strings.Contains(err.Error(), "points outside the destination") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Errorf("target changed to %q", b)
	}
	assertNoInstallLeftovers(t, dir)
}

func TestInstallRefusesAMissingArtifact(t *testing.T) {
	_, err := Install(context.Background(), filepath.Join(t.TempDir(), "nope.tar.gz"), InstallOptions{Target: filepath.Join(t.TempDir(), "tentacle")})
	var ue *config.UserError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v", err)
	}
}

// fakeTool puts a shell script called name on dir that logs its arguments
// to log and answers the ownership query (dpkg -S, rpm -qf) with owner, or
// with "not owned" (exit 1) when owner is empty. It stands in for dpkg and
// rpm in detection tests only: the real dpkg path is exercised by the
// upgrade tests in the systemd container.
func fakeTool(t *testing.T, dir, name, owner, log string) {
	t.Helper()
	answer := `echo "` + owner + `: $2"`
	if name == "rpm" {
		answer = `echo "` + owner + `"`
	}
	if owner == "" {
		answer = `echo "no path found" >&2; exit 1`
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %q\ncase \"$1\" in\n-S|-qf) %s ;;\nesac\nexit 0\n", name, log, answer)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestInstallDetectsPackageManagedBinaries(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("dpkg and rpm are Linux's")
	}
	v1, v2 := tentacleBinary(t, "1.0.0"), tentacleBinary(t, "2.0.0")
	type call struct{ tool, owner string }
	cases := []struct {
		name     string
		tools    []call
		artifact string // .deb, .rpm or tar.gz
		dryRun   bool
		method   InstallMethod
		wantRun  string // logged command line of the install
		wantErr  string
	}{
		{name: "dpkg owns it: dpkg -i the .deb", tools: []call{{"dpkg", PackageName}}, artifact: ".deb", method: MethodDeb, wantRun: "dpkg -i "},
		{name: "dpkg owns it and apt-get exists: apt-get install", tools: []call{{"dpkg", PackageName}, {"apt-get", ""}}, artifact: ".deb", method: MethodDeb, wantRun: "apt-get install -y "},
		{name: "dpkg owns it, dry run runs nothing", tools: []call{{"dpkg", PackageName}}, artifact: ".deb", dryRun: true, method: MethodDeb},
		{name: "dpkg owns it but a tar.gz is given", tools: []call{{"dpkg", PackageName}}, artifact: "tar.gz", wantErr: "install the release's .deb"},
		{name: "another package owns it", tools: []call{{"dpkg", "tentacle"}}, artifact: ".deb", wantErr: `belongs to the deb package "tentacle"`},
		{name: "rpm owns it: rpm -U", tools: []call{{"rpm", PackageName}}, artifact: ".rpm", method: MethodRPM, wantRun: "rpm -U "},
		{name: "rpm owns it but a .deb is given", tools: []call{{"rpm", PackageName}}, artifact: ".deb", wantErr: "install the release's .rpm"},
		{name: "dpkg and rpm present, neither owns it: binary", tools: []call{{"dpkg", ""}, {"rpm", ""}}, artifact: "tar.gz", method: MethodBinary},
		{name: "not owned, a .deb given", tools: []call{{"dpkg", ""}}, artifact: ".deb", wantErr: "not owned by a package"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			log := filepath.Join(t.TempDir(), "calls.log")
			for _, c := range tc.tools {
				fakeTool(t, bin, c.tool, c.owner, log)
			}
			t.Setenv("PATH", bin)
			target := filepath.Join(t.TempDir(), binaryName)
			copyBinaryTo(t, v1, target)
			artifact := releaseArchive(t, t.TempDir(), v2)
			if tc.artifact != "tar.gz" {
				artifact = filepath.Join(t.TempDir(), "tentacle-go_2.0.0_amd64"+tc.artifact)
				os.WriteFile(artifact, []byte("package"), 0o644)
			}
			res, err := Install(context.Background(), artifact, InstallOptions{Target: target, DryRun: tc.dryRun})
			if tc.wantErr != "" {
				var ue *config.UserError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want a user error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tc.method {
				t.Errorf("method = %s, want %s", res.Method, tc.method)
			}
			calls, _ := os.ReadFile(log)
			switch {
			case tc.wantRun != "":
				if !strings.Contains(string(calls), tc.wantRun+artifact) {
					t.Errorf("calls:\n%s\nwant %q", calls, tc.wantRun+artifact)
				}
				if res.Package != PackageName {
					t.Errorf("package = %q", res.Package)
				}
			case tc.dryRun:
				if strings.Contains(string(calls), " -i ") || len(res.Steps) != 1 || !strings.Contains(res.Steps[0], "dpkg -i "+artifact) {
					t.Errorf("dry run: steps %q, calls:\n%s", res.Steps, calls)
				}
			case tc.method == MethodBinary:
				if got := versionOf(t, target); got != "2.0.0" {
					t.Errorf("binary install: %q", got)
				}
			}
		})
	}
}

// supervisorBinary builds the real tentacle-supervisor once per version,
// stamped as a release build is.
func supervisorBinary(t *testing.T, version string) string {
	t.Helper()
	tentacle := tentacleBinary(t, version) // makes builtDir
	builtMu.Lock()
	defer builtMu.Unlock()
	key := "supervisor-" + version
	if p, ok := builtBins[key]; ok {
		return p
	}
	// Under Wine there is no Go toolchain: `make test-windows` builds these
	// too (internal/winetest/windowssuite).
	if prebuilt := os.Getenv("TENTACLE_TEST_BINARY_DIR"); prebuilt != "" {
		builtBins[key] = filepath.Join(prebuilt, "tentacle-supervisor-"+version+".exe")
		return builtBins[key]
	}
	dir := filepath.Join(builtDir, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	o := releasebuild.Options{Version: version}
	if b, err := releasebuild.SupervisorCommand(filepath.Join("..", ".."), filepath.Join(dir, filepath.Base(tentacle)), o).CombinedOutput(); err != nil {
		t.Fatalf("building tentacle-supervisor %s: %v\n%s", version, err, b)
	}
	builtBins[key] = filepath.Join(dir, scripts.SupervisorFileName())
	return builtBins[key]
}

// releaseArchiveWithSupervisor writes a tar.gz shaped as goreleaser's:
// tentacle/Tentacle, tentacle/tentacle-supervisor (when supervisor is not
// "") and a README.
func releaseArchiveWithSupervisor(t *testing.T, dir, binary, supervisor string) string {
	t.Helper()
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	name := "Tentacle"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	entries := []archiveEntry{
		{name: "tentacle/", kind: tar.TypeDir, mode: 0o755},
		{name: "tentacle/" + name, kind: tar.TypeReg, mode: 0o755, body: string(b)},
	}
	p := filepath.Join(dir, fmt.Sprintf("tentacle_%s_%s.tar.gz", filepath.Base(binary), runtime.GOARCH))
	if supervisor != "" {
		s, err := os.ReadFile(supervisor)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, archiveEntry{name: "tentacle/" + scripts.SupervisorFileName(), kind: tar.TypeReg, mode: 0o755, body: string(s)})
		// Built (supervisor-V/tentacle-supervisor) or prebuilt under Wine
		// (tentacle-supervisor-V.exe): the archive's name tells them apart.
		p = strings.TrimSuffix(p, ".tar.gz") + "_with_" + filepath.Base(filepath.Dir(supervisor)) + "_" + filepath.Base(supervisor) + ".tar.gz"
	}
	writeTarGz(t, p, append(entries, fileEntry("tentacle/README.md", "readme")))
	return p
}

// TestInstallBinaryPutsTheSupervisorWhereTheAgentLooks: a binary install
// puts the archive's tentacle-supervisor in ../libexec/tentacle of a bin
// folder (beside the binary elsewhere), keeps the one it replaces for a
// rollback, removes it when the new release has none, and the rollbacks
// put back what was there; a supervisor of another build is refused with
// nothing changed.
func TestInstallBinaryPutsTheSupervisorWhereTheAgentLooks(t *testing.T) {
	v1, v2 := tentacleBinary(t, "1.0.0"), tentacleBinary(t, "2.0.0")
	s1, s2 := supervisorBinary(t, "1.0.0"), supervisorBinary(t, "2.0.0")
	noPackageManager(t)
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, "bin", binaryName)
	os.MkdirAll(filepath.Dir(target), 0o755)
	copyBinaryTo(t, v1, target)
	supervisor := filepath.Join(dir, "libexec", "tentacle", scripts.SupervisorFileName())
	archives := t.TempDir()
	with2 := releaseArchiveWithSupervisor(t, archives, v2, s2)
	without1 := releaseArchive(t, archives, v1)

	absent := func(p, when string) {
		t.Helper()
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s is there (%v)", when, p, err)
		}
	}
	// A supervisor of another build: refused, nothing changed.
	if _, err := Install(ctx, releaseArchiveWithSupervisor(t, archives, v2, s1), InstallOptions{Target: target}); err == nil || !strings.Contains(err.Error(), "not of its binary's build") {
		t.Errorf("a mismatched supervisor: err = %v", err)
	}
	if got := versionOf(t, target); got != "1.0.0" {
		t.Errorf("after the refusal the binary says %q", got)
	}
	absent(supervisor, "after the refusal")

	// v1 (none) -> v2: the supervisor goes to ../libexec/tentacle.
	dry, err := Install(ctx, with2, InstallOptions{Target: target, DryRun: true})
	if err != nil || dry.Supervisor != supervisor || !strings.Contains(strings.Join(dry.Steps, "\n"), "put tentacle-supervisor 2.0.0") {
		t.Errorf("dry run: %+v, %v", dry, err)
	}
	absent(supervisor, "after the dry run")
	res, err := Install(ctx, with2, InstallOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if res.Supervisor != supervisor || versionOf(t, supervisor) != "2.0.0" {
		t.Errorf("result %+v; %s should say 2.0.0", res, supervisor)
	}
	absent(PreviousPath(supervisor), "after the first install")
	assertNoInstallLeftovers(t, filepath.Dir(target))
	// Rollback to v1, which had none: the v2 supervisor goes.
	if _, err := Rollback(ctx, target, false); err != nil {
		t.Fatal(err)
	}
	absent(supervisor, "after rolling back to a version without one")

	// v1 -> v2 -> v1 (an archive without one): the supervisor is removed,
	// kept as previous; the rollback to v2 puts it back.
	if _, err := Install(ctx, with2, InstallOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	res, err = Install(ctx, without1, InstallOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	absent(supervisor, "after installing a release without one")
	if res.Supervisor != supervisor || versionOf(t, PreviousPath(supervisor)) != "2.0.0" {
		t.Errorf("result %+v; the removed supervisor is not kept as previous", res)
	}
	if _, err := Rollback(ctx, target, false); err != nil {
		t.Fatal(err)
	}
	if versionOf(t, target) != "2.0.0" || versionOf(t, supervisor) != "2.0.0" {
		t.Errorf("after the rollback to v2: binary %s, supervisor %s", versionOf(t, target), versionOf(t, supervisor))
	}
	absent(PreviousPath(supervisor), "after the rollback to v2")

	// Not in a bin folder (upstream's /opt/octopus/tentacle): beside it.
	opt := filepath.Join(t.TempDir(), "tentacle", binaryName)
	os.MkdirAll(filepath.Dir(opt), 0o755)
	copyBinaryTo(t, v1, opt)
	if res, err := Install(ctx, with2, InstallOptions{Target: opt}); err != nil || res.Supervisor != filepath.Join(filepath.Dir(opt), scripts.SupervisorFileName()) {
		t.Errorf("install into a non-bin folder: %+v, %v", res, err)
	}
	if got := versionOf(t, filepath.Join(filepath.Dir(opt), scripts.SupervisorFileName())); got != "2.0.0" {
		t.Errorf("the supervisor beside %s says %q", opt, got)
	}
}

// TestInstallBinaryKeepsARunningSupervisorsFile: the file a running
// supervisor was started from (open here, as the kernel holds a running
// executable) is not written over by an install: it still runs as the old
// version, while the path runs the new one.
func TestInstallBinaryKeepsARunningSupervisorsFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIP: runs the open file through /proc")
	}
	v1, v2 := tentacleBinary(t, "1.0.0"), tentacleBinary(t, "2.0.0")
	s1, s2 := supervisorBinary(t, "1.0.0"), supervisorBinary(t, "2.0.0")
	noPackageManager(t)
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, binaryName)
	copyBinaryTo(t, v1, target)
	archives := t.TempDir()
	if _, err := Install(ctx, releaseArchiveWithSupervisor(t, archives, v1, s1), InstallOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	supervisor := filepath.Join(dir, scripts.SupervisorFileName())
	old, err := os.Open(supervisor)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := Install(ctx, releaseArchiveWithSupervisor(t, archives, v2, s2), InstallOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if got := versionOf(t, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), old.Fd())); got != "1.0.0" {
		t.Errorf("the old supervisor's file now says %q, want 1.0.0 (it was written over)", got)
	}
	if got := versionOf(t, supervisor); got != "2.0.0" {
		t.Errorf("the installed supervisor says %q, want 2.0.0", got)
	}
}
