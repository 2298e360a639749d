package release

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
)

// withMSIRegistration makes DetectInstall see an MSI install in dir; the
// real registry is read under Wine by packaging/msi_test.go.
func withMSIRegistration(t *testing.T, dir string) {
	t.Helper()
	old := readMSIRegistration
	t.Cleanup(func() { readMSIRegistration = old })
	readMSIRegistration = func() (msiRegistration, bool) {
		return msiRegistration{InstallLocation: dir + string(filepath.Separator), ProductCode: "{1BEEB813-1C79-43EA-A504-4B4815913780}"}, true
	}
}

func TestDetectInstallKnowsTheMSIsBinary(t *testing.T) {
	noPackageManager(t)
	dir := t.TempDir()
	withMSIRegistration(t, dir)
	ctx := context.Background()
	m, code, err := DetectInstall(ctx, filepath.Join(dir, "Tentacle.exe"))
	if err != nil || m != MethodMSI || code != "{1BEEB813-1C79-43EA-A504-4B4815913780}" {
		t.Errorf("the MSI's Tentacle.exe: %s %q %v", m, code, err)
	}
	// Windows paths compare without case.
	if m, _, _ := DetectInstall(ctx, filepath.Join(dir, "TENTACLE.EXE")); m != MethodMSI {
		t.Errorf("TENTACLE.EXE in the MSI's folder: %s", m)
	}
	// A copy elsewhere is a binary install.
	if m, _, err := DetectInstall(ctx, filepath.Join(t.TempDir(), "Tentacle.exe")); err != nil || m != MethodBinary {
		t.Errorf("a Tentacle.exe elsewhere: %s %v", m, err)
	}
}

func TestInstallOverTheMSIsBinaryTakesOnlyAnMSI(t *testing.T) {
	v1 := tentacleBinary(t, "1.0.0") // before the PATH is emptied
	noPackageManager(t)
	dir := t.TempDir()
	withMSIRegistration(t, dir)
	target := filepath.Join(dir, "Tentacle.exe")
	copyBinaryTo(t, v1, target)
	art := t.TempDir()
	msi := filepath.Join(art, "tentacle_2.0.0_windows_amd64.msi")
	zip := filepath.Join(art, "tentacle_2.0.0_windows_amd64.zip")
	for _, f := range []string{msi, zip} {
		os.WriteFile(f, []byte("artifact"), 0o644)
	}
	ctx := context.Background()
	_, err := Install(ctx, zip, InstallOptions{Target: target})
	var ue *config.UserError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "install the release's .msi") {
		t.Errorf("a zip over the MSI's binary: %v", err)
	}
	res, err := Install(ctx, msi, InstallOptions{Target: target, DryRun: true})
	if err != nil || res.Method != MethodMSI || len(res.Steps) != 1 || !strings.HasPrefix(res.Steps[0], "run msiexec /i "+msi+" /qn /norestart /l*v ") {
		t.Errorf("dry run: %+v %v", res, err)
	}
	// Without msiexec (here: an empty PATH) the install fails, saying where
	// the log is, and the binary is untouched.
	if _, err := Install(ctx, msi, InstallOptions{Target: target}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "its log") {
		t.Errorf("msiexec missing: %v", err)
	}
	if got := versionOf(t, target); got != "1.0.0" {
		t.Errorf("after a failed msiexec the binary is %s", got)
	}
	// An .msi is refused where the MSI did not install the binary.
	withMSIRegistration(t, t.TempDir())
	if _, err := Install(ctx, msi, InstallOptions{Target: target}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "not owned by a package or the MSI") {
		t.Errorf("an .msi over a binary install: %v", err)
	}
}

func TestArtifactNameOfTheMSI(t *testing.T) {
	n, err := ArtifactName(KindMSI, "1.2.4-snapshot.20261203111202.f15f891", Platform{OS: "windows", Arch: "amd64"})
	if err != nil || n != "tentacle_1.2.4-snapshot.20261203111202.f15f891_windows_amd64.msi" {
		t.Errorf("windows/amd64: %q %v", n, err)
	}
	for _, p := range []Platform{{"linux", "amd64"}, {"windows", "arm64"}} {
		if _, err := ArtifactName(KindMSI, "1.0.0", p); err == nil {
			t.Errorf("an MSI name for %s/%s", p.OS, p.Arch)
		}
	}
}
