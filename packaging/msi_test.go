//go:build linux

package packaging_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/internal/releasebuild"
	"github.com/tentacle-go/tentacle/internal/winetest"
)

// msiBudget is the size limit of the MSI (issue 17).
const msiBudget = 10 << 20

// The identities packaging/windows/tentacle.wxs declares: ours, which never
// changes, and upstream's MSI (OctopusTentacle's Product.wxs), which ours
// replaces.
const (
	upgradeCode         = "{4A90A712-533C-4BB3-846E-359023A9AB4E}"
	upstreamUpgradeCode = "{1B32E04F-49C2-4907-8879-A556986F7F16}"
)

// msi is the build's Windows installer (a checksum.extra_files entry, so not
// in artifacts.json).
func (b *goreleaserBuild) msi(t *testing.T) string {
	t.Helper()
	p := filepath.Join(b.Dir, "tentacle_"+b.Version+"_windows_amd64.msi")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("make package built no MSI: %v", err)
	}
	return p
}

// windowsExe is the build's windows/amd64 Tentacle.exe (the one in the MSI).
func (b *goreleaserBuild) windowsExe(t *testing.T) string {
	t.Helper()
	return b.windowsBinary(t, "Tentacle.exe")
}

// windowsSupervisor is the build's windows/amd64 tentacle-supervisor.exe.
func (b *goreleaserBuild) windowsSupervisor(t *testing.T) string {
	t.Helper()
	return b.windowsBinary(t, "tentacle-supervisor.exe")
}

func (b *goreleaserBuild) windowsBinary(t *testing.T, name string) string {
	t.Helper()
	for _, a := range b.Artifacts {
		if a.Type == "Binary" && a.Goos == "windows" && a.Goarch == "amd64" && filepath.Base(a.Path) == name {
			if filepath.IsAbs(a.Path) {
				return a.Path
			}
			return filepath.Join(nspawntest.RepoRoot(t), a.Path)
		}
	}
	t.Fatalf("build %s has no windows/amd64 %s", b.Version, name)
	return ""
}

// msiTable is `msiinfo export` of one table: its rows, without the three
// header lines (names, types, key).
func msiTable(t *testing.T, msi, table string) [][]string {
	t.Helper()
	out := run(t, "msiinfo", "export", msi, table)
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(out, "\r\n", "\n"), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("msiinfo export %s: %q", table, out)
	}
	var rows [][]string
	for _, l := range lines[3:] {
		rows = append(rows, strings.Split(l, "\t"))
	}
	return rows
}

// row finds the row whose first column is key.
func row(t *testing.T, rows [][]string, table, key string) []string {
	t.Helper()
	for _, r := range rows {
		if r[0] == key {
			return r
		}
	}
	t.Fatalf("table %s has no row %s: %q", table, key, rows)
	return nil
}

