package scripts_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/provision/release"
)

// install.ps1 cannot run here (no PowerShell can be had on this machine), so
// this checks that what it computes agrees with the Go code and install.sh:
// the MSI's name in the feed, the registry key the MSI writes, and exit
// codes that mean the same as install.sh's.
func TestInstallPs1AgreesWithTheFeedAndInstallSh(t *testing.T) {
	ps, err := os.ReadFile("install.ps1")
	if err != nil {
		t.Fatal(err)
	}
	script := string(ps)

	m := regexp.MustCompile(`\$asset = "(tentacle_\$\(\$chosen\)_windows_amd64\.msi)"`).FindStringSubmatch(script)
	if m == nil {
		t.Fatal(`install.ps1 has no $asset = "tentacle_$($chosen)_windows_amd64.msi"`)
	}
	const version = "1.2.4-snapshot.20261203111202.f15f891"
	want, err := release.ArtifactName(release.KindMSI, version, release.Platform{OS: "windows", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(m[1], "$($chosen)", version); got != want {
		t.Errorf("install.ps1 downloads %s, the feed has %s", got, want)
	}

	if !strings.Contains(script, `$RegistryKey = "HKLM:\`+release.MSIRegistryKey+`"`) {
		t.Errorf(`install.ps1's $RegistryKey is not HKLM:\%s`, release.MSIRegistryKey)
	}

	sh, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	shCodes := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#\s+(\d+)\s+(.*)$`).FindAllStringSubmatch(string(sh), -1) {
		shCodes[m[1]] = m[2]
	}
	var used []string
	for _, m := range regexp.MustCompile(`Fail (\d+) `).FindAllStringSubmatch(script, -1) {
		if !slices.Contains(used, m[1]) {
			used = append(used, m[1])
		}
	}
	if len(used) < 6 {
		t.Fatalf("found only exit codes %v in install.ps1", used)
	}
	for _, code := range used {
		doc := regexp.MustCompile(`(?m)^#\s+` + code + `\s+(.*)$`).FindStringSubmatch(script)
		if doc == nil {
			t.Errorf("install.ps1 exits %s, which its header does not list", code)
			continue
		}
		if _, ok := shCodes[code]; !ok {
			t.Errorf("install.ps1 exits %s (%s), which install.sh does not use", code, doc[1])
		}
	}
}
