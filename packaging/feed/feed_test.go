package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/provision/release"
)

func TestCompareOrdersLikeSemVer(t *testing.T) {
	// In increasing precedence, from semver.org §11, plus the snapshot
	// versions `make package` makes: a later build time sorts higher, and any
	// snapshot of 1.2.4 sorts below the release 1.2.4.
	ordered := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.3",
		"1.2.4-snapshot.20261203085959.ffff000", "1.2.4-snapshot.20261203090000.0000aaa",
		"1.2.4", "1.10.0", "2.0.0",
	}
	for i, a := range ordered {
		va, ok := ParseVersion(a)
		if !ok {
			t.Fatalf("%s does not parse", a)
		}
		for j, b := range ordered {
			vb, _ := ParseVersion(b)
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := Compare(va, vb); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	if c := Compare(must(ParseVersion("1.0.0+a"))(t), must(ParseVersion("1.0.0+b"))(t)); c != 0 {
		t.Errorf("build metadata changed the order: %d", c)
	}
	for _, bad := range []string{"1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3-a..b", "1.2.3-a_b", "latest"} {
		if _, ok := ParseVersion(bad); ok {
			t.Errorf("%q parsed as SemVer", bad)
		}
	}
}

func must(v SemVer, ok bool) func(*testing.T) SemVer {
	return func(t *testing.T) SemVer {
		t.Helper()
		if !ok {
			t.Fatal("not SemVer")
		}
		return v
	}
}

// fakeRun writes what a goreleaser run leaves in its dist folder (the
// artifacts, checksums.txt, metadata.json and artifacts.json) for version.
func fakeRun(t *testing.T, version, date string, names []string, unlisted string) string {
	t.Helper()
	dir := t.TempDir()
	var arts []artifact
	var sums strings.Builder
	for _, n := range names {
		body := []byte(version + " " + n)
		if err := os.WriteFile(filepath.Join(dir, n), body, 0o644); err != nil {
			t.Fatal(err)
		}
		typ := "Archive"
		if strings.HasSuffix(n, ".deb") || strings.HasSuffix(n, ".rpm") {
			typ = "Linux Package"
		}
		arts = append(arts, artifact{Name: n, Path: filepath.Join(dir, n), Type: typ})
		if n != unlisted {
			sum := sha256.Sum256(body)
			fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), n)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "checksums.txt"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	arts = append(arts,
		artifact{Name: "checksums.txt", Path: filepath.Join(dir, "checksums.txt"), Type: "Checksum"},
		artifact{Name: "tentacle", Path: filepath.Join(dir, "checksums.txt"), Type: "Binary"}) // not published
	writeJSON(t, filepath.Join(dir, "artifacts.json"), arts)
	writeJSON(t, filepath.Join(dir, "metadata.json"), map[string]string{"version": version, "date": date, "project_name": "tentacle"})
	return dir
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPublishKeepsOlderVersionsNewestFirst(t *testing.T) {
	feedDir := filepath.Join(t.TempDir(), "feed")
	runs := []struct{ version, date string }{
		{"1.2.4-snapshot.20261203090000.abc1234", "2026-12-03T09:00:00.123456789Z"},
		{"1.2.3", "2026-12-01T10:00:00Z"}, // published after, older version
		{"1.2.4-snapshot.20261203091500.abc1234", "2026-12-03T10:15:00+01:00"},
	}
	for _, r := range runs {
		names := []string{"tentacle_" + r.version + "_linux_amd64.tar.gz", "tentacle-go_" + strings.Replace(r.version, "-", "~", 1) + "-1_amd64.deb"}
		if _, err := Publish(fakeRun(t, r.version, r.date, names, ""), feedDir); err != nil {
			t.Fatal(err)
		}
	}
	var idx Index
	data, err := os.ReadFile(filepath.Join(feedDir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range idx.Versions {
		got = append(got, fmt.Sprintf("%s %s %v %v", v.Version, v.Date, v.Prerelease, v.Files))
	}
	want := []string{
		"1.2.4-snapshot.20261203091500.abc1234 2026-12-03T09:15:00Z true [checksums.txt tentacle-go_1.2.4~snapshot.20261203091500.abc1234-1_amd64.deb tentacle_1.2.4-snapshot.20261203091500.abc1234_linux_amd64.tar.gz]",
		"1.2.4-snapshot.20261203090000.abc1234 2026-12-03T09:00:00Z true [checksums.txt tentacle-go_1.2.4~snapshot.20261203090000.abc1234-1_amd64.deb tentacle_1.2.4-snapshot.20261203090000.abc1234_linux_amd64.tar.gz]",
		"1.2.3 2026-12-01T10:00:00Z false [checksums.txt tentacle-go_1.2.3-1_amd64.deb tentacle_1.2.3_linux_amd64.tar.gz]",
	}
	if idx.Schema != 1 || !slices.Equal(got, want) {
		t.Errorf("index schema %d, versions:\n%s\nwant:\n%s", idx.Schema, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every listed file is in its version's folder, and nothing else is
	// (no staging folders, no date files listed).
	for _, v := range idx.Versions {
		for _, f := range v.Files {
			if _, err := os.Stat(filepath.Join(feedDir, v.Version, f)); err != nil {
				t.Error(err)
			}
		}
	}
	ents, _ := os.ReadDir(feedDir)
	if len(ents) != 4 {
		t.Errorf("feed folder holds %d entries, want 3 versions and index.json", len(ents))
	}

	// Publishing a version again replaces it and keeps one entry.
	names := []string{"tentacle_1.2.3_linux_amd64.tar.gz"}
	if _, err := Publish(fakeRun(t, "1.2.3", "2026-12-02T00:00:00Z", names, ""), feedDir); err != nil {
		t.Fatal(err)
	}
	idx, err = Rebuild(feedDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Versions) != 3 || !slices.Equal(idx.Versions[2].Files, []string{"checksums.txt", "tentacle_1.2.3_linux_amd64.tar.gz"}) || idx.Versions[2].Date != "2026-12-02T00:00:00Z" {
		t.Errorf("after republishing 1.2.3: %+v", idx.Versions)
	}
}

func TestPublishRefusesAnArtifactWithoutChecksum(t *testing.T) {
	feedDir := filepath.Join(t.TempDir(), "feed")
	names := []string{"tentacle_1.0.0_linux_amd64.tar.gz", "tentacle-go_1.0.0-1_amd64.deb"}
	_, err := Publish(fakeRun(t, "1.0.0", "2026-12-01T10:00:00Z", names, "tentacle-go_1.0.0-1_amd64.deb"), feedDir)
	if err == nil || !strings.Contains(err.Error(), "does not list tentacle-go_1.0.0-1_amd64.deb") {
		t.Fatalf("Publish with an unlisted artifact: %v", err)
	}
	if _, err := os.Stat(filepath.Join(feedDir, "1.0.0")); !os.IsNotExist(err) {
		t.Errorf("a refused version was published: %v", err)
	}
}

func TestPublishRefusesAVersionThatIsNotSemVer(t *testing.T) {
	_, err := Publish(fakeRun(t, "latest", "2026-12-01T10:00:00Z", nil, ""), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not SemVer") {
		t.Fatalf("Publish of version latest: %v", err)
	}
}

// TestReleaseReadsWhatPublishWrites: the client (provision/release) lists a
// published feed, picks the artifact by the names it computes, and verifies it.
func TestReleaseReadsWhatPublishWrites(t *testing.T) {
	feedDir := filepath.Join(t.TempDir(), "feed")
	for _, v := range []string{"1.2.3", "1.2.4-snapshot.20261203090000.abc1234"} {
		var names []string
		for _, k := range []release.Kind{release.KindArchive, release.KindDeb, release.KindRPM} {
			n, err := release.ArtifactName(k, v, release.Platform{OS: "linux", Arch: "armv7"})
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		if _, err := Publish(fakeRun(t, v, "2026-12-03T09:00:00Z", names, ""), feedDir); err != nil {
			t.Fatal(err)
		}
	}
	f, err := release.Open(feedDir, release.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	all, err := f.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := release.Newest(all, "~> 1.2", true)
	if err != nil || v.Version != "1.2.4-snapshot.20261203090000.abc1234" {
		t.Fatalf("newest with pre-releases: %v %v", v.Version, err)
	}
	if v, err := release.Newest(all, "latest", false); err != nil || v.Version != "1.2.3" {
		t.Fatalf("latest release: %v %v", v.Version, err)
	}
	sums, _, _, err := release.FetchChecksums(ctx, f, v, release.Trust{})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := release.ArtifactName(release.KindRPM, v.Version, release.Platform{OS: "linux", Arch: "armv7"})
	path, err := release.Download(ctx, f, v, name, sums, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != v.Version+" "+name {
		t.Errorf("downloaded %q", data)
	}
}

// The MSI is a checksum.extra_files entry: listed in checksums.txt, absent
// from artifacts.json. Publish takes it along, and refuses a checksums.txt
// that lists a file the run does not hold.
func TestPublishTakesTheFilesOnlyChecksumsListed(t *testing.T) {
	version := "1.2.3"
	dir := fakeRun(t, version, "2026-12-03T09:00:00Z", []string{"tentacle_1.2.3_windows_amd64.zip"}, "")
	msi := "tentacle_1.2.3_windows_amd64.msi"
	body := []byte("an MSI")
	if err := os.WriteFile(filepath.Join(dir, msi), body, 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := os.OpenFile(filepath.Join(dir, "checksums.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	fmt.Fprintf(sums, "%s  %s\n", hex.EncodeToString(sum[:]), msi)
	sums.Close()
	feedDir := filepath.Join(t.TempDir(), "feed")
	v, err := Publish(dir, feedDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Files, []string{"checksums.txt", msi, "tentacle_1.2.3_windows_amd64.zip"}) {
		t.Errorf("published %v", v.Files)
	}
	if data, err := os.ReadFile(filepath.Join(feedDir, version, msi)); err != nil || string(data) != "an MSI" {
		t.Errorf("the feed's MSI: %q %v", data, err)
	}

	os.Remove(filepath.Join(dir, msi))
	if _, err := Publish(dir, filepath.Join(t.TempDir(), "feed")); err == nil || !strings.Contains(err.Error(), "lists "+msi+", which is not a file") {
		t.Errorf("Publish with a listed file missing: %v", err)
	}
}