// TestMSITables reads the MSI `make package` built back with msiinfo and
// checks the decisions packaging/windows/tentacle.wxs makes, and its size.
func TestMSITables(t *testing.T) {
	b := first(t)
	requireTools(t, "msiinfo")
	msi := b.msi(t)
	info, err := os.Stat(msi)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %.2f MiB (budget %d MiB)", filepath.Base(msi), float64(info.Size())/(1<<20), msiBudget>>20)
	if info.Size() > msiBudget {
		t.Errorf("the MSI is %d bytes, over the %d budget", info.Size(), msiBudget)
	}

	props := msiTable(t, msi, "Property")
	numeric := regexp.MustCompile(`^\d+\.\d+\.\d+`).FindString(b.Version)
	for k, want := range map[string]string{"ProductVersion": numeric, "UpgradeCode": upgradeCode, "ALLUSERS": "1"} {
		if got := row(t, props, "Property", k)[1]; got != want {
			t.Errorf("Property %s = %q, want %q", k, got, want)
		}
	}
	// Upstream's install path: C:\Program Files\Octopus Deploy\Tentacle\.
	dirs := msiTable(t, msi, "Directory")
	for _, want := range [][3]string{{"INSTALLLOCATION", "OctopusDeployFolder", "Tentacle"}, {"OctopusDeployFolder", "ProgramFiles64Folder", "Octopus Deploy"}} {
		if r := row(t, dirs, "Directory", want[0]); r[1] != want[1] || r[2] != want[2] {
			t.Errorf("Directory %s = %q, want parent %s, name %s", want[0], r, want[1], want[2])
		}
	}
	file := row(t, msiTable(t, msi, "File"), "File", "TentacleExe")
	comp := row(t, msiTable(t, msi, "Component"), "Component", file[1])
	exe := b.windowsExe(t)
	exeInfo, _ := os.Stat(exe)
	if file[2] != "Tentacle.exe" || file[3] != fmt.Sprint(exeInfo.Size()) || comp[2] != "INSTALLLOCATION" || comp[3] != "256" {
		t.Errorf("File %q in Component %q: want Tentacle.exe (%d bytes), 64-bit (256), in INSTALLLOCATION", file, comp, exeInfo.Size())
	}
	// The script supervisor beside it (scripts.FindSupervisor), in a
	// component of its own: installed and removed with the product.
	file = row(t, msiTable(t, msi, "File"), "File", "SupervisorExe")
	comp = row(t, msiTable(t, msi, "Component"), "Component", file[1])
	supInfo, _ := os.Stat(b.windowsSupervisor(t))
	if file[2] != "tentacle-supervisor.exe" || file[3] != fmt.Sprint(supInfo.Size()) || comp[2] != "INSTALLLOCATION" || comp[3] != "256" {
		t.Errorf("File %q in Component %q: want tentacle-supervisor.exe (%d bytes), 64-bit (256), in INSTALLLOCATION", file, comp, supInfo.Size())
	}
	if r := row(t, msiTable(t, msi, "FeatureComponents"), "FeatureComponents", "Tentacle"); len(r) < 2 {
		t.Errorf("FeatureComponents: %q", r)
	}
	var features []string
	for _, r := range msiTable(t, msi, "FeatureComponents") {
		features = append(features, strings.Join(r, " "))
	}
	if !slices.Contains(features, "Tentacle "+file[1]) {
		t.Errorf("the Tentacle feature does not install %s: %q", file[1], features)
	}

	// Every other version of ours, and upstream's MSI, are removed (all
	// versions from 0.0.0: attribute 256 is IncludeMinimum, without
	// OnlyDetect), before anything is installed.
	upgrades := msiTable(t, msi, "Upgrade")
	for _, code := range []string{upgradeCode, upstreamUpgradeCode} {
		if r := row(t, upgrades, "Upgrade", code); r[1] != "0.0.0" || r[2] != "" || r[4] != "256" {
			t.Errorf("Upgrade row %q: want every version from 0.0.0, removed", r)
		}
	}
	seq := msiTable(t, msi, "InstallExecuteSequence")
	at := func(action string) int {
		var n int
		fmt.Sscan(row(t, seq, "InstallExecuteSequence", action)[2], &n)
		return n
	}
	if !(at("InstallInitialize") < at("RemoveExistingProducts") && at("RemoveExistingProducts") < at("ProcessComponents")) {
		t.Errorf("RemoveExistingProducts is not right after InstallInitialize: %q", seq)
	}
	// The services of every instance are stopped (upgrade) or removed
	// (uninstall) by the installed Tentacle.exe before its file goes.
	actions := msiTable(t, msi, "CustomAction")
	for action, want := range map[string][2]string{
		"StopInstanceServices":   {"service --instance=* --stop", `REMOVE~="ALL" AND UPGRADINGPRODUCTCODE`},
		"RemoveInstanceServices": {"service --instance=* --uninstall", `REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE`},
	} {
		// 3154: an .exe installed by this MSI (18), deferred, without
		// impersonation (LocalSystem), its exit code ignored.
		if r := row(t, actions, "CustomAction", action); r[1] != "3154" || r[2] != "TentacleExe" || r[3] != want[0] {
			t.Errorf("CustomAction %q, want 3154 TentacleExe %q", r, want[0])
		}
		if cond := row(t, seq, "InstallExecuteSequence", action)[1]; cond != want[1] {
			t.Errorf("%s runs when %q, want %q", action, cond, want[1])
		}
		if !(at("StopServices") < at(action) && at(action) < at("RemoveFiles")) {
			t.Errorf("%s (%d) is not between StopServices and RemoveFiles", action, at(action))
		}
	}
	// As upstream's MSI: the default instance's service is stopped on
	// install (upgrade) and uninstall (msidbServiceControlEvent 0x02|0x20).
	if r := row(t, msiTable(t, msi, "ServiceControl"), "ServiceControl", "StopDefaultInstanceService"); r[1] != "OctopusDeploy Tentacle" || r[2] != "34" {
		t.Errorf("ServiceControl %q, want OctopusDeploy Tentacle, event 34", r)
	}
	var reg []string
	for _, r := range msiTable(t, msi, "Registry") {
		reg = append(reg, strings.Join(r[1:5], " "))
	}
	for _, want := range []string{
		`2 Software\tentacle-go\Tentacle InstallLocation [INSTALLLOCATION]`,
		`2 Software\tentacle-go\Tentacle ProductCode [ProductCode]`,
		`2 Software\Octopus\Tentacle InstallLocation [INSTALLLOCATION]`,
	} {
		if !slices.Contains(reg, want) {
			t.Errorf("Registry has no %q: %q", want, reg)
		}
	}
}

