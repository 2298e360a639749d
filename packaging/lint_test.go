//go:build linux

package packaging_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
)

// aboveWarning matches a lintian or rpmlint tag more severe than a warning.
var aboveWarning = regexp.MustCompile(`(?m)^(\S+: )?E: .*$`)

// TestLintian runs lintian on the amd64 deb: nothing above a warning but
// the tags packaging/linux/lintian-overrides explains (the package ships
// the overrides, so lintian applies them).
func TestLintian(t *testing.T) {
	b := first(t)
	requireTools(t, "lintian")
	out, _ := exec.Command("lintian", "--tag-display-limit", "0", b.find(t, "Linux Package", `_amd64\.deb$`)).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if errs := aboveWarning.FindAllString(string(out), -1); len(errs) > 0 {
		t.Errorf("lintian reports errors (fix them or explain each in packaging/linux/lintian-overrides):\n%s", strings.Join(errs, "\n"))
	}
}

// TestRpmlint runs rpmlint on the x86_64 rpm with packaging/linux/rpmlint.toml.
func TestRpmlint(t *testing.T) {
	b := first(t)
	requireTools(t, "rpmlint")
	cfg := filepath.Join(nspawntest.RepoRoot(t), "packaging", "linux", "rpmlint.toml")
	out, _ := exec.Command("rpmlint", "-c", cfg, b.find(t, "Linux Package", `\.x86_64\.rpm$`)).CombinedOutput()
	t.Logf("rpmlint:\n%s", out)
	if errs := regexp.MustCompile(`(?m)^\S+: E: .*$`).FindAllString(string(out), -1); len(errs) > 0 {
		t.Errorf("rpmlint reports errors (fix them or explain each in packaging/linux/rpmlint.toml):\n%s", strings.Join(errs, "\n"))
	}
}
