//go:build linux

package packaging_test

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/packaging/feed"
)

// packageBudget is the size limit of each deb and rpm (issue 14).
const packageBudget = 10 << 20

// TestArtifactNames checks that a build holds exactly the artifacts the feed
// layout promises (packaging/README.md), under those names.
func TestArtifactNames(t *testing.T) {
	b := first(t)
	v := regexp.QuoteMeta(b.Version)
	// deb and rpm write a pre-release with "~" (it sorts below the release).
	pv := regexp.QuoteMeta(strings.Replace(b.Version, "-", "~", 1))
	want := []string{
		`^tentacle_` + v + `_linux_amd64\.tar\.gz$`,
		`^tentacle_` + v + `_linux_arm64\.tar\.gz$`,
		`^tentacle_` + v + `_linux_armv7\.tar\.gz$`,
		`^tentacle_` + v + `_darwin_amd64\.tar\.gz$`,
		`^tentacle_` + v + `_darwin_arm64\.tar\.gz$`,
		`^tentacle_` + v + `_windows_amd64\.zip$`,
		`^tentacle-go_` + pv + `-1_amd64\.deb$`,
		`^tentacle-go_` + pv + `-1_arm64\.deb$`,
		`^tentacle-go_` + pv + `-1_armhf\.deb$`,
		`^tentacle-go-` + pv + `-1\.x86_64\.rpm$`,
		`^tentacle-go-` + pv + `-1\.aarch64\.rpm$`,
		`^tentacle-go-` + pv + `-1\.armv7hl\.rpm$`,
		`^checksums\.txt$`,
	}
	var published []string
	for _, a := range b.Artifacts {
		switch a.Type {
		case "Archive", "Linux Package", "Checksum", "Signature":
			published = append(published, a.Name)
		}
	}
	slices.Sort(published)
	if len(published) != len(want) {
		t.Errorf("%d artifacts, want %d: %v", len(published), len(want), published)
	}
	for _, re := range want {
		if !slices.ContainsFunc(published, regexp.MustCompile(re).MatchString) {
			t.Errorf("no artifact matches %s in %v", re, published)
		}
	}
	if _, ok := feed.ParseVersion(b.Version); !ok || snapshotTime(b.Version) == "" {
		t.Errorf("snapshot version %q is not X.Y.Z-snapshot.<time>.<commit>", b.Version)
	}
}

// TestChecksumsCoverEveryArtifact runs sha256sum -c on checksums.txt and
// checks that it lists every archive and package.
func TestChecksumsCoverEveryArtifact(t *testing.T) {
	b := first(t)
	requireTools(t, "sha256sum")
	cmd := exec.Command("sha256sum", "--strict", "-c", "checksums.txt")
	cmd.Dir = b.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c checksums.txt: %v\n%s", err, out)
	}
	for _, a := range b.Artifacts {
		if (a.Type == "Archive" || a.Type == "Linux Package") && !strings.Contains(string(out), a.Name+": OK") {
			t.Errorf("checksums.txt does not cover %s:\n%s", a.Name, out)
		}
	}
}

// TestSignedChecksums verifies checksums.txt.minisig of a build signed with
// TENTACLE_SIGNING_KEY, and that a changed checksums.txt fails it.
func TestSignedChecksums(t *testing.T) {
	s := second(t)
	sig := s.find(t, "Signature", `^checksums\.txt\.minisig$`)
	sums := filepath.Join(s.Dir, "checksums.txt")
	out := run(t, "minisign", "-V", "-p", s.PublicKey, "-m", sums, "-x", sig)
	t.Logf("minisign -V: %s", strings.TrimSpace(out))
	tampered := filepath.Join(t.TempDir(), "checksums.txt")
	data, _ := os.ReadFile(sums)
	os.WriteFile(tampered, append(data, []byte("0000000000000000000000000000000000000000000000000000000000000000  evil\n")...), 0o644)
	if out, err := exec.Command("minisign", "-V", "-p", s.PublicKey, "-m", tampered, "-x", sig).CombinedOutput(); err == nil {
		t.Errorf("a changed checksums.txt verified:\n%s", out)
	}
	if slices.ContainsFunc(first(t).Artifacts, func(a artifact) bool { return a.Type == "Signature" }) && os.Getenv("TENTACLE_SIGNING_KEY") == "" {
		t.Error("a build without TENTACLE_SIGNING_KEY has a signature")
	}
}