// TestChecksumsCoverTheMSI: the MSI is in checksums.txt and in the feed.
func TestChecksumsCoverTheMSI(t *testing.T) {
	b := first(t)
	name := filepath.Base(b.msi(t))
	cmd := exec.Command("sha256sum", "--strict", "-c", "--ignore-missing", "checksums.txt")
	cmd.Dir = b.Dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), name+": OK") {
		t.Errorf("sha256sum -c: %v, and checksums.txt must cover %s:\n%s", err, name, out)
	}
}

// makeCodeSigningPFX writes a throwaway self-signed code-signing
// certificate and its key as a PKCS#12 file protected by password; it
// returns the PFX and the certificate (PEM), which verification trusts.
func makeCodeSigningPFX(t *testing.T, dir, password string) (pfx, cert string) {
	t.Helper()
	key, cert, pfx := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "codesign.pfx")
	run(t, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
		"-subj", "/CN=tentacle-go test code signing", "-addext", "extendedKeyUsage=codeSigning", "-addext", "keyUsage=digitalSignature")
	run(t, "openssl", "pkcs12", "-export", "-inkey", key, "-in", cert, "-out", pfx, "-passout", "pass:"+password)
	return pfx, cert
}

// buildMSI runs packaging/msi.sh as goreleaser's hooks do, on copies of
// exe and supervisor laid out as goreleaser's build folders, into a folder
// of its own, with extra environment: once for the supervisor's build, once
// for Tentacle.exe's, which then builds the MSI.
func buildMSI(t *testing.T, exe, supervisor, version string, env ...string) (msi, exeCopy, supervisorCopy string, err error) {
	t.Helper()
	work := t.TempDir()
	exeCopy = filepath.Join(work, "archive_windows_amd64_v1", "Tentacle.exe")
	supervisorCopy = filepath.Join(work, "supervisor_windows_amd64_v1", "libexec", "tentacle", "tentacle-supervisor.exe")
	for from, to := range map[string]string{exe: exeCopy, supervisor: supervisorCopy} {
		os.MkdirAll(filepath.Dir(to), 0o755)
		data, rerr := os.ReadFile(from)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err := os.WriteFile(to, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, bin := range []string{supervisorCopy, exeCopy} {
		cmd := exec.Command("sh", "packaging/msi.sh", "windows", "amd64", bin, version)
		cmd.Dir = nspawntest.RepoRoot(t)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", exeCopy, supervisorCopy, fmt.Errorf("msi.sh: %v\n%s", err, out)
		}
	}
	return filepath.Join(work, "tentacle_"+version+"_windows_amd64.msi"), exeCopy, supervisorCopy, nil
}

// TestMSISignedWithAThrowawayCertificate signs with a PFX made here: the
// MSI and the Tentacle.exe in it verify with osslsigncode against that
// certificate; a changed MSI and an unsigned one do not; a wrong password
// fails the build, saying so.
func TestMSISignedWithAThrowawayCertificate(t *testing.T) {
	b := first(t)
	requireTools(t, "osslsigncode", "openssl", "wixl")
	pfx, cert := makeCodeSigningPFX(t, t.TempDir(), "s3cret pass")
	msi, exe, supervisor, err := buildMSI(t, b.windowsExe(t), b.windowsSupervisor(t), b.Version, "TENTACLE_CODESIGN_PFX="+pfx, "TENTACLE_CODESIGN_PASSWORD=s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{msi, exe, supervisor} {
		out := run(t, "osslsigncode", "verify", "-CAfile", cert, "-in", f)
		if !strings.Contains(out, "Signature verification: ok") || !strings.Contains(out, "tentacle-go test code signing") {
			t.Errorf("osslsigncode verify %s:\n%s", filepath.Base(f), out)
		}
	}
	// The MSI holds the signed binaries: msiextract it and compare.
	extracted := t.TempDir()
	run(t, "msiextract", "-C", extracted, msi)
	for _, signed := range []string{exe, supervisor} {
		var inside string
		filepath.WalkDir(extracted, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == filepath.Base(signed) {
				inside = p
			}
			return nil
		})
		want, _ := os.ReadFile(signed)
		if got, err := os.ReadFile(inside); err != nil || !bytes.Equal(got, want) {
			t.Errorf("the MSI's %s (%s) is not the signed one: %v", filepath.Base(signed), inside, err)
		}
	}

	tampered := filepath.Join(t.TempDir(), "tampered.msi")
	data, _ := os.ReadFile(msi)
	data[len(data)/2] ^= 0xff
	os.WriteFile(tampered, data, 0o644)
	for name, f := range map[string]string{"a changed MSI": tampered, "the unsigned MSI of make package": b.msi(t)} {
		if out, err := exec.Command("osslsigncode", "verify", "-CAfile", cert, "-in", f).CombinedOutput(); err == nil {
			t.Errorf("%s verified:\n%s", name, out)
		}
	}
	if _, _, _, err := buildMSI(t, b.windowsExe(t), b.windowsSupervisor(t), b.Version, "TENTACLE_CODESIGN_PFX="+pfx, "TENTACLE_CODESIGN_PASSWORD=wrong"); err == nil || !strings.Contains(err.Error(), "wrong TENTACLE_CODESIGN_PASSWORD?") {
		t.Errorf("a wrong password: %v", err)
	}
}

