//go:build linux

package scripts_test

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/internal/nspawntest"
	"github.com/tentacle-go/tentacle/internal/releasebuild"
)

// A release feed as the packages half of issue 14 lays it out: index.json
// (newest first) and one folder per version holding the artifacts and
// checksums.txt. The artifacts are real: the tarball and the deb hold the
// tentacle binary built from this tree, stamped with the feed's version.

type feedVersion struct {
	Version    string   `json:"version"`
	Date       string   `json:"date"`
	Prerelease bool     `json:"prerelease"`
	Files      []string `json:"files"`
}

// debArch is the Debian name of this machine's architecture, the one the
// container (same kernel) runs.
func debArch(t *testing.T) string {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return runtime.GOARCH
	case "arm":
		return "armhf"
	}
	t.Skipf("SKIP: no release is built for %s", runtime.GOARCH)
	return ""
}

func releaseArch() string {
	if runtime.GOARCH == "arm" {
		return "armv7"
	}
	return runtime.GOARCH
}

// buildFeed writes a feed holding the given versions (newest first) for
// this architecture; prerelease versions are listed in the index only. It
// also publishes install.sh at the feed's root, as a release would.
func buildFeed(t *testing.T, stable []string, prereleases []string) string {
	t.Helper()
	root := nspawntest.RepoRoot(t)
	feed := t.TempDir()
	if err := os.Chmod(feed, 0o755); err != nil {
		t.Fatal(err)
	}
	var index []feedVersion
	for _, v := range prereleases {
		index = append(index, feedVersion{Version: v, Date: time.Now().UTC().Format(time.RFC3339), Prerelease: true})
	}
	for _, v := range stable {
		dir := filepath.Join(feed, v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(t.TempDir(), "tentacle")
		// The newest version's tarball holds tentacle-supervisor, as
		// releases now do; older ones are from before it.
		withSupervisor := v == stable[0]
		releasebuild.Build(t, root, bin, releasebuild.Options{Version: v, Supervisor: withSupervisor})
		tarball := fmt.Sprintf("tentacle_%s_linux_%s.tar.gz", v, releaseArch())
		writeTarball(t, filepath.Join(dir, tarball), bin, withSupervisor)
		deb := fmt.Sprintf("tentacle-go_%s-1_%s.deb", strings.Replace(v, "-", "~", 1), debArch(t))
		writeDeb(t, filepath.Join(dir, deb), bin, v)
		writeChecksums(t, dir, tarball, deb)
		index = append(index, feedVersion{Version: v, Date: time.Now().UTC().Format(time.RFC3339), Files: []string{tarball, deb}})
	}
	data, err := json.MarshalIndent(map[string]any{"schema": 1, "versions": index}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(feed, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(feed, "install.sh"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	return feed
}

// writeTarball writes upstream's archive layout: tentacle/Tentacle, and
// with withSupervisor the tentacle-supervisor built beside bin as
// tentacle/tentacle-supervisor (goreleaser's archives).
func writeTarball(t *testing.T, path, bin string, withSupervisor bool) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var supervisor []byte
	if withSupervisor {
		if supervisor, err = os.ReadFile(filepath.Join(filepath.Dir(bin), "tentacle-supervisor")); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, h := range []*tar.Header{
		{Name: "tentacle/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "tentacle/Tentacle", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if withSupervisor {
		if err := tw.WriteHeader(&tar.Header{Name: "tentacle/tentacle-supervisor", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(supervisor))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(supervisor); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeDeb builds a minimal tentacle-go package with dpkg-deb: the binary
// at /usr/bin/tentacle, as the real package has it.
func writeDeb(t *testing.T, path, bin, version string) {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("SKIP: dpkg-deb is not installed (apt-get install dpkg)")
	}
	tree := t.TempDir()
	for _, d := range []string{"DEBIAN", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	control := fmt.Sprintf("Package: tentacle-go\nVersion: %s\nArchitecture: %s\nMaintainer: tentacle tests <tests@example.invalid>\n"+
		"Description: tentacle built by the install.sh test\n", version, debArch(t))
	if err := os.WriteFile(filepath.Join(tree, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "usr", "bin", "tentacle"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", tree, path).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
}

func writeChecksums(t *testing.T, dir string, names ...string) {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), n)
	}
	if err := os.WriteFile(filepath.Join(dir, "checksums.txt"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// serveFeed serves a feed directory on loopback, as any static web server.
func serveFeed(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// copyFeed copies a feed, so that a test can alter the copy.
func copyFeed(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