// TestLinuxArchiveUnpacksAsUpstream follows upstream's documented install:
// tar xzf ... -C /opt/octopus, then /opt/octopus/tentacle/Tentacle.
func TestLinuxArchiveUnpacksAsUpstream(t *testing.T) {
	b := first(t)
	archive := b.find(t, "Archive", `_linux_amd64\.tar\.gz$`)
	opt := filepath.Join(t.TempDir(), "opt", "octopus")
	if err := os.MkdirAll(opt, 0o755); err != nil {
		t.Fatal(err)
	}
	list := run(t, "tar", "tzf", archive)
	for _, entry := range strings.Fields(list) {
		if !strings.HasPrefix(entry, "tentacle/") {
			t.Errorf("archive entry %s is outside the top-level tentacle/ folder", entry)
		}
	}
	run(t, "tar", "xzf", archive, "-C", opt)
	out := run(t, filepath.Join(opt, "tentacle", "Tentacle"), "version")
	if !strings.Contains(out, b.Version) {
		t.Errorf("/opt/octopus/tentacle/Tentacle version printed %q, want %s", out, b.Version)
	}
	// The script supervisor beside it, of the same build, so the agent
	// started from there runs scripts under it (scripts.FindSupervisor).
	if out := strings.TrimSpace(run(t, filepath.Join(opt, "tentacle", "tentacle-supervisor"), "version")); out != b.Version {
		t.Errorf("/opt/octopus/tentacle/tentacle-supervisor version printed %q, want %s", out, b.Version)
	}
	zr, err := zip.OpenReader(b.find(t, "Archive", `_windows_amd64\.zip$`))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var zipped []string
	for _, f := range zr.File {
		zipped = append(zipped, f.Name)
	}
	slices.Sort(zipped)
	if want := []string{"tentacle/README.md", "tentacle/Tentacle.exe", "tentacle/tentacle-supervisor.exe"}; !slices.Equal(zipped, want) {
		t.Errorf("the Windows zip holds %q, want %q", zipped, want)
	}
	// Every tar.gz (Linux and macOS) holds exactly the same three files.
	for _, a := range b.Artifacts {
		if a.Type != "Archive" || !strings.HasSuffix(a.Name, ".tar.gz") {
			continue
		}
		entries := strings.Fields(run(t, "tar", "tzf", b.path(a)))
		slices.Sort(entries)
		if want := []string{"tentacle/README.md", "tentacle/Tentacle", "tentacle/tentacle-supervisor"}; !slices.Equal(entries, want) {
			t.Errorf("%s holds %q, want %q", a.Name, entries, want)
		}
	}
}

// TestPackageSizes asserts the budget of each deb and rpm and logs their
// sizes (docs/benchmarks.md).
func TestPackageSizes(t *testing.T) {
	b := first(t)
	requireTools(t, "dpkg-deb", "rpm")
	for _, a := range b.Artifacts {
		if a.Type != "Linux Package" {
			continue
		}
		info, err := os.Stat(b.path(a))
		if err != nil {
			t.Fatal(err)
		}
		installed := ""
		if strings.HasSuffix(a.Name, ".deb") {
			kib, _ := strconv.Atoi(strings.TrimSpace(run(t, "dpkg-deb", "-f", b.path(a), "Installed-Size")))
			installed = fmt.Sprintf("%.1f MiB", float64(kib)/1024)
		} else {
			n, _ := strconv.Atoi(strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{SIZE}", b.path(a))))
			installed = fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		}
		t.Logf("%s: %.1f MiB, installed %s", a.Name, float64(info.Size())/(1<<20), installed)
		if info.Size() > packageBudget {
			t.Errorf("%s is %d bytes, over the %d budget", a.Name, info.Size(), packageBudget)
		}
	}
}

// TestSnapshotsUpgradeInEveryFormat checks that the later snapshot sorts
// above the earlier one in SemVer, dpkg and rpm, and that any snapshot of
// X.Y.Z sorts below the release X.Y.Z in all three.
func TestSnapshotsUpgradeInEveryFormat(t *testing.T) {
	f, s := first(t), second(t)
	requireTools(t, "dpkg", "dpkg-deb", "rpm")
	v1, _ := feed.ParseVersion(f.Version)
	v2, _ := feed.ParseVersion(s.Version)
	if feed.Compare(v1, v2) >= 0 {
		t.Errorf("SemVer: %s does not sort below %s", f.Version, s.Version)
	}
	deb1 := strings.TrimSpace(run(t, "dpkg-deb", "-f", f.find(t, "Linux Package", `_amd64\.deb$`), "Version"))
	deb2 := strings.TrimSpace(run(t, "dpkg-deb", "-f", s.find(t, "Linux Package", `_amd64\.deb$`), "Version"))
	release := fmt.Sprintf("%d.%d.%d-1", v1.Major, v1.Minor, v1.Patch)
	for _, c := range [][3]string{{deb1, "lt", deb2}, {deb2, "lt", release}} {
		if err := exec.Command("dpkg", "--compare-versions", c[0], c[1], c[2]).Run(); err != nil {
			t.Errorf("dpkg: not %s %s %s", c[0], c[1], c[2])
		}
	}
	rpm1 := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE}", f.find(t, "Linux Package", `\.x86_64\.rpm$`)))
	rpm2 := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE}", s.find(t, "Linux Package", `\.x86_64\.rpm$`)))
	for _, c := range [][2]string{{rpm1, rpm2}, {rpm2, release}} {
		got := strings.TrimSpace(run(t, "rpm", "--eval", fmt.Sprintf(`%%{lua: print(rpm.vercmp("%s", "%s"))}`, c[0], c[1])))
		if got != "-1" {
			t.Errorf("rpm: vercmp(%s, %s) = %s, want -1", c[0], c[1], got)
		}
	}
	t.Logf("SemVer %s < %s; deb %s < %s < %s; rpm %s < %s < %s", f.Version, s.Version, deb1, deb2, release, rpm1, rpm2, release)
}

