package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAutoUpgradeUnitsGolden(t *testing.T) {
	svc, timer, err := RenderAutoUpgrade(AutoUpgrade{Executable: goldenExecutable, Constraint: "~> 1.4", Feed: "https://releases.example.com/tentacle", PublicKey: "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "auto-upgrade.service"), svc)
	checkGolden(t, filepath.Join("testdata", "auto-upgrade.timer"), timer)
}

// Both units pass `systemd-analyze verify` without a word.
func TestAutoUpgradeUnitsPassSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIP: systemd-analyze is not installed (apt-get install systemd; `make deps` does it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	svc, timer, err := RenderAutoUpgrade(AutoUpgrade{Executable: exe, Constraint: ">= 1.2, < 2", Feed: "github:tentacle-go/tentacle"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, text := range map[string]string{AutoUpgradeService: svc, AutoUpgradeTimer: timer} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{AutoUpgradeService, AutoUpgradeTimer} {
		out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, name)).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
	// The constraint reaches tentacle as one argument.
	if !strings.Contains(svc, `"--version=>= 1.2, < 2"`) {
		t.Errorf("the constraint is not one quoted argument:\n%s", svc)
	}
}

func TestAutoUpgradeRefusesIncompleteSettings(t *testing.T) {
	for _, a := range []AutoUpgrade{
		{Executable: "tentacle", Constraint: "latest", Feed: "/srv/feed"},
		{Executable: "/usr/bin/tentacle", Feed: "/srv/feed"},
		{Executable: "/usr/bin/tentacle", Constraint: "latest"},
		{Executable: "/usr/bin/tentacle", Constraint: "latest", Feed: "/srv/feed\nExecStartPre=/bin/evil"},
	} {
		if _, _, err := RenderAutoUpgrade(a); err == nil {
			t.Errorf("%+v was accepted", a)
		}
	}
}

func TestExecStartPath(t *testing.T) {
	show := "ExecStart={ path=/usr/bin/tentacle ; argv[]=/usr/bin/tentacle run --instance=Tentacle --noninteractive ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n"
	if got := execStartPath(show); got != "/usr/bin/tentacle" {
		t.Errorf("execStartPath = %q", got)
	}
	if got := execStartPath("ExecStart=\n"); got != "" {
		t.Errorf("no ExecStart: %q", got)
	}
}