// wine runs a Windows program in p that has to succeed.
func wine(t *testing.T, p *winetest.Prefix, exe string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := p.Command(ctx, exe, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("wine %s %s: %v\n%s", exe, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// regValue reads one registry value back in p ("" when absent).
func regValue(p *winetest.Prefix, key, name string) string {
	out, err := p.Command(context.Background(), "reg", "query", key, "/v", name).CombinedOutput()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == name {
			_, v, _ := strings.Cut(l, f[1])
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// keyExists says whether a registry key exists in p.
func keyExists(p *winetest.Prefix, key string) bool {
	return p.Command(context.Background(), "reg", "query", key).Run() == nil
}

// installedProducts are the products of ours Windows Installer has
// registered in p (Uninstall entries with our name).
func installedProducts(t *testing.T, p *winetest.Prefix) []string {
	t.Helper()
	out := wine(t, p, "reg", "query", `HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall`)
	var ours []string
	for _, l := range strings.Split(out, "\n") {
		key := strings.TrimSpace(l)
		if strings.HasPrefix(key, "HKEY_") && regValue(p, key, "Publisher") == "tentacle-go" {
			ours = append(ours, key[strings.LastIndex(key, `\`)+1:])
		}
	}
	return ours
}

// TestMSIUnderWine installs `make package`'s MSI with Wine's msiexec,
// upgrades it to a later snapshot through `Tentacle.exe release install`
// (which must see the MSI install and run msiexec), and uninstalls it;
// then installs to a custom INSTALLLOCATION that the next upgrade keeps.
// State is read back each time: files, registry, Windows Installer's
// products, services.
func TestMSIUnderWine(t *testing.T) {
	b := first(t)
	s := second(t)
	requireTools(t, "wixl", "msiinfo")
	tc := winetest.Require(t)
	p := winetest.NewPrefix(t, tc)

	// The later snapshot's MSI, built from a Windows binary stamped with
	// its version as goreleaser stamps it.
	exe2 := filepath.Join(t.TempDir(), "Tentacle.exe")
	releasebuild.Build(t, nspawntest.RepoRoot(t), exe2, releasebuild.Options{GOOS: "windows", GOARCH: "amd64", Version: s.Version, Supervisor: true})
	msi2, _, _, err := buildMSI(t, exe2, filepath.Join(filepath.Dir(exe2), "tentacle-supervisor.exe"), s.Version)
	if err != nil {
		t.Fatal(err)
	}
	msi1 := b.msi(t)
	before := p.DriveFiles()

	const (
		ours     = `HKLM\Software\tentacle-go\Tentacle`
		upstream = `HKLM\Software\Octopus\Tentacle`
	)
	defaultDir := `C:\Program Files\Octopus Deploy\Tentacle\`
	installed := defaultDir + "Tentacle.exe"

	// Install.
	wine(t, p, "msiexec", "/i", winetest.WindowsPath(msi1), "/qn")
	if got := strings.TrimSpace(wine(t, p, installed, "version")); got != b.Version {
		t.Fatalf("%s version = %q, want %s", installed, got, b.Version)
	}
	if _, err := os.Stat(filepath.Join(p.DriveC(), "Program Files", "Octopus Deploy", "Tentacle", "Tentacle.exe")); err != nil {
		t.Fatal(err)
	}
	// The script supervisor beside it, of the same build.
	if got := strings.TrimSpace(wine(t, p, defaultDir+"tentacle-supervisor.exe", "version")); got != b.Version {
		t.Errorf("%stentacle-supervisor.exe version = %q, want %s", defaultDir, got, b.Version)
	}
	for _, k := range []string{ours, upstream} {
		if got := regValue(p, k, "InstallLocation"); got != defaultDir {
			t.Errorf(`%s\InstallLocation = %q, want %q`, k, got, defaultDir)
		}
	}
	products := installedProducts(t, p)
	if len(products) != 1 || regValue(p, ours, "ProductCode") != products[0] {
		t.Fatalf("after install: products %q, ProductCode %q", products, regValue(p, ours, "ProductCode"))
	}

	// Instance data, which uninstall keeps.
	wine(t, p, installed, "create-instance", "--instance", "Tentacle", "--config", `C:\Octopus\Tentacle\Tentacle.config`)
	wine(t, p, installed, "create-instance", "--instance", "Second", "--config", `C:\Octopus\Second\Tentacle.config`)

	// Upgrade through release install, which detects the MSI install.
	out := wine(t, p, installed, "release", "install", "--from", winetest.WindowsPath(msi2), "--format", "json")
	t.Logf("release install:\n%s", out)
	if !strings.Contains(out, `"method": "msi"`) {
		t.Errorf("release install did not go through the MSI:\n%s", out)
	}
	if got := strings.TrimSpace(wine(t, p, installed, "version")); got != s.Version {
		t.Fatalf("after the upgrade %s version = %q, want %s", installed, got, s.Version)
	}
	upgraded := installedProducts(t, p)
	if len(upgraded) != 1 || upgraded[0] == products[0] || regValue(p, ours, "ProductCode") != upgraded[0] {
		t.Errorf("after the upgrade: products %q (before %q), ProductCode %q", upgraded, products, regValue(p, ours, "ProductCode"))
	}

	// The services `service --install` makes (created with sc here: under
	// Wine the SCM refuses the optional hardening that install applies, see
	// the service helper's work); uninstall must remove them.
	services := map[string]string{"OctopusDeploy Tentacle": "Tentacle", "OctopusDeploy Tentacle: Second": "Second"}
	for name, instance := range services {
		wine(t, p, "sc", "create", name, "binPath=", fmt.Sprintf(`"%s" run --instance="%s"`, installed, instance), "start=", "auto")
		if !keyExists(p, `HKLM\System\CurrentControlSet\Services\`+name) {
			t.Fatalf("sc create %s made no service", name)
		}
	}

	// Uninstall.
	wine(t, p, "msiexec", "/x", winetest.WindowsPath(msi2), "/qn")
	for name := range services {
		if keyExists(p, `HKLM\System\CurrentControlSet\Services\`+name) {
			t.Errorf("uninstall left the service %s", name)
		}
	}
	if got := installedProducts(t, p); len(got) != 0 {
		t.Errorf("uninstall left products %q", got)
	}
	for _, k := range []string{ours, upstream} {
		if v := regValue(p, k, "InstallLocation"); v != "" {
			t.Errorf(`uninstall left %s\InstallLocation = %q`, k, v)
		}
	}
	// The keys go too when nothing else is in them.
	for _, k := range []string{`HKLM\Software\tentacle-go`, upstream} {
		if keyExists(p, k) {
			t.Errorf("uninstall left the registry key %s", k)
		}
	}
	// Nothing of ours is left on C: but instance data.
	if left := p.LeftOnDrive(before); len(left) > 0 {
		t.Errorf("uninstall left on C:\n%s", strings.Join(left, "\n"))
	}
	for _, f := range []string{`Octopus/Tentacle/Tentacle.config`, `Octopus/Second/Tentacle.config`} {
		if _, err := os.Stat(filepath.Join(p.DriveC(), f)); err != nil {
			t.Errorf("uninstall removed instance data: %v", err)
		}
	}

	// A custom INSTALLLOCATION, kept by the next upgrade.
	custom := `C:\Tools\Tentacle\`
	wine(t, p, "msiexec", "/i", winetest.WindowsPath(msi1), "/qn", "INSTALLLOCATION="+custom)
	if got := strings.TrimSpace(wine(t, p, custom+"Tentacle.exe", "version")); got != b.Version {
		t.Errorf("%sTentacle.exe version = %q", custom, got)
	}
	wine(t, p, "msiexec", "/i", winetest.WindowsPath(msi2), "/qn")
	if got := strings.TrimSpace(wine(t, p, custom+"Tentacle.exe", "version")); got != s.Version {
		t.Errorf("after the upgrade %sTentacle.exe version = %q, want %s", custom, got, s.Version)
	}
	if _, err := os.Stat(filepath.Join(p.DriveC(), "Program Files", "Octopus Deploy", "Tentacle")); err == nil {
		t.Error("the upgrade of a custom INSTALLLOCATION installed into Program Files")
	}
	if got := strings.TrimSpace(wine(t, p, custom+"tentacle-supervisor.exe", "version")); got != s.Version {
		t.Errorf("after the upgrade %stentacle-supervisor.exe version = %q, want %s", custom, got, s.Version)
	}
	wine(t, p, "msiexec", "/x", winetest.WindowsPath(msi2), "/qn")
	for _, name := range []string{"Tentacle.exe", "tentacle-supervisor.exe"} {
		if _, err := os.Stat(filepath.Join(p.DriveC(), "Tools", "Tentacle", name)); err == nil {
			t.Errorf("uninstall left the custom INSTALLLOCATION's %s", name)
		}
	}
}