// TestFeedOfTwoSnapshots publishes both builds into one feed, as two runs
// of `make package` do, and checks index.json against the folders.
func TestFeedOfTwoSnapshots(t *testing.T) {
	f, s := first(t), second(t)
	dir := filepath.Join(t.TempDir(), "feed")
	for _, b := range []*goreleaserBuild{f, s} {
		if _, err := feed.Publish(b.Dir, dir); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx feed.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Versions) != 2 || idx.Versions[0].Version != s.Version || idx.Versions[1].Version != f.Version {
		t.Fatalf("index.json versions: %+v", idx.Versions)
	}
	for i, b := range []*goreleaserBuild{s, f} {
		v := idx.Versions[i]
		if !v.Prerelease || v.Date == "" {
			t.Errorf("%s: prerelease %v date %q", v.Version, v.Prerelease, v.Date)
		}
		var want []string
		for _, a := range b.Artifacts {
			switch a.Type {
			case "Archive", "Linux Package", "Checksum", "Signature":
				want = append(want, a.Name)
			}
		}
		// The MSI is a checksum.extra_files entry, not a goreleaser artifact.
		if msi := "tentacle_" + b.Version + "_windows_amd64.msi"; b == f {
			want = append(want, msi)
		}
		// So are the container images of a build made with TENTACLE_IMAGES=1.
		want = append(want, b.imageFiles(t)...)
		slices.Sort(want)
		if !slices.Equal(v.Files, want) {
			t.Errorf("%s lists %v, want %v", v.Version, v.Files, want)
		}
		cmd := exec.Command("sha256sum", "--strict", "-c", "checksums.txt")
		cmd.Dir = filepath.Join(dir, v.Version)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c in the feed's %s: %v\n%s", v.Version, err, out)
		}
	}
	t.Logf("index.json:\n%s", data)
}

// TestReleaseBinariesTrustTheirSigningKey runs the binaries of both builds
// against a feed of the signed one, with no key given anywhere: the signed
// build's binary verifies checksums.txt with the key built into it (and
// refuses a changed one); the unsigned snapshot's has no key and says so.
func TestReleaseBinariesTrustTheirSigningKey(t *testing.T) {
	f, s := first(t), second(t)
	dir := filepath.Join(t.TempDir(), "feed")
	if _, err := feed.Publish(s.Dir, dir); err != nil {
		t.Fatal(err)
	}
	unpack := func(b *goreleaserBuild) string {
		to := t.TempDir()
		run(t, "tar", "xzf", b.find(t, "Archive", `_linux_amd64\.tar\.gz$`), "-C", to)
		return filepath.Join(to, "tentacle", "Tentacle")
	}
	download := func(binary string) (string, string, error) {
		cmd := exec.Command(binary, "release", "download", "--feed", dir, "--prerelease", "--os", "linux", "--arch", "amd64", "--to", t.TempDir(), "--format", "json")
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "TentacleMachineConfigurationHomeDirectory=" + t.TempDir()}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	signed := unpack(s)
	out, errs, err := download(signed)
	if err != nil || signature(out) != "verified" || strings.Contains(errs, "WARNING") {
		t.Fatalf("the signed build's binary with its built-in key: %v\n%s\n%s", err, out, errs)
	}
	out, errs, err = download(unpack(f))
	if err != nil || signature(out) != "unchecked" || !strings.Contains(errs, "none built in") {
		t.Errorf("the unsigned snapshot's binary: %v\n%s\n%s", err, out, errs)
	}

	sums := filepath.Join(dir, s.Version, "checksums.txt")
	data, err := os.ReadFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sums, append(data, "0000000000000000000000000000000000000000000000000000000000000000  evil\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errs, err := download(signed); err == nil || !strings.Contains(errs, "does not match the pinned release key") {
		t.Errorf("a changed checksums.txt with the built-in key: %v\n%s\n%s", err, out, errs)
	}
}

// signature is what `release download --format json` says of the signature.
func signature(out string) string {
	var dl struct{ Signature string }
	json.Unmarshal([]byte(out), &dl)
	return dl.Signature
}
